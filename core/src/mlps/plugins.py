"""The plugin manager: robust entry-point loading, registration records, and owner-only hook calls.

Nothing is loaded at import time; :func:`get_plugin_manager` builds a fresh manager each call. Each entry point
of the group ``mlps`` is loaded on its own: one that fails to import or registers an unknown or invalid hook is
recorded (entry point, distribution, version, error), reported once, and the rest keep working. With
``MLPS_STRICT_PLUGINS=1`` the error is raised instead. ``MLPS_DISABLE_PLUGINS=a,b`` skips named plugins before
import; ``MLPS_LOAD_PLUGINS=a,b`` loads only those (empty: none). Names match an entry-point name or a
distribution name.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from mlps import hookspecs
from mlps.entrypoints import entry_points
from mlps.errors import MlpsError, PluginError
from mlps.model import Benchmark, Command, Option

@dataclass
class PluginRecord:
    """What ``mlps plugins`` shows for one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    status: str = "active"  # active | disabled | failed
    error: str | None = None
    module: str | None = None
    hooks: list[str] = field(default_factory=list)
    benchmarks: list[str] = field(default_factory=list)

    def names(self) -> set[str]:
        """Every name a user may type for what this plugin provides: entry point, distribution (with or without
        ``mlps-``) and registered benchmarks."""
        dist = (self.distribution or "").lower()
        return {self.name, dist, dist.removeprefix("mlps-"), *self.benchmarks} - {""}

    def to_dict(self) -> dict:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "status": self.status, "error": self.error, "module": self.module, "hooks": self.hooks,
                "benchmarks": self.benchmarks}


@dataclass
class BenchmarkEntry:
    benchmark: Benchmark
    plugin: Any  # the registered plugin object (module)
    plugin_name: str
    extra_options: dict[str, list[tuple[str, Option]]] = field(default_factory=dict)  # command -> [(plugin, opt)]
    conflict: str | None = None  # set when two plugins registered the same name


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def strict_mode() -> bool:
    return os.environ.get("MLPS_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes", "on")


