"""`mlps kvcache` through the core: plans, rules and bad input (in-process), datasize."""

from __future__ import annotations

import json
import os
import shlex

import pytest

import mlps_kvcache.plugin as kvplugin
from mlps_kvcache import models, sizing


@pytest.fixture
def cli(mlps_cli, register_plugin):
    register_plugin(kvplugin)
    return mlps_cli


def _run(cli, tmp_path, *args):
    return cli.invoke(["kvcache", "run", "--results-dir", tmp_path / "results", *map(str, args)])


def _plan(cli, tmp_path, *args):
    """The steps a run would execute (--what-if prints them): (names of sleeps, worker argv lists)."""
    result = _run(cli, tmp_path, "--what-if", *args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    sleeps = [line for line in lines if line.startswith("[in-process]")]
    workers = [shlex.split(line) for line in lines if "mlps_kvcache.worker" in line]
    return sleeps, workers


def test_closed_run_plans_the_three_options_with_trials_and_delays(cli, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    sleeps, workers = _plan(cli, tmp_path, "--closed", "--cache-dir", cache, "--num-processes", 2,
                            "--allow-run-as-root")
    assert [w[w.index("--label") + 1] for w in workers] == [f"option_{o}/trial_{t}" for o in (1, 2, 3)
                                                            for t in range(3)]
    assert len(sleeps) == 2 + 9 * 2  # inter-option delays, settle before/after each trial
    assert sum("sleep 20 s (inter_option_delay" in s for s in sleeps) == 2
    assert sum("sleep 90 s (option_" in s for s in sleeps) == 18
    first = workers[0]
    assert first[0].endswith("mpirun") and first[first.index("-n") + 1] == "2"
    assert first[first.index("--num-users") + 1] == "200" and first[first.index("--cpu-mem-gb") + 1] == "0.0"
    assert first[first.index("--seed-base") + 1] == "42"
    third = workers[-1]
    assert third[third.index("--model") + 1] == "llama3.1-70b-instruct"
    assert third[third.index("--max-concurrent-allocs") + 1] == "4"
    opt2 = workers[3]
    assert opt2[opt2.index("--cpu-mem-gb") + 1] == "4.0" and opt2[opt2.index("--max-concurrent-allocs") + 1] == "16"


def test_closed_refuses_a_changed_workload_open_accepts_it(cli, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    closed = _run(cli, tmp_path, "--closed", "--cache-dir", cache, "--num-users", 5)
    assert closed.exit_code == 7, closed.output
    assert "num_users" in closed.output
    _, workers = _plan(cli, tmp_path, "--open", "--cache-dir", cache, "--num-users", 5, "--trials", 1)
    assert len(workers) == 3  # one trial of each option
    assert all(a[a.index("--num-users") + 1] == "5" for a in workers)
    # values the user did not type keep the option's value (no silent defaults, reference defect §9 #18)
    assert [a[a.index("--cpu-mem-gb") + 1] for a in workers] == ["0.0", "4.0", "0.0"]


def test_closed_needs_a_cache_dir_and_refuses_tmpfs(cli, tmp_path):
    result = _run(cli, tmp_path, "--closed")
    assert result.exit_code == 2 and "--cache-dir" in result.output
    shm = "/dev/shm"
    if sizing.filesystem_type(shm) != "tmpfs":
        pytest.skip("/dev/shm is not tmpfs here")
    result = _run(cli, tmp_path, "--closed", "--cache-dir", shm)
    assert result.exit_code == 3 and "tmpfs" in result.output
    assert _run(cli, tmp_path, "--what-if", "--open", "--cache-dir", shm, "--trials", 1).exit_code == 0


def test_default_run_is_one_local_process_without_mpirun(cli, tmp_path):
    sleeps, (argv,) = _plan(cli, tmp_path)
    assert not sleeps
    assert argv[1:4] == ["-m", "mlps_kvcache.worker", "--out-dir"] and "--cache-dir" not in argv
    assert argv[argv.index("--duration") + 1] == "30.0" and argv[argv.index("--model") + 1] == "llama3.1-8b"
    _, (explicit,) = _plan(cli, tmp_path, "--exec-type", "mpi", "--allow-run-as-root")
    assert explicit[0].endswith("mpirun")


@pytest.mark.parametrize("args, code, text", [
    (("--model", "llama9-1t"), 2, "llama9-1t"),
    (("--num-users", "0"), 2, "num-users"),
    (("--num-users", "-3"), 2, "num-users"),
    (("--duration", "0"), 2, "duration"),
    (("--cpu-mem-gb", "100000"), 2, "exceeds the"),
    (("--params", "x=1"), 2, "--params"),
    (("--num-processes", "2", "--exec-type", "local"), 2, "exec-type"),
])
def test_bad_input_is_one_clear_line(cli, recording_executor, tmp_path, args, code, text):
    result = _run(cli, tmp_path, *args)
    assert result.exit_code == code, result.output
    assert text in result.output
    assert "Traceback" not in result.output
    assert not recording_executor.steps


def test_cache_dir_missing_or_a_file(cli, recording_executor, tmp_path):
    missing = _run(cli, tmp_path, "--cache-dir", tmp_path / "nope")
    assert missing.exit_code == 3 and "does not exist" in missing.output
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "not a directory" in _run(cli, tmp_path, "--cache-dir", afile).output


def test_cache_dir_read_only(cli, recording_executor, tmp_path, small_filesystem):
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
    else:  # root ignores modes: a read-only mount is the honest case
        ro = small_filesystem(ro=True)
    result = _run(cli, tmp_path, "--open", "--trials", 1, "--cache-dir", ro)
    assert result.exit_code == 3 and "not writable" in result.output


def test_gpu_tier_without_cuda_is_a_clear_dependency_error(cli, recording_executor, tmp_path):
    from mlps_kvcache.tiers import cuda_status

    if cuda_status()[0]:
        pytest.skip("this machine has CUDA")
    result = _run(cli, tmp_path, "--gpu-mem-gb", 1)
    assert result.exit_code == 4, result.output
    assert "GPU tier was asked for" in result.output and "--gpu-mem-gb 0" in result.output


def test_datasize_uses_the_engine_table(cli, tmp_path):
    result = cli.invoke(["kvcache", "datasize", "--results-dir", tmp_path, "--model", "llama3.1-70b-instruct",
                         "--num-users", 70, "--cpu-mem-gb", 0, "--num-processes", 2])
    assert result.exit_code == 0, result.output
    assert "327,680" in result.output and "storage needed, no evictions" in result.output
    (meta_path,) = tmp_path.rglob("kvcache_*_metadata.json")
    metrics = json.loads(meta_path.read_text())["metrics"]
    assert metrics["bytes_per_token"] == models.bytes_per_token("llama3.1-70b-instruct")
    assert metrics["max_object_bytes"] == 25000 * 327680
    assert metrics["storage_needed_bytes"] == pytest.approx(2 * metrics["working_set_bytes_per_rank"], abs=2)
    assert metrics["peak_rss_bytes_per_host"] == 2 * sizing.peak_rss_estimate(70, 0, 0)
