"""Utility command groups: ``mlps reports``, ``mlps history`` and ``mlps lockfile``.

The root group puts an object with ``.pm`` (the plugin manager) and ``.main`` (``main(argv) -> int``) into
``ctx.obj``. Errors are raised as :class:`mlps.MlpsError` subclasses; the root renders them and picks the exit
code. Only click and the standard library are imported at module level so ``mlps --help`` stays fast.

Exit codes of ``reports reportgen``: 0 the tree was clean and the report written; 3 the results directory is
missing or not a directory, or the tree has problems (every problem is listed and the report is still written
for the rest of the tree); 2 a bad option.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

RESULTS_DIR_ENV = "MLPS_RESULTS_DIR"


def _state(ctx: click.Context):
    """The root's object (``.pm``, ``.main``), whatever its class; None when run outside the mlps CLI."""
    return ctx.find_object(object)


def _results_dir_option(required: bool = True):
    return click.option("--results-dir", "-rd", "results_dir", type=click.Path(path_type=Path),
                        envvar=RESULTS_DIR_ENV, required=required, show_envvar=True,
                        help="The results directory the runs were written to.")


# --- reports -------------------------------------------------------------------------------------------

@click.group("reports", help="Reports over a results directory.")
def reports_group() -> None:
    pass


@reports_group.command("reportgen", help="Validate a results tree, grade every run and workload group, and "
                                         "write results.json and results.csv. Exit 0 clean, 3 problems found.")
@_results_dir_option()
@click.option("--output-dir", "-o", type=click.Path(path_type=Path), default=None,
              help="Where to write results.json and results.csv [default: the results directory].")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True,
              help="Console output format.")
@click.pass_context
def reportgen_command(ctx: click.Context, results_dir: Path, output_dir: Path | None, fmt: str) -> None:
    from mlps.errors import FileSystemError
    from mlps.reports import generate_report
    from mlps.reports_output import render

    state = _state(ctx)
    pm = getattr(state, "pm", None)
    report = generate_report(results_dir, pm, output_dir=output_dir)
    click.echo(render(report, fmt), nl=False)
    if fmt == "csv" and report.problems:  # keep stdout machine-readable; problems go to stderr
        for problem in report.problems:
            click.echo(f"problem: {problem.where}: {problem.what} (fix: {problem.fix})", err=True)
    if fmt != "text":
        click.echo(f"wrote {report.outputs['json']} and {report.outputs['csv']}", err=True)
    if report.problems:
        count = len(report.problems)
        raise FileSystemError(
            f"{count} problem{'s' if count != 1 else ''} in the results tree {results_dir}; the report covers "
            "the runs that could be read", path=results_dir, operation="reportgen", code="E404",
            suggestion="see the fix listed with each problem above, then re-run reportgen")


# --- history -------------------------------------------------------------------------------------------

def _existing_results_dir(results_dir: Path) -> Path:
    from mlps.errors import FileSystemError

    if not results_dir.is_dir():
        what = "is not a directory" if results_dir.exists() else "does not exist"
        raise FileSystemError(f"results directory {results_dir} {what}", path=results_dir, operation="read",
                              suggestion="pass the --results-dir (or MLPS_RESULTS_DIR) your runs wrote to")
    return results_dir


@click.group("history", help="Benchmark commands recorded in <results-dir>/.mlps/history.")
def history_group() -> None:
    pass


@history_group.command("show", help="Print recorded commands as 'id : timestamp : command'.")
@_results_dir_option()
@click.option("-n", "--limit", "limit", type=click.IntRange(min=0), default=None, help="Only the last N entries.")
@click.option("-i", "--id", "entry_id", type=int, default=None, help="Only the entry with this id.")
def history_show_command(results_dir: Path, limit: int | None, entry_id: int | None) -> None:
    from mlps import history

    _existing_results_dir(results_dir)
    if entry_id is not None:
        entry = history.get(results_dir, entry_id)
        click.echo(f"{entry.id}: {entry.command}")
        return
    entries, bad = history.read_entries(results_dir)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        click.echo(f"warning: skipped {len(bad)} unreadable line(s) in {history.history_path(results_dir)} "
                   f"(line {shown})", err=True)
    if limit is not None:
        entries = entries[-limit:] if limit else []
    if not entries:
        click.echo(f"no commands recorded in {history.history_path(results_dir)}", err=True)
    for entry in entries:
        click.echo(str(entry))


@history_group.command("rerun", help="Run a recorded command again (re-parsed with today's options).")
@_results_dir_option()
@click.argument("entry_id", metavar="ID", type=int)
@click.pass_context
def history_rerun_command(ctx: click.Context, results_dir: Path, entry_id: int) -> None:
    from mlps import history
    from mlps.errors import ConfigurationError

    entry = history.get(_existing_results_dir(results_dir), entry_id)
    argv = history.rerun_argv(entry)
    if not argv:
        raise ConfigurationError(f"history entry {entry_id} holds no command to run", parameter="id",
                                 actual=entry.command, suggestion="pick another id from: mlps history show")
    main = getattr(_state(ctx), "main", None)
    if main is None:
        raise ConfigurationError("history rerun needs the mlps command line (no main callable in the context)",
                                 suggestion=f"run it yourself: {entry.command}")
    click.echo(f"re-running #{entry.id}: {entry.command}", err=True)
    ctx.exit(int(main(argv) or 0))


# --- lockfile ------------------------------------------------------------------------------------------

@click.group("lockfile", help="Pin the installed mlps packages, or check this environment against a pin list.")
def lockfile_group() -> None:
    pass


@lockfile_group.command("generate", help="Write the installed mlps-* distributions and their dependencies.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              default=Path("requirements.lock"), show_default=True, help="Where to write ('-' for stdout).")
def lockfile_generate_command(output: Path) -> None:
    from mlps import lockfile

    if str(output) == "-":
        click.echo(lockfile.generate(), nl=False)
        return
    text = lockfile.generate(output)
    count = sum(1 for line in text.splitlines() if line and (not line.startswith("#") or "local:" in line))
    click.echo(f"wrote {output} ({count} packages)", err=True)


@lockfile_group.command("verify", help="Compare the installed packages with a lockfile and print the fix "
                                       "commands for every mismatch (exit 4 on a mismatch).")
@click.option("-l", "--lockfile", "lock_path", type=click.Path(path_type=Path, dir_okay=False),
              default=Path("requirements.lock"), show_default=True, help="The lockfile to check against.")
def lockfile_verify_command(lock_path: Path) -> None:
    from mlps import lockfile

    check = lockfile.verify_or_raise(lock_path)
    click.echo(check.format())


def add_utility_commands(group: click.Group) -> None:
    """Add ``reports``, ``history`` and ``lockfile`` to the root group."""
    for command in (reports_group, history_group, lockfile_group):
        group.add_command(command)


if __name__ == "__main__":  # pragma: no cover - handy for a quick manual check without the root CLI
    root = click.Group("mlps")
    add_utility_commands(root)
    sys.exit(root.main())
