"""The console script: builds the plugin manager and the CLI, runs it, and renders errors as one line plus a
hint with a documented exit code (tracebacks only under ``--debug`` or ``MLPS_DEBUG=1``)."""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from mlps.errors import ExitCode, MlpsError


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("MLPS_DEBUG", "").lower() in ("1", "true", "yes")


def _console_level(argv: list[str]) -> int:
    """The console log level from --debug / --verbose / --stream-log-level, read before click parses, so the
    plugin loading that builds the CLI is logged at the right level too."""
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
        traceback.print_exception(exc)


def run_cli(argv: list[str], manager=None, executor_factory=None) -> int:
    """Build and run the CLI for ``argv``; returns the exit code. Shared by :func:`main` and the test kit."""
    from mlps.cli.build import CliState, create_cli, expand_greedy, greedy_flags
    from mlps.plugins import get_plugin_manager, report_failures

    debug = _debug_requested(argv)
    try:
        if manager is None:
            manager = get_plugin_manager()
            report_failures(manager)
        root = create_cli(manager)
        argv = expand_greedy(argv, greedy_flags(root, manager, argv))
        state = CliState(manager, executor_factory=executor_factory, argv=argv,
                         main=lambda args: run_cli(list(args), manager, executor_factory))
        result = root.main(args=argv, prog_name="mlps", standalone_mode=False, obj=state)
        return int(result) if isinstance(result, int) else 0
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
            traceback.print_exc()
        else:
            sys.stderr.write("hint: re-run with --debug for the traceback, and report it\n")
        return ExitCode.INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _setup_logging(argv)
    code = run_cli(argv)
    sys.exit(int(code))
