"""A small progress indicator: a rich progress bar (or spinner) on a terminal, nothing in pipes and CI logs.

Usage::

    with progress_bar("Grading runs", total=len(runs)) as bar:
        for run in runs:
            ...
            bar.advance()

rich is imported only when a bar is actually shown, so importing this module stays cheap.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

#: Environment variables that mean "a CI log, not a person at a terminal".
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD")


def is_interactive(stream: TextIO | None = None) -> bool:
    """True when ``stream`` (default stderr) is a terminal a person is watching."""
    stream = stream or sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    if not tty or os.environ.get("TERM") == "dumb" or os.environ.get("MLPS_NO_PROGRESS"):
        return False
    return not any(os.environ.get(name) for name in CI_VARIABLES)


class _Silent:
    """The tracker used in pipes and CI: counts, shows nothing."""

    def __init__(self, total: int | None):
        self.total = total
        self.completed = 0

    def advance(self, amount: int = 1) -> None:
        self.completed += amount

    def update(self, completed: int | None = None, description: str | None = None) -> None:
        if completed is not None:
            self.completed = completed


class _RichTracker(_Silent):
    def __init__(self, progress, task, total):
        super().__init__(total)
        self._progress, self._task = progress, task

    def advance(self, amount: int = 1) -> None:
        super().advance(amount)
        self._progress.advance(self._task, amount)

    def update(self, completed: int | None = None, description: str | None = None) -> None:
        super().update(completed, description)
        kwargs = {"completed": completed} if completed is not None else {}
        if description is not None:
            kwargs["description"] = description
        self._progress.update(self._task, **kwargs)


@contextmanager
def progress_bar(description: str, total: int | None = None, *, enabled: bool = True,
                 stream: TextIO | None = None) -> Iterator[_Silent]:
    """Show progress of ``total`` items (a spinner when ``total`` is None); yields ``advance``/``update``.

    Nothing is drawn when ``enabled`` is False or ``stream`` (default stderr) is not an interactive terminal.
    The bar is transient: it disappears when the block ends, so it never mixes into logs or reports.
    """
    stream = stream or sys.stderr
    if not enabled or not is_interactive(stream):
        yield _Silent(total)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, \
        TimeElapsedColumn

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(file=stream), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield _RichTracker(progress, task, total)


@contextmanager
def status(description: str, *, enabled: bool = True, stream: TextIO | None = None) -> Iterator[_Silent]:
    """A spinner for one long step of unknown length (collection, command execution)."""
    with progress_bar(description, None, enabled=enabled, stream=stream) as tracker:
        yield tracker
