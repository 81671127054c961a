"""The native engine under a real mpirun: files, fsync, checksums, summary, and its faults."""

from __future__ import annotations

import json
import subprocess

import pytest

from mlps_checkpointing.models import MODELS, checkpoint_dir_name, rank_shards

from checkpointing_helpers import engine_argv, needs_mpirun, no_engine_left

pytestmark = needs_mpirun


def run(argv, env=None, timeout=90):
    import os
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_two_ranks_write_then_read(tmp_path):
    folder, out = tmp_path / "ckpt" / "llama3-8b", tmp_path / "out"
    proc = run(engine_argv(2, folder, out, "--num-checkpoints-write", "3", "--num-checkpoints-read", "3",
                           "--verify", "all"))
    assert proc.returncode == 0, proc.stderr
    # every rank's shard files exist with the planned sizes, in each checkpoint directory
    for k in range(3):
        for rank in range(2):
            for shard in rank_shards(MODELS["llama3-8b"], 2, rank, 0.0001):
                assert (folder / checkpoint_dir_name(k) / shard.name).stat().st_size == shard.nbytes
    # the engine logs fsync per checkpoint and per file
    assert proc.stdout.count("fsync 4/4 files") == 3
    ranks = json.loads((out / "checkpointing_ranks.json").read_text())
    writes = [r for g in ranks for r in g["records"] if r["phase"] == "write"]
    assert len(writes) == 12 and all(r["fsync"] for r in writes)
    # read bytes equal written bytes: blake2b of the written stream vs of what came back from storage
    digests = [v for g in ranks for v in g["verification"]]
    assert len(digests) == 12 and all(v["written_blake2b"] == v["read_blake2b"] for v in digests)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verification"]["match"] is True and summary["verification"]["files_verified"] == 12
    metric = summary["metric"]
    assert len(metric["save_checkpoint_io_GB_per_second"]) == 3 and len(metric["load_checkpoint_duration_seconds"]) == 3
    assert metric["save_checkpoint_io_mean_GB_per_second"] > 0 and metric["load_checkpoint_io_mean_GB_per_second"] > 0
    assert metric["checkpoint_size_GB"] == pytest.approx(2 * (806912 + 4833280) / 2 ** 30)
    assert summary["io"]["fsync"] is True and summary["io"]["page_cache"] in ("o_direct", "fadvise_dontneed")
    assert summary["num_accelerators"] == 2


def test_buffered_mode_drops_the_page_cache_and_read_only_invocation_reuses_checkpoints(tmp_path):
    folder, out = tmp_path / "ckpt", tmp_path / "out"
    first = run(engine_argv(2, folder, out, "--num-checkpoints-write", "2", "--num-checkpoints-read", "0",
                            "--io-mode", "buffered"))
    assert first.returncode == 0, first.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["io"]["page_cache"] == "fadvise_dontneed" and "load_checkpoint_io_mean_GB_per_second" not in \
        summary["metric"]
    ranks = json.loads((out / "checkpointing_ranks.json").read_text())
    assert all(r["cache_dropped"] for g in ranks for r in g["records"])
    second = run(engine_argv(2, folder, tmp_path / "out2", "--num-checkpoints-write", "0",
                             "--num-checkpoints-read", "3", "--io-mode", "buffered", "--verify", "all"))
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert len(again["metric"]["load_checkpoint_io_GB_per_second"]) == 3 and again["verification"]["match"]


def test_reading_a_checkpoint_never_written_is_a_clear_error(tmp_path):
    proc = run(engine_argv(2, tmp_path / "empty", tmp_path / "out", "--num-checkpoints-write", "0"))
    assert proc.returncode != 0
    assert "no checkpoint to read" in proc.stderr and "--num-checkpoints-write first" in proc.stderr
    # a manifest from another layout is refused too
    ok = run(engine_argv(2, tmp_path / "c", tmp_path / "o", "--num-checkpoints-write", "1", "--num-checkpoints-read", "0"))
    assert ok.returncode == 0, ok.stderr
    other = run(engine_argv(1, tmp_path / "c", tmp_path / "o", "--num-checkpoints-write", "0"))
    assert other.returncode != 0 and "were written as" in other.stderr


