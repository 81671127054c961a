"""The run lifecycle with real processes: results layout, metadata in every outcome, signals, MPI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlps import Benchmark, Command, Host, Step, hookimpl
from mlps.mpi import mpi_prefix

from core_toy import read_metadata

LEAF = re.compile(r"^\d{8}_\d{6}$")


def mlps_process(args, results, **env):
    full_env = {**os.environ, "MLPS_LOAD_PLUGINS": "example", "MLPS_KILL_GRACE": "2", "PYTHONUNBUFFERED": "1", **env}
    return subprocess.Popen([sys.executable, "-m", "mlps", "example", "run", "--results-dir", str(results), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie is dead, only waiting for its parent to reap it


def wait_for_worker(proc) -> tuple[int, int]:
    line = proc.stdout.readline()
    match = re.match(r"worker (\d+) started, helper (\d+)", line)
    assert match, f"unexpected first line {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
    return int(match.group(1)), int(match.group(2))


def test_real_run_layout_and_metadata(tmp_path):
    proc = mlps_process(["--seconds", "0.3"], tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    leaves = list((tmp_path / "example" / "default" / "run").iterdir())
    assert len(leaves) == 1 and LEAF.match(leaves[0].name)
    leaf = leaves[0]
    meta = json.loads((leaf / f"example_{leaf.name}_metadata.json").read_text())
    for key in ("benchmark_type", "model", "command", "run_datetime", "num_processes", "accelerator", "parameters",
                "override_parameters", "system_info", "runtime", "verification", "executed_command",
                "command_output_files", "args", "exit_status", "invocation_start_time", "invocation_end_time",
                "plugin_versions"):
        assert key in meta, key
    assert meta["exit_status"] == "success" and meta["metrics"]["elapsed_seconds"] >= 0.3
    assert "progress" in (leaf / "example_run.stdout.log").read_text()
    assert "progress" in out  # streamed live as well as saved
    assert meta["plugin_versions"] == {"mlps-example": "0.1.0"}
    assert not list(leaf.glob(".*.tmp"))  # the atomic write left no temporary file


def test_failed_run_records_failure_and_keeps_old_results(tmp_path):
    ok = mlps_process(["--seconds", "0"], tmp_path)
    ok.communicate(timeout=60)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and ".mlps" not in p.parts}
    proc = mlps_process(["--seconds", "0", "--exit-code", "3"], tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 6
    assert err.count("error: step 'run' exited with status 3") == 1
    assert "worker failing on request" in err  # the stderr tail is shown
    assert "Traceback" not in err
    failed = [m for m in read_metadata(tmp_path, "example") if m["exit_status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"]["code"] == "E201"
    for path, content in before.items():
        assert path.read_bytes() == content


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_whole_process_group(tmp_path, sig):
    proc = mlps_process(["--seconds", "60"], tmp_path)
    worker, helper = wait_for_worker(proc)
    proc.send_signal(sig)
    start = time.monotonic()
    proc.wait(timeout=10)
    deadline = start + 5
    while time.monotonic() < deadline and not (gone(worker) and gone(helper)):
        time.sleep(0.05)
    assert gone(worker) and gone(helper), "child process group still alive 5 s after the signal"
    assert proc.returncode == 8
    meta = read_metadata(tmp_path, "example")[0]
    assert meta["exit_status"] == "interrupted"
    assert meta["error"]["message"] == f"interrupted by {sig.name}"


def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path):
    proc = mlps_process(["--seconds", "60", "--ignore-sigterm"], tmp_path, MLPS_KILL_GRACE="1")
    worker, _ = wait_for_worker(proc)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)
    assert gone(worker)
    assert proc.returncode == 8
    assert read_metadata(tmp_path, "example")[0]["exit_status"] == "interrupted"


def test_real_mpirun_two_ranks_through_the_core_launch_line(tmp_path):
    argv = mpi_prefix([Host("127.0.0.1")], 2, allow_run_as_root=True, oversubscribe=True)
    assert argv[:5] == ["mpirun", "-n", "2", "-host", "127.0.0.1:2"]
    # each rank writes its own file: the ranks' stdout may interleave mid-line when it is unbuffered
    code = ("import os, pathlib, sys; r = os.environ['OMPI_COMM_WORLD_RANK']; "
            "pathlib.Path(sys.argv[1], 'rank' + r).write_text(os.environ['OMPI_COMM_WORLD_SIZE'])")
    proc = subprocess.run(argv + [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("rank*")) == ["rank0", "rank1"]
    assert {p.read_text() for p in tmp_path.glob("rank*")} == {"2"}


class MpiToy:
    @hookimpl
    def mlps_register_benchmarks(self, register):
        register(Benchmark("mpitoy", commands=(Command("run", uses_mpi=True),)))

    @hookimpl
    def mlps_prepare_run(self, run):
        run.num_processes = 2

    @hookimpl
    def mlps_build_commands(self, run):
        code = ("import os, pathlib; r = os.environ['OMPI_COMM_WORLD_RANK']; "
                f"pathlib.Path({str(run.run_dir)!r}, 'rank' + r).write_text(r)")
        return [Step(argv=run.mpi_prefix() + [sys.executable, "-c", code], name="run")]


def test_cli_run_under_real_mpirun(mlps_cli, register_plugin, tmp_path):
    register_plugin(MpiToy(), name="mpitoy")
    result = mlps_cli.invoke(["mpitoy", "run", "--allow-run-as-root", "--oversubscribe", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path, "mpitoy")[0]
    leaf = Path(meta["result_dir"])
    assert sorted(p.name for p in leaf.glob("rank*")) == ["rank0", "rank1"]
    assert meta["executed_command"].startswith("mpirun -n 2 -host 127.0.0.1:2 --bind-to none --map-by socket "
                                               "--oversubscribe --allow-run-as-root")


def test_mpi_bin_env_overrides(monkeypatch):
    monkeypatch.setenv("MPI_RUN_BIN", "/opt/ompi/bin/mpirun")
    assert mpi_prefix([Host("a"), Host("b")], 5, mpi_params=["-x FOO --mca btl tcp,self"]) == [
        "/opt/ompi/bin/mpirun", "-n", "5", "-host", "a:3,b:2", "--bind-to", "none", "--map-by", "node",
        "-x", "FOO", "--mca", "btl", "tcp,self"]


def test_slots_split_like_the_reference():
    from mlps.mpi import distribute_slots, parse_hosts
    hosts = parse_hosts(["h1,h2 h3", "h4", "h5,h6"])
    assert [n for _, n in distribute_slots(hosts, 200)] == [34, 34, 33, 33, 33, 33]
    assert distribute_slots(parse_hosts("a:4,b:1"), 5) == [("a", 4), ("b", 1)]


class GradedToy(MpiToy):
    """A rule that needs the run's metrics: it can only pass once the run has finished."""

    @hookimpl
    def mlps_register_benchmarks(self, register):
        register(Benchmark("graded", commands=(Command("run"),)))

    @hookimpl
    def mlps_prepare_run(self, run):
        run.num_processes = 1

    @hookimpl
    def mlps_build_commands(self, run):
        return [Step(argv=[sys.executable, "-c", "pass"], name="run")]

    @hookimpl
    def mlps_parse_results(self, run):
        return {"throughput": 42}

    @hookimpl
    def mlps_run_checkers(self, benchmark):
        from mlps.rules import Issue, RunChecker, Validation

        class NeedsMetrics(RunChecker):
            def check_throughput(self):
                if "throughput" not in (self.metadata.get("metrics") or {}):
                    return Issue(Validation.OPEN, "no throughput measured yet", parameter="metrics.throughput")

        return [NeedsMetrics] if benchmark == "graded" else None


def test_finished_run_is_graded_again_with_its_metrics(mlps_cli, register_plugin, tmp_path):
    register_plugin(GradedToy(), name="graded")
    result = mlps_cli.invoke(["graded", "run", "--open", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path, "graded")[0]
    assert meta["gate_verification"] == "OPEN"
    assert meta["verification"] == "CLOSED" and meta["verification_issues"] == []
