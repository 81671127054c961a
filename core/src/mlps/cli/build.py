"""Assembly of the click tree from what the plugins registered. Nothing here runs at import time."""

from __future__ import annotations

import logging
from typing import Any, Callable

import click

from mlps.cli.builtin import LazyGroup, failed_command, make_root
from mlps.cli.clickopts import click_option, option_spec
from mlps.errors import ConfigurationError, PluginError
from mlps.model import Command, Option
from mlps.options import UNIVERSAL_OPTIONS, layer_values
from mlps.plugins import BenchmarkEntry, MlpsPluginManager

log = logging.getLogger("mlps")


class CliState:
    """What every command finds in ``ctx.obj``: the plugin manager, the executor factory and the argv."""

    def __init__(self, manager: MlpsPluginManager, executor_factory=None, argv=None, main=None):
        self.manager = manager
        self.pm = manager.pm
        self.executor_factory = executor_factory  # None: the real executor, imported only when a run starts
        self.argv = list(argv or [])
        self.main = main


def command_options(entry: BenchmarkEntry, command: Command) -> dict[str, Option]:
    """Every option of a command: its own, those other plugins add, then the universal ones."""
    options: dict[str, Option] = {}
    flags: dict[str, str] = {}
    sources = [(entry.plugin_name, o) for o in command.options]
    sources += entry.extra_options.get(command.name, [])
    sources += [("mlps-core", o) for o in UNIVERSAL_OPTIONS]
    for provider, option in sources:
        clash = option.dest in options or any(f in flags for f in option.flags)
        if clash:
            raise PluginError(f"option {option.flags[0]} from {provider!r} clashes with one already on "
                              f"'{entry.benchmark.name} {command.name}' (from {flags.get(option.flags[0]) or 'another plugin'})")
        options[option.dest] = option
        for flag in option.flags:
            flags[flag] = provider
    return options


def _convert(ctx: click.Context, params: dict[str, click.Parameter], options: dict[str, Option]) -> Callable:
    def convert(dest: str, raw: Any) -> Any:
        option, param = options[dest], params[dest]
        if option.multiple and not isinstance(raw, (list, tuple)):
            raw = [raw]
        if not option.multiple and isinstance(raw, (list, tuple)):
            raise ConfigurationError(f"{option.flags[0]} takes one value, got a list", parameter=dest)
        try:
            if option.type is bool:
                return click.BOOL.convert(raw, param, ctx)
            if option.multiple:
                return tuple(param.type.convert(str(v) if not isinstance(v, (int, float)) else v, param, ctx) for v in raw)
            return param.type.convert(raw if isinstance(raw, (int, float)) else str(raw), param, ctx)
        except click.BadParameter as exc:
            raise ConfigurationError(f"bad value for {option.flags[0]}: {exc.format_message()}", parameter=dest,
                                     actual=raw) from None
    return convert


def _finish_values(values: dict, sources: dict, options: dict[str, Option]) -> dict:
    for dest, option in options.items():
        if values.get(dest) is None or (option.multiple and values.get(dest) == ()):
            if option.required:
                raise ConfigurationError(f"missing required option {option.flags[0]}", parameter=dest,
                                         suggestion=f"pass {option.flags[0]}, or set it in --config-file")
            default = option.default() if callable(option.default) else option.default
            if default is not None or dest not in values:
                values[dest] = tuple(default) if option.multiple and default is not None else default
            if option.type is bool and values[dest] is None and option.secondary is None:
                values[dest] = False
    return values


def _make_callback(entry: BenchmarkEntry, command: Command, options: dict[str, Option]):
    @click.pass_context
    def callback(ctx: click.Context, **values):
        from mlps.lifecycle import Invocation, run_invocation

        state: CliState = ctx.find_object(CliState)
        params = {p.name: p for p in ctx.command.params}
        typed = {name for name in values
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
        values, sources = layer_values(values, typed, options, _convert(ctx, params, options), log.warning)
        values = _finish_values(values, sources, options)
        if entry.conflict:
            raise PluginError(entry.conflict, suggestion="uninstall one of them or set MLPS_DISABLE_PLUGINS")
        invocation = Invocation(state.manager, entry, command, values, sources, argv=state.argv)
        if state.executor_factory is not None:
            invocation.executor_factory = state.executor_factory
        return run_invocation(invocation)
    return callback


def benchmark_group(entry: BenchmarkEntry) -> click.Group:
    """``mlps <benchmark>``: its commands are assembled when addressed (see LazyGroup)."""
    commands = {c.name: c for c in entry.benchmark.commands}

    def make(name: str) -> click.Command:
        command = commands[name]
        try:
            options = command_options(entry, command)
        except PluginError as exc:
            return failed_command(command.name, exc.message)
        return click.Command(command.name, help=command.help,
                             params=[click_option(option_spec(o)) for o in options.values()],
                             callback=_make_callback(entry, command, options))

    return LazyGroup(entry.benchmark.name, commands, make, help=entry.benchmark.help, no_args_is_help=True)


def _failed_message(manager: MlpsPluginManager, name: str) -> str | None:
    record = manager.failed_plugin_for(name)
    if record is None:
        return None
    who = f"{record.distribution} {record.version}" if record.distribution else record.name
    return f"plugin {record.name!r} ({who}) failed to load: {record.error}"


def create_cli(manager: MlpsPluginManager) -> click.Group:
    """The root ``mlps`` group for this plugin manager (tests build one per test)."""
    root = make_root(lambda name: _failed_message(manager, name))
    reserved = set(root.commands)
    for name, entry in sorted(manager.benchmarks().items()):
        if name in reserved:
            root.add_command(failed_command(name, f"benchmark {name!r} from plugin {entry.plugin_name!r} "
                                                  f"clashes with a built-in command"))
            continue
        root.add_command(benchmark_group(entry))
    return root


def greedy_flags(root: click.Group, manager: MlpsPluginManager, argv: list[str]) -> set[str]:
    """Flags of the addressed command that take several space-separated values (``--params a=1 b=2``)."""
    words = [a for a in argv if not a.startswith("-")][:2]
    if len(words) < 2 or words[0] not in manager.benchmarks():
        return set()
    entry = manager.benchmarks()[words[0]]
    command = entry.benchmark.command(words[1])
    if command is None:
        return set()
    try:
        options = command_options(entry, command)
    except PluginError:
        return set()
    return {flag for o in options.values() if o.greedy for flag in o.flags}


def expand_greedy(argv: list[str], flags: set[str]) -> list[str]:
    """Rewrite ``--params a=1 b=2`` as ``--params a=1 --params b=2`` so click's multiple option takes both."""
    out: list[str] = []
    current = None
    for token in argv:
        if token.startswith("-"):
            current = token if token in flags else None
            out.append(token)
            continue
        if current is not None and out and out[-1] != current and not out[-1].startswith("-"):
            out.append(current)
        out.append(token)
    return out