class MlpsPluginManager:
    """A pluggy manager plus mlps's own registry of plugins and benchmarks."""

    def __init__(self, strict: bool | None = None):
        self.pm = pluggy.PluginManager("mlps")
        self.pm.add_hookspecs(hookspecs)
        self.strict = strict_mode() if strict is None else strict
        self.records: dict[str, PluginRecord] = {}
        self._benchmarks: dict[str, BenchmarkEntry] | None = None

    @property
    def hook(self):
        return self.pm.hook

    # --- loading ---------------------------------------------------------------------------------------
    def load_entrypoints(self) -> None:
        disabled = set(_env_list("MLPS_DISABLE_PLUGINS") or ())
        allowed = _env_list("MLPS_LOAD_PLUGINS")
        for ep in sorted(entry_points(), key=lambda e: e.name):
            if ep.name in self.records:
                continue
            dist_name = ep.dist_name
            record = PluginRecord(name=ep.name, distribution=dist_name, version=ep.version, module=ep.value)
            self.records[ep.name] = record
            names = {ep.name, dist_name}
            if names & disabled or (allowed is not None and not names & set(allowed)):
                record.status = "disabled"
                record.error = "disabled by MLPS_DISABLE_PLUGINS" if names & disabled else "not in MLPS_LOAD_PLUGINS"
                continue
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # any import failure is isolated, sys.exit() included
                self._fail(record, f"failed to import {ep.value}: {type(exc).__name__}: {exc}", exc)
                continue
            self.add_plugin(plugin, ep.name, record=record)

    def add_plugin(self, plugin, name: str, record: PluginRecord | None = None) -> PluginRecord:
        """Register ``plugin`` (a module or object with hookimpls) under ``name``, validating its hooks."""
        record = record or self.records.get(name) or PluginRecord(name=name, module=getattr(plugin, "__name__", None))
        self.records[name] = record
        unknown = [attr for attr in dir(plugin) if attr.startswith("mlps_")
                   and self.pm.parse_hookimpl_opts(plugin, attr) is not None
                   and not hasattr(hookspecs, attr)]
        if unknown:
            self._fail(record, f"unknown hook(s) {', '.join(sorted(unknown))}; see the hook reference",
                       PluginError(f"unknown hook {unknown[0]}"))
            return record
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy.PluginValidationError and friends
            if self.pm.get_plugin(name) is not None:  # a half-registered plugin must not stay
                self.pm.unregister(name=name)
            self._fail(record, f"invalid hook: {exc}", exc)
            return record
        record.status = "active"
        record.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or ())
        self._benchmarks = None
        return record

    def remove_plugin(self, name: str) -> None:
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        self.records.pop(name, None)
        self._benchmarks = None

    def _fail(self, record: PluginRecord, message: str, exc: BaseException) -> None:
        record.status = "failed"
        record.error = message
        if self.strict:
            raise PluginError(f"plugin {record.name!r} ({record.distribution or 'no distribution'}"
                              f" {record.version or ''}): {message}") from exc

    # --- registrations ---------------------------------------------------------------------------------
    def benchmarks(self) -> dict[str, BenchmarkEntry]:
        """Every benchmark registered by an active plugin, with options other plugins add to its commands."""
        if self._benchmarks is None:
            self._benchmarks = self._collect_benchmarks()
        return self._benchmarks

    def _collect_benchmarks(self) -> dict[str, BenchmarkEntry]:
        entries: dict[str, BenchmarkEntry] = {}
        for impl in self.pm.hook.mlps_register_benchmarks.get_hookimpls():
            name = self.pm.get_name(impl.plugin)
            record = self._record(name)

            def register(bench, _plugin=impl.plugin, _name=name):
                if not isinstance(bench, Benchmark):
                    raise PluginError(f"plugin {_name!r} registered {type(bench).__name__}, expected mlps.Benchmark")
                _check_benchmark(bench, _name)
                if bench.name in entries:
                    first = entries[bench.name]
                    first.conflict = (f"benchmark {bench.name!r} is registered by two plugins: "
                                      f"{first.plugin_name!r} and {_name!r}")
                    return
                entries[bench.name] = BenchmarkEntry(bench, _plugin, _name)
                record.benchmarks.append(bench.name)

            try:
                impl.function(register=register)
            except Exception as exc:
                self._fail(record, f"mlps_register_benchmarks failed: {type(exc).__name__}: {exc}", exc)
        for entry in entries.values():
            for command in entry.benchmark.commands:
                entry.extra_options[command.name] = self._extra_options(entry.benchmark.name, command)
        return entries

    def _extra_options(self, benchmark: str, command: Command) -> list[tuple[str, Option]]:
        extra: list[tuple[str, Option]] = []
        for impl in self.pm.hook.mlps_command_options.get_hookimpls():
            name = self.pm.get_name(impl.plugin)
            try:
                options = impl.function(**_kwargs(impl, benchmark=benchmark, command=command.name)) or []
                for option in options:
                    if not isinstance(option, Option):
                        raise PluginError(f"returned {type(option).__name__}, expected mlps.Option")
                    extra.append((name, option))
            except Exception as exc:
                self._fail(self._record(name), f"mlps_command_options failed: {type(exc).__name__}: {exc}", exc)
        return extra

    def call(self, hook_name: str, *, owner_of: str | None = None, firstresult: bool = False, **kwargs):
        """Call a hook implementation by implementation, naming the plugin when one fails.

        ``owner_of`` restricts the call to the plugin that registered that benchmark (owner hooks). A plugin's
        :class:`MlpsError` passes through unchanged (it is meant for the user); any other exception becomes a
        :class:`PluginError` that names the plugin and the hook. Returns the list of non-None results, or the
        first one when ``firstresult``.
        """
        owner = self.benchmarks()[owner_of].plugin if owner_of is not None else None
        results = []
        for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):  # pluggy's LIFO order
            if (owner is not None and impl.plugin is not owner) or impl.hookwrapper or impl.wrapper:
                continue  # mlps hooks take no wrappers: every implementation is called directly
            try:
                result = impl.function(**_kwargs(impl, **kwargs))
            except MlpsError:
                raise
            except Exception as exc:
                name = self.pm.get_name(impl.plugin)
                raise PluginError(f"plugin {name!r} failed in {hook_name}: {type(exc).__name__}: {exc}",
                                  suggestion=f"report it to the plugin's authors; MLPS_DISABLE_PLUGINS={name} "
                                             "turns it off") from exc
            if result is not None:
                if firstresult:
                    return result
                results.append(result)
        return None if firstresult else results

    def failed_plugin_for(self, name: str) -> PluginRecord | None:
        """The failed plugin that most likely provides benchmark ``name`` (by entry-point or dist name)."""
        return next((r for r in self.records.values() if r.status == "failed" and name in r.names()), None)

    def _record(self, name: str) -> PluginRecord:
        """The record of a registered plugin (one registered straight on pluggy gets a bare record)."""
        return self.records.setdefault(name, PluginRecord(name=name))

    def versions(self) -> dict[str, str]:
        return {r.distribution or r.name: r.version or "unknown" for r in self.records.values()
                if r.status == "active"}


def _kwargs(impl, **available) -> dict:
    return {k: v for k, v in available.items() if k in impl.argnames}


def _check_benchmark(bench: Benchmark, plugin_name: str) -> None:
    if not bench.name or not bench.name.replace("-", "").replace("_", "").isalnum():
        raise PluginError(f"plugin {plugin_name!r} registered an invalid benchmark name {bench.name!r}")
    seen = set()
    for command in bench.commands:
        if not isinstance(command, Command):
            raise PluginError(f"benchmark {bench.name!r}: commands must be mlps.Command records")
        if command.name in seen:
            raise PluginError(f"benchmark {bench.name!r} declares command {command.name!r} twice")
        seen.add(command.name)


def get_plugin_manager(*, load_entrypoints: bool = True, extra_plugins: Iterable[tuple[str, Any]] = (),
                       strict: bool | None = None) -> MlpsPluginManager:
    """A fresh plugin manager. ``extra_plugins`` are ``(name, plugin)`` pairs registered after entry points."""
    manager = MlpsPluginManager(strict=strict)
    if load_entrypoints:
        manager.load_entrypoints()
    for name, plugin in extra_plugins:
        manager.add_plugin(plugin, name)
    return manager


def report_failures(manager: MlpsPluginManager, stream=None) -> None:
    """Warn once on stderr about each failed plugin, pointing at the escape hatch."""
    stream = stream or sys.stderr
    for record in manager.records.values():
        if record.status == "failed":
            who = f"{record.distribution} {record.version}" if record.distribution else record.name
            stream.write(f"warning: plugin {record.name!r} ({who}) not loaded: {record.error}\n"
                         f"  (set MLPS_DISABLE_PLUGINS={record.name} to silence; see `mlps plugins`)\n")
