"""The progress helper draws on a terminal only, and stays silent in pipes and CI."""

from __future__ import annotations

import io
import sys

from mlps.progress import is_interactive, progress_bar, status


class FakeTty(io.StringIO):
    def isatty(self):
        return True


def test_silent_in_pipes(monkeypatch):
    stream = io.StringIO()
    with progress_bar("Grading", total=3, stream=stream) as bar:
        for _ in range(3):
            bar.advance()
    assert bar.completed == 3 and stream.getvalue() == ""


def test_draws_on_terminal_and_not_in_ci(monkeypatch):
    for name in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TF_BUILD", "MLPS_NO_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stream = FakeTty()
    assert is_interactive(stream)
    with progress_bar("Grading runs", total=2, stream=stream) as bar:
        bar.advance(2)
        bar.update(description="done")
    assert "Grading runs" in stream.getvalue() or "done" in stream.getvalue()
    with status("Collecting", stream=FakeTty()) as tracker:
        tracker.advance()
    monkeypatch.setenv("CI", "true")
    assert not is_interactive(FakeTty())
    quiet = FakeTty()
    with progress_bar("x", total=1, stream=quiet) as bar:
        bar.advance()
    assert quiet.getvalue() == ""


def test_progress_does_not_import_rich_until_used():
    import subprocess

    code = "import sys, mlps.progress, mlps.reports, mlps.cli.utility_commands; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
