"""A cache of what the plugins registered, so ``mlps --help`` (and ``--version``) need not import them.

Importing every plugin, and pluggy with them, costs more than the rest of a help screen. After each real load the
core saves the registrations (benchmarks, commands, option specs, plugin records) together with a fingerprint of
everything they came from: the interpreter, the ``mlps`` entry points, every file of each plugin's package and of
the core, and the plugin-selection variables. A help request whose fingerprint matches is served from the cache;
anything else loads the plugins for real. A help screen rendered from the cache is kept too, keyed by its
arguments and the terminal width, and printed as is the next time. ``MLPS_NO_HELP_CACHE=1`` turns it all off.
"""

from __future__ import annotations

import os
import sys
import zlib

FORMAT = 1
_ENV_KEYS = ("MLPS_DISABLE_PLUGINS", "MLPS_LOAD_PLUGINS", "MLPS_STRICT_PLUGINS")


class NeedRealCli(Exception):
    """Raised when a cached command would have to run: the caller rebuilds the CLI from loaded plugins."""


def enabled() -> bool:
    return os.environ.get("MLPS_NO_HELP_CACHE", "").lower() not in ("1", "true", "yes")


def is_help_request(argv: list[str]) -> bool:
    return not argv or any(a in ("-h", "--help", "--version") for a in argv)


def cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlps", f"help-{zlib.crc32(sys.prefix.encode()):08x}.json")


def _package_location(module: str) -> str | None:
    top = module.split(".")[0]
    for entry in sys.path:
        base = os.path.join(entry or ".", top)
        if os.path.isdir(base):
            return base
        if os.path.isfile(base + ".py"):
            return base + ".py"
    return None


def _tree_stamp(location: str) -> list:
    if os.path.isfile(location):
        st = os.stat(location)
        return [location, st.st_mtime_ns, st.st_size]
    stamp = []
    for folder, dirs, files in os.walk(location):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            st = os.stat(os.path.join(folder, name))
            stamp.append([os.path.join(folder, name), st.st_mtime_ns, st.st_size])
    return stamp


def fingerprint() -> list | None:
    """Everything the registrations depend on, or None when a plugin's files cannot be located."""
    from mlps import __file__ as core_init, __version__
    from mlps.entrypoints import entry_points

    key: list = [FORMAT, __version__, sys.version, [os.environ.get(k) for k in _ENV_KEYS],
                 _tree_stamp(os.path.dirname(core_init))]
    for ep in sorted(entry_points(), key=lambda e: e.name):
        location = _package_location(ep.module)
        if location is None:
            return None
        key.append([ep.name, ep.value, ep.dist_path, _tree_stamp(location)])
    return key


def snapshot(manager) -> dict:
    """The registrations of a loaded plugin manager, as JSON-native data."""
    from mlps.cli.build import _failed_message, command_options
    from mlps.cli.clickopts import option_spec
    from mlps.errors import PluginError

    benchmarks = []
    for name, entry in sorted(manager.benchmarks().items()):
        commands = []
        for command in entry.benchmark.commands:
            try:
                specs, error = [option_spec(o) for o in command_options(entry, command).values()], None
            except PluginError as exc:
                specs, error = [], exc.message
            commands.append({"name": command.name, "help": command.help, "options": specs, "error": error})
        benchmarks.append({"name": name, "help": entry.benchmark.help, "plugin": entry.plugin_name,
                           "conflict": entry.conflict, "commands": commands})
    return {"records": [r.to_dict() for r in manager.records.values()], "benchmarks": benchmarks,
            "failed": {name: _failed_message(manager, name) for record in manager.records.values()
                       if record.status == "failed" for name in record.names()}}


def save(manager) -> None:
    """Store the manager's registrations under the current fingerprint (best effort, atomic)."""
    if not enabled():
        return
    try:
        import json

        key = fingerprint()
        if key is None:
            return
        path = cache_path()
        try:
            with open(path, encoding="utf-8") as handle:
                if json.load(handle).get("key") == json.loads(json.dumps(key)):
                    return  # still current: keep it, and the help screens rendered from it
        except (OSError, ValueError):
            pass
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "data": snapshot(manager)}, handle)
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError):
        pass


def load() -> dict | None:
    """The cache (``key``, ``data``, ``screens``) if it still matches the installed plugins, else None."""
    if not enabled():
        return None
    try:
        import json

        with open(cache_path(), encoding="utf-8") as handle:
            cached = json.load(handle)
        key = fingerprint()
    except (OSError, ValueError):
        return None
    if key is None or cached.get("key") != json.loads(json.dumps(key)):
        return None
    records = (cached.get("data") or {}).get("records", [])
    if os.environ.get("MLPS_STRICT_PLUGINS") and any(r.get("status") == "failed" for r in records):
        return None  # strict mode must raise the load error, which only a real load does
    return cached


def screen_key(argv: list[str]) -> str:
    """Which rendered help screen ``argv`` asks for. click wraps help at min(columns - 2, 78), so every width of
    80 columns or more renders alike."""
    columns = os.environ.get("COLUMNS", "")
    if not columns.isdigit():
        try:
            columns = str(os.get_terminal_size(sys.__stdout__.fileno()).columns)
        except (OSError, ValueError, AttributeError):
            columns = "80"
    return "\x1f".join([*argv, str(min(int(columns), 80))])


def remember_screen(cached: dict, key: str, text: str) -> None:
    """Keep a rendered help screen, so the same request next time prints it without building any CLI."""
    screens = cached.setdefault("screens", {})
    if len(screens) >= 64:
        screens.clear()
    screens[key] = text
    try:
        import json

        path = cache_path()
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(cached, handle)
        os.replace(tmp, path)
    except (OSError, ValueError, TypeError):
        pass


class _Record:
    def __init__(self, data: dict):
        self.__dict__.update(data)


class CachedState:
    """Stands in for CliState while a help screen is drawn from the cache."""

    def __init__(self, data: dict):
        self.records = {r["name"]: _Record(r) for r in data.get("records", [])}
        self.manager = self


def _refuse(**_values):
    raise NeedRealCli()


def build_cli(data: dict):
    """The root group drawn from cached registrations; any command callback asks for the real CLI."""
    from mlps.cli.builtin import make_root

    failed = data.get("failed") or {}
    root = make_root(lambda name: failed.get(name))
    for bench in data.get("benchmarks", []):
        if bench["name"] not in root.commands:
            root.add_command(_cached_group(bench))
    return root


def _cached_group(bench: dict):
    """A benchmark group whose commands are made from their cached specs only when addressed."""
    import click

    from mlps.cli.builtin import LazyGroup, failed_command
    from mlps.cli.clickopts import click_option

    commands = {c["name"]: c for c in bench["commands"]}

    def make(name):
        command = commands[name]
        if command["error"]:
            return failed_command(name, command["error"])
        return click.Command(name, help=command["help"], callback=_refuse,
                             params=[click_option(spec) for spec in command["options"]])

    return LazyGroup(bench["name"], commands, make, help=bench["help"], no_args_is_help=True)
