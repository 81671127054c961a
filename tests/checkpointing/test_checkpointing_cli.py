"""The plugin through the CLI: in-process with the mlps.testing fixtures, and end to end with the real `mlps`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mlps_checkpointing.plugin as plugin
from checkpointing_helpers import MPI_FLAGS, needs_mpirun, no_engine_left, read_metadata

MLPS = str(Path(sys.executable).parent / "mlps")
FAST = ["--params", "checkpoint.time_between_checkpoints=0"]


@pytest.fixture
def cli(mlps_cli, register_plugin):
    register_plugin(plugin, name="checkpointing")
    return mlps_cli


def test_datasize_prints_and_records_sizes(cli, tmp_path):
    result = cli.invoke(["checkpointing", "datasize", "-m", "llama3-405b", "-np", "512", "-cm", "2048",
                         "--results-dir", tmp_path, "--hosts", "n1", "n2", "n3", "n4"])
    assert result.exit_code == 0, result.output
    assert "rank     0: 11.8027 GB" in result.stdout and "rank   511: 8.8535 GB" in result.stdout
    assert "total checkpoint size: 5288.0000 GB (1322.0000 GB per host)" in result.stdout
    (meta,) = read_metadata(tmp_path)
    assert meta["parameters"]["datasize"]["total_GB"] == 5288.0 and len(meta["parameters"]["datasize"]["per_rank_GB"]) == 512
    assert meta["parameters"]["datasize"]["required_bytes"] == 5288 * 2 ** 30 * 10
    assert meta["verification"] == "CLOSED" and meta["metrics"]["total_GB"] == 5288.0


def test_what_if_native_prints_the_mpirun_engine_line(cli, tmp_path):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-np", "8", "-cm", "64", "-cf", tmp_path / "cf",
                         "--results-dir", tmp_path / "res", "--what-if", "--closed"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.stdout.splitlines() if "mlps_checkpointing.engine" in ln][0]
    assert line.startswith("mpirun -n 8 -host 127.0.0.1:8")
    assert f"--folder {tmp_path / 'cf' / 'llama3-8b'}" in line and "--num-checkpoints-write 10" in line
    assert not (tmp_path / "cf").exists()  # what-if touches nothing outside the results
    (meta,) = read_metadata(tmp_path / "res")
    assert meta["verification"] == "CLOSED" and meta["parameters"]["checkpoint"]["fsync"] is True


def test_what_if_dlio_prints_the_reference_command(cli, tmp_path):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-70b", "-np", "8", "-cm", "64", "-cf", tmp_path / "cf",
                         "--engine", "dlio", "--dlio-bin-path", "/opt/dlio/bin", "--results-dir", tmp_path / "res",
                         "--what-if", "--open", "-ncr", "10", "-ncw", "10"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.stdout.splitlines() if "dlio_benchmark" in ln][0]
    for piece in ("mpirun -n 8 ", "/opt/dlio/bin/dlio_benchmark workload=llama3_70b", "++hydra.output_subdir=dlio_config",
                  "++workload.checkpoint.mode=subset", "++workload.model.parallelism.data=8",
                  "++workload.checkpoint.num_checkpoints_read=10", "++workload.checkpoint.num_checkpoints_write=10",
                  f"++workload.checkpoint.checkpoint_folder={tmp_path / 'cf' / 'llama3-70b'}", "--config-dir="):
        assert piece in line
    config_dir = Path(line.split("--config-dir=")[1].split()[0])
    assert (config_dir / "workload" / "llama3_70b.yaml").is_file()


@pytest.mark.parametrize("args, message", [
    (["-ncw", "5", "--closed"], "CLOSED writes and reads 10 or 0"),
    (["-ncw", "0", "-ncr", "0"], "both 0"),
    (["--scale", "2"], "must be in (0, 1]"),
    (["--params", "checkpoint.block_size=abc"], "is not a number"),
    (["--params", "checkpoint.block_size=5000"], "not a multiple of 4096"),
    (["--params", "checkpoint.io_mode=fast"], "auto, direct or buffered"),
    (["--params", "checkpoint.fsync=maybe"], "is not a boolean"),
])
def test_bad_input_is_a_usage_error(cli, tmp_path, args, message):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-np", "8", "-cm", "64", "-cf", tmp_path,
                         "--results-dir", tmp_path / "res", "--what-if", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_missing_folder_and_unknown_model(cli, tmp_path):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-np", "8", "-cm", "64",
                         "--results-dir", tmp_path, "--what-if"])
    assert result.exit_code == 2 and "no checkpoint folder" in result.output
    result = cli.invoke(["checkpointing", "datasize", "-m", "llama3-7b", "-np", "8", "-cm", "64", "--results-dir", tmp_path])
    assert result.exit_code == 2


@pytest.mark.parametrize("args, fragment", [
    (["-np", "6", "--open"], "multiple of 8"),  # INVALID process count
    (["-np", "8", "--closed", "--scale", "0.5"], "OPEN only"),  # scale in a CLOSED run
    (["-np", "8", "--closed", "--params", "checkpoint.fsync=False"], "fsynced"),
    (["-np", "8", "-at", "a100", "-m", "llama3-70b", "--open"], "accelerator a100"),  # planning-only accelerator
])
def test_rules_gate_refuses(cli, tmp_path, args, fragment):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-cm", "64", "-cf", tmp_path,
                         "--results-dir", tmp_path / "res", "--what-if", *args])
    assert result.exit_code == 7, result.output
    assert fragment in result.output


@needs_mpirun  # the environment check would stop the run earlier without an MPI launcher
def test_read_only_invocation_with_nothing_written(cli, tmp_path):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-np", "8", "-cm", "64", "-cf", tmp_path / "cf",
                         "-ncw", "0", "--results-dir", tmp_path / "res", "--open"])
    assert result.exit_code == 3, result.output
    assert "no checkpoint to read" in result.output
    (meta,) = read_metadata(tmp_path / "res")
    assert meta["exit_status"] == "failed"


def test_free_space_and_writability_checked_before_the_run(cli, tmp_path, unwritable_dir):
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-1t", "-np", "1024", "-cm", "64", "-cf", tmp_path / "cf",
                         "--results-dir", tmp_path / "res", "--closed"])
    assert result.exit_code != 0 and "free under" in result.output and "short by" in result.output
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-np", "8", "-cm", "64", "-cf", unwritable_dir,
                         "--results-dir", tmp_path / "res2", "--closed"])
    assert result.exit_code != 0 and "cannot create files" in result.output


def mlps(*args, env=None, timeout=120):
    # Only this plugin is loaded: other plugins' broadcast hooks are tested in tests/integration.
    return subprocess.run([MLPS, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "MLPS_LOAD_PLUGINS": "checkpointing", **(env or {})})


@needs_mpirun
def test_end_to_end_two_rank_run_then_submission_grading(tmp_path):
    """The real `mlps` binary: a write invocation, then a read invocation, 2 ranks each, tiny scale."""
    common = ["checkpointing", "run", "-m", "llama3-8b", "-np", "2", "-cm", "64", "-cf", tmp_path / "cf",
              "--results-dir", tmp_path / "res", "--scale", "0.0001", "--verify", "all", "-aip", *MPI_FLAGS, *FAST]
    write = mlps(*common, "-ncr", "0")
    assert write.returncode == 0, write.stderr
    read = mlps(*common, "-ncw", "0")
    assert read.returncode == 0, read.stderr
    write_meta, read_meta = sorted(read_metadata(tmp_path / "res"), key=lambda m: m["run_datetime"])
    assert write_meta["exit_status"] == read_meta["exit_status"] == "success"
    m = write_meta["metrics"]
    assert len(m["save_checkpoint_io_GB_per_second"]) == 10 and m["save_checkpoint_io_mean_GB_per_second"] > 0
    assert m["fsync"] is True and m["checksum_match"] is True and m["page_cache"] in ("o_direct", "fadvise_dontneed")
    assert write_meta["checkpoint_io"]["page_cache"] == m["page_cache"]
    assert len(read_meta["metrics"]["load_checkpoint_duration_seconds"]) == 10
    assert read_meta["metrics"]["checksum_match"] is True and read_meta["checkpoint_verification"]["files_verified"] == 40
    files = list((tmp_path / "cf" / "llama3-8b").rglob("*.pt"))
    assert len(files) == 40 and {f.stat().st_size for f in files} == {806912, 4833280}
    assert write_meta["verification"] == "INVALID"  # 2 ranks: not a multiple of 8, run with -aip
    from mlps.rules import SubmissionChecker, Validation, verify
    from mlps_checkpointing.rules import CheckpointingSubmissionChecker
    verdict = verify([CheckpointingSubmissionChecker], [write_meta, read_meta], base=SubmissionChecker)
    assert verdict.validation == Validation.CLOSED  # 10 writes + 10 reads; structure is graded for CLOSED runs only


@needs_mpirun
def test_end_to_end_rank_killed_mid_write(tmp_path):
    marker = f"e2e-kill-{tmp_path.name}"
    proc = mlps("checkpointing", "run", "-m", "llama3-8b", "-np", "2", "-cm", "64", "-cf", tmp_path / marker,
                "--results-dir", tmp_path / "res", "--scale", "0.0001", "-aip", *MPI_FLAGS, *FAST,
                env={"MLPS_CHECKPOINTING_FAULT": "kill:rank=0:after_bytes=2000000"})
    assert proc.returncode == 6, proc.stderr
    (meta,) = read_metadata(tmp_path / "res")
    assert meta["exit_status"] == "failed" and "exited with status" in meta["error"]["message"]
    assert no_engine_left(marker) == []


@needs_mpirun
def test_dlio_engine_with_pypi_dlio_is_refused_clearly(cli, tmp_path):
    from importlib import metadata
    try:
        version = metadata.version("dlio-benchmark")
    except metadata.PackageNotFoundError:
        pytest.skip("dlio-benchmark is not installed")
    if int(version.split(".")[0]) >= 3:
        pytest.skip(f"dlio-benchmark {version} may have the checkpoint workflow")
    result = cli.invoke(["checkpointing", "run", "-m", "llama3-8b", "-np", "8", "-cm", "64", "-cf", tmp_path / "cf",
                         "--engine", "dlio", "--results-dir", tmp_path / "res", "--open"])
    assert result.exit_code == 4, result.output
    assert "no checkpoint write-then-read workflow" in result.output


def test_results_fall_back_to_the_engine_stdout_summary(tmp_path):
    """Multi-host launches may put rank 0 on a host without the results directory: the summary line on stdout
    (captured by the core into the step's log) is enough."""
    from mlps import ExecutionError, Run
    run = Run(benchmark="checkpointing", command="run", options={}, run_dir=tmp_path,
              parameters={"checkpoint": {"num_checkpoints_write": 1, "num_checkpoints_read": 0}})
    with pytest.raises(ExecutionError, match="no summary"):
        plugin.mlps_parse_results(run)
    summary = {"metric": {"save_checkpoint_io_mean_GB_per_second": 1.5, "checkpoint_size_GB": 0.01},
               "io": {"page_cache": "o_direct", "fsync": True}, "verification": {"match": True}, "end": "x"}
    (tmp_path / "checkpointing_run.stdout.log").write_text("noise\n" + plugin.SUMMARY_MARKER + json.dumps(summary) + "\n")
    metrics = plugin.mlps_parse_results(run)
    assert metrics["save_checkpoint_io_mean_GB_per_second"] == 1.5 and metrics["page_cache"] == "o_direct"
    assert metrics["checksum_match"] is True and run.extra_metadata["checkpoint_io"]["fsync"] is True


def test_exec_type_local_runs_one_rank_without_mpirun(cli, tmp_path):
    base = ["checkpointing", "run", "-m", "llama3-8b", "-cm", "64", "-cf", tmp_path / "cf", "--exec-type", "local",
            "--results-dir", tmp_path / "res", "--what-if", "--params", "checkpoint.io_threads=4"]
    result = cli.invoke([*base, "-np", "1"])
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.stdout.splitlines() if "mlps_checkpointing.engine" in ln][0]
    assert not line.startswith("mpirun") and "--io-threads 4" in line
    result = cli.invoke([*base, "-np", "8"])
    assert result.exit_code == 2 and "one process" in result.output