def test_not_enough_free_space_is_refused_before_writing(tmp_path):
    argv = engine_argv(2, tmp_path / "big", tmp_path / "out", "--num-checkpoints-read", "0")
    argv[argv.index("--scale") + 1] = "1.0"  # 10 full llama3-8b checkpoints: 1050 GiB
    proc = run(argv)
    assert proc.returncode != 0
    assert "not enough free space" in proc.stderr and "GiB) are free, short by" in proc.stderr
    assert not list((tmp_path / "big").rglob("*.pt"))  # nothing was written


def test_unwritable_folder_is_refused(tmp_path, unwritable_dir):
    proc = run(engine_argv(2, unwritable_dir, tmp_path / "out"))
    assert proc.returncode != 0 and "is not writable" in proc.stderr


def test_rank_killed_mid_write_fails_the_job_and_leaves_no_rank(tmp_path):
    marker = f"kill-{tmp_path.name}"
    folder = tmp_path / marker
    earlier = run(engine_argv(2, folder, tmp_path / "o0", "--num-checkpoints-write", "1", "--num-checkpoints-read", "0"))
    assert earlier.returncode == 0 and (folder / "mlps_checkpoints.json").exists()
    proc = run(engine_argv(2, folder, tmp_path / "out"),
               env={"MLPS_CHECKPOINTING_FAULT": "kill:rank=1:after_bytes=1000000"})
    assert proc.returncode != 0
    assert "killing myself mid-write" in proc.stdout
    assert not (tmp_path / "out" / "summary.json").exists()
    assert no_engine_left(marker) == []
    # the half-overwritten checkpoints are no longer offered to a read-only invocation
    assert not (folder / "mlps_checkpoints.json").exists()


def test_one_rank_failing_stops_every_rank_with_one_message(tmp_path):
    folder = tmp_path / "ckpt"
    shard = rank_shards(MODELS["llama3-8b"], 2, 1, 0.0001)[0]
    (folder / checkpoint_dir_name(0) / shard.name).mkdir(parents=True)  # rank 1 cannot create its file
    proc = run(engine_argv(2, folder, tmp_path / "out"))
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "rank 1: writing checkpoint 1" in errors[0] and "Is a directory" in errors[0]


def _corrupt(path, offset, data):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_corruption_is_caught_by_page_stamps_and_by_the_checksum(tmp_path):
    folder = tmp_path / "ckpt"
    ok = run(engine_argv(2, folder, tmp_path / "o1", "--num-checkpoints-write", "1", "--num-checkpoints-read", "0"))
    assert ok.returncode == 0, ok.stderr
    shard = rank_shards(MODELS["llama3-8b"], 2, 0, 0.0001)[1]
    path = folder / checkpoint_dir_name(0) / shard.name
    _corrupt(path, 3 * 4096 + 100, b"\0" * 16)  # inside a page body: stamps still fine, content is not
    body = run(engine_argv(2, folder, tmp_path / "o2", "--num-checkpoints-write", "0", "--num-checkpoints-read", "1",
                           "--verify", "all"))
    assert body.returncode == 3 and "1 DIFFER" in body.stdout
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert summary["verification"]["match"] is False and summary["verification"]["mismatches"] == 1
    _corrupt(path, 5 * 4096, b"\0" * 8)  # a page stamp: the timed read itself refuses it
    stamp = run(engine_argv(2, folder, tmp_path / "o3", "--num-checkpoints-write", "0", "--num-checkpoints-read", "1"))
    assert stamp.returncode != 0 and "stale or foreign data" in stamp.stderr


def test_parallel_requests_per_rank_write_and_read_the_same_bytes(tmp_path):
    out = tmp_path / "out"
    proc = run(engine_argv(2, tmp_path / "ckpt", out, "--num-checkpoints-write", "2", "--num-checkpoints-read", "2",
                           "--io-threads", "3", "--verify", "all", "--block-size", str(256 << 10)))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["io_threads"] == 3 and summary["verification"]["match"] is True
    assert summary["verification"]["files_verified"] == 8
