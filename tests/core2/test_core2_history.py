"""History: appends, concurrent appends from real processes, corrupt lines, show/get/rerun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlps import history
from mlps.cli.utility_commands import add_utility_commands
from mlps.errors import ConfigurationError

WRITER = """
import sys
from mlps import history
for i in range(int(sys.argv[3])):
    history.append(sys.argv[1], ["mlps", "training", "run", "--tag", f"p{sys.argv[2]}-{i}", "--note", "a b"])
"""


def test_append_show_get_round_trip(tmp_path):
    first = history.append(tmp_path, ["mlps", "training", "run", "--params", "x=1 y", "-m", "unet3d"])
    second = history.append(tmp_path, ["mlps", "kvcache", "run"], timestamp="20260101_000000")
    assert (first.id, second.id) == (1, 2)
    line = (tmp_path / ".mlps" / "history").read_text().splitlines()[0]
    assert line.startswith("1,") and line.endswith("training run --params 'x=1 y' -m unet3d")
    assert [e.id for e in history.show(tmp_path)] == [1, 2]
    assert [e.id for e in history.show(tmp_path, n=1)] == [2]
    assert history.show(tmp_path, id=1)[0].argv == ["mlps", "training", "run", "--params", "x=1 y", "-m", "unet3d"]
    assert history.rerun_argv(history.get(tmp_path, 1))[:2] == ["training", "run"]
    assert str(second) == "2 : 20260101_000000 : mlps kvcache run"


def test_unknown_id_is_configuration_error_exit_2(tmp_path):
    history.append(tmp_path, ["mlps", "x"])
    with pytest.raises(ConfigurationError) as err:
        history.get(tmp_path, 99)
    assert err.value.exit_code == 2 and "99" in err.value.message and "history show" in err.value.suggestion
    with pytest.raises(ConfigurationError):
        history.get(tmp_path / "never", 1)


def test_corrupt_lines_do_not_break_show_and_ids_continue(tmp_path):
    history.append(tmp_path, ["mlps", "one"])
    path = tmp_path / ".mlps" / "history"
    with open(path, "ab") as handle:
        handle.write(b"garbage line\n\xff\xfe\x00binary\n7,2026010")  # the last one: a writer died mid-line
    entry = history.append(tmp_path, ["mlps", "two"])
    assert entry.id == 2
    entries, bad = history.read_entries(tmp_path)
    assert [e.command for e in entries] == ["mlps one", "mlps two"]
    assert bad == [2, 3, 4]
    assert path.read_text(errors="replace").splitlines()[-1].startswith("2,")


def test_concurrent_appends_from_processes_get_unique_ids(tmp_path):
    procs, per = 6, 25
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(p), str(per)])
                for p in range(procs)]
    assert all(c.wait(timeout=120) == 0 for c in children)
    entries, bad = history.read_entries(tmp_path)
    assert bad == []
    assert sorted(e.id for e in entries) == list(range(1, procs * per + 1))
    tags = {e.argv[4] for e in entries}
    assert len(tags) == procs * per
    assert all(e.argv[-1] == "a b" for e in entries)


def _cli(args, main=None):
    root = click.Group("mlps")
    add_utility_commands(root)

    class State:
        pass

    state = State()
    state.pm, state.main = None, main
    return CliRunner().invoke(root, args, obj=state)


def test_cli_show_and_rerun(tmp_path):
    history.append(tmp_path, ["mlps", "training", "run", "--results-dir", str(tmp_path)])
    history.append(tmp_path, ["mlps", "kvcache", "datasize"])
    (tmp_path / ".mlps" / "history").open("a").write("not a record\n")
    result = _cli(["history", "show", "-rd", str(tmp_path), "-n", "1"])
    assert result.exit_code == 0
    assert result.stdout.strip().endswith(": mlps kvcache datasize") and result.stdout.startswith("2 : ")
    assert "skipped 1 unreadable line" in result.stderr
    result = _cli(["history", "show", "-rd", str(tmp_path), "--id", "1"])
    assert result.stdout.startswith("1: mlps training run")

    calls = []
    result = _cli(["history", "rerun", "-rd", str(tmp_path), "1"], main=lambda argv: calls.append(argv) or 6)
    assert result.exit_code == 6
    assert calls == [["training", "run", "--results-dir", str(tmp_path)]]

    result = _cli(["history", "rerun", "-rd", str(tmp_path), "42"], main=lambda argv: 0)
    assert isinstance(result.exception, ConfigurationError)


def test_cli_missing_results_dir_is_filesystem_error(tmp_path):
    from mlps.errors import FileSystemError

    for args in (["history", "show", "-rd", str(tmp_path / "nope")],
                 ["history", "rerun", "-rd", str(tmp_path / "nope"), "1"]):
        result = _cli(args, main=lambda argv: 0)
        assert isinstance(result.exception, FileSystemError) and "does not exist" in result.exception.message


def test_results_dir_from_environment(tmp_path):
    history.append(tmp_path, ["mlps", "a"])
    root = click.Group("mlps")
    add_utility_commands(root)
    result = CliRunner().invoke(root, ["history", "show"], env={"MLPS_RESULTS_DIR": str(tmp_path)}, obj=object())
    assert result.exit_code == 0 and "mlps a" in result.stdout


def test_real_cli_rerun_unknown_id_exits_2(tmp_path):
    mlps = Path(sys.executable).with_name("mlps")
    env = {**os.environ, "MLPS_DISABLE_PLUGINS": "checkpointing,kvcache,training,vectordb,collectors"}
    proc = subprocess.run([str(mlps), "history", "rerun", "-rd", str(tmp_path), "3"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "no history entry with id 3" in proc.stderr


def test_end_to_end_run_history_rerun_and_report(tmp_path):
    """The real console script: a run is recorded, re-run from history, and both runs are reported."""
    mlps = Path(sys.executable).with_name("mlps")
    env = {**os.environ, "MLPS_DISABLE_PLUGINS": "checkpointing,kvcache,training,vectordb,collectors"}
    rd = tmp_path / "results"

    def call(*args):
        return subprocess.run([str(mlps), *map(str, args)], capture_output=True, text=True, env=env, timeout=120)

    first = call("example", "run", "--seconds", "0", "-rd", rd, "--allow-run-as-root", "--oversubscribe")
    assert first.returncode == 0, first.stderr
    shown = call("history", "show", "-rd", rd)
    assert shown.stdout.startswith("1 : ") and "example run --seconds 0" in shown.stdout
    again = call("history", "rerun", "-rd", rd, "1")
    assert again.returncode == 0, again.stderr
    report = call("reports", "reportgen", "-rd", rd, "--format", "json")
    assert report.returncode == 0, report.stderr
    import json

    data = json.loads(report.stdout)
    assert data["summary"]["runs"]["CLOSED"] == 2 and data["groups"][0]["runs"] == 2
    # the re-run is recorded too, as id 2
    assert [e.id for e in history.show(rd)] == [1, 2]
