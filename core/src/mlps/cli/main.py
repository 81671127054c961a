"""The console script: builds the plugin manager and the CLI, runs it, and renders errors as one line plus a
hint with a documented exit code (tracebacks only under ``--debug`` or ``MLPS_DEBUG=1``)."""

from __future__ import annotations

import os
import sys

from mlps.errors import ExitCode, MlpsError


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("MLPS_DEBUG", "").lower() in ("1", "true", "yes")


def _console_level(argv: list[str]) -> int:
    """The console log level from --debug / --verbose / --stream-log-level, read before click parses, so the
    plugin loading that builds the CLI is logged at the right level too."""
    import logging

    if _debug_requested(argv):
        return logging.DEBUG
    level = logging.INFO
    if "--stream-log-level" in argv:
        i = argv.index("--stream-log-level")
        named = logging.getLevelName(argv[i + 1].upper()) if i + 1 < len(argv) else None
        level = named if isinstance(named, int) else level
    if "--verbose" in argv:
        level = min(level, 15)
    return level


def _setup_logging(argv: list[str]) -> None:
    import logging

    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(_console_level(argv))
    fmt = "%(asctime)s|%(levelname)s:%(module)s:%(lineno)d: %(message)s" if _debug_requested(argv) \
        else "%(asctime)s|%(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)


def render_error(exc: MlpsError, debug: bool) -> None:
    err = sys.stderr
    err.write(f"error: {exc.message}\n")
    for line in exc.details.get("issues", []) or []:
        err.write(f"  {line}\n")
    tail = exc.details.get("stderr_tail")
    if tail:
        err.write("  last lines of its stderr:\n" + "".join(f"    {l}\n" for l in tail.splitlines()))
    if exc.suggestion:
        err.write(f"hint: {exc.suggestion}\n")
    if debug:
        import traceback

        traceback.print_exception(exc)


def run_cli(argv: list[str], manager=None, executor_factory=None) -> int:
    """Build and run the CLI for ``argv``; returns the exit code. Shared by :func:`main` and the test kit.

    A help or version request with no manager given is served from the help cache when it is current."""
    from mlps.cli import helpcache

    if manager is None and helpcache.is_help_request(argv):
        cached = helpcache.load()
        if cached is not None:
            code = _cached_help(cached, argv)
            if code is not None:
                return code

    def build():
        nonlocal manager
        from mlps.cli.build import CliState, create_cli, expand_greedy, greedy_flags
        from mlps.plugins import get_plugin_manager, report_failures

        if manager is None:
            manager = get_plugin_manager()
            report_failures(manager)
            helpcache.save(manager)
        root = create_cli(manager)
        args = expand_greedy(argv, greedy_flags(root, manager, argv))
        state = CliState(manager, executor_factory=executor_factory, argv=args,
                         main=lambda again: run_cli(list(again), manager, executor_factory))
        return root, args, state

    return _invoke(build, argv)


def _cached_help(cached: dict, argv: list[str]) -> int | None:
    """Serve a help or version screen from the cache: printed as kept, or rendered from the cached registrations
    (and kept). None when the request needs the real CLI after all."""
    import io

    from mlps.cli import helpcache

    key = helpcache.screen_key(argv)
    text = (cached.get("screens") or {}).get(key)
    if text is not None:
        sys.stdout.write(text)
        return 0
    data = cached.get("data") or {}
    real_stdout, sys.stdout = sys.stdout, io.StringIO()
    try:
        code = _invoke(lambda: (helpcache.build_cli(data), argv, helpcache.CachedState(data)), argv)
    except helpcache.NeedRealCli:
        return None
    finally:
        captured, sys.stdout = sys.stdout.getvalue(), real_stdout
    sys.stdout.write(captured)
    if code == 0:
        helpcache.remember_screen(cached, key, captured)
    return code


def _invoke(build, argv: list[str]) -> int:
    """Build the CLI and run it, turning every error into one rendered message and an exit code."""
    import click

    from mlps.cli.helpcache import NeedRealCli

    debug = _debug_requested(argv)
    try:
        root, args, state = build()
        result = root.main(args=args, prog_name="mlps", standalone_mode=False, obj=state)
        return int(result) if isinstance(result, int) else 0
    except NeedRealCli:
        raise
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("error: aborted\n")
        return ExitCode.INTERRUPTED
    except click.UsageError as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        where = exc.ctx.command_path if exc.ctx is not None else "mlps"
        sys.stderr.write(f"hint: run `{where} --help` for the usage\n")
        return ExitCode.USAGE
    except click.ClickException as exc:
        sys.stderr.write(f"error: {exc.format_message()}\n")
        return ExitCode.USAGE
    except MlpsError as exc:
        render_error(exc, debug)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return ExitCode.INTERRUPTED
    except Exception as exc:  # a bug: say so plainly
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {exc}\n")
        if debug:
            import traceback

            traceback.print_exc()
        else:
            sys.stderr.write("hint: re-run with --debug for the traceback, and report it\n")
        return ExitCode.INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from mlps.cli.helpcache import is_help_request

    if not is_help_request(argv):  # a help screen logs nothing: spare it the logging import
        _setup_logging(argv)
    code = run_cli(argv)
    sys.exit(int(code))
