"""Real runs: the rank worker as a process, 2 ranks under mpirun through the real `mlps`, failures."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kvcache_helpers import MPI_FLAGS, TINY, metadata_of, run_mlps


def _worker(tmp_path, *args, env=None, timeout=120):
    cmd = [sys.executable, "-m", "mlps_kvcache.worker", "--out-dir", str(tmp_path / "out"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_worker_run_writes_its_rank_file_and_cleans_its_temporary_cache(tmp_path):
    proc = _worker(tmp_path, "--model", "tiny-1b", "--num-users", 3, "--duration", 3, "--cpu-mem-gb", 0.05,
                   "--enable-rag", "--rag-num-docs", 2, "--interval", 0.5)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "out" / "kvcache_rank0.json").read_text())
    assert result["rank"] == 0 and result["seed"] == 42 and result["error"] is None
    assert result["temporary_cache"] is True
    assert not __import__("pathlib").Path(result["cache_dir"]).exists()
    s = result["summary"]
    assert s["total_requests"] > 0 and s["cache_stats"]["tier_storage_kv_bytes_written_gb"] > 0
    assert s["cache_stats"]["tier_storage_write_bandwidth_gbps"] == pytest.approx(
        s["cache_stats"]["tier_storage_kv_bytes_written_gb"] / s["elapsed_time"])
    assert len(result["timeseries"]) >= 4 and "storage_read_gibps" in result["timeseries"][0]
    assert result["accounting"] == {"usage_underflows": 0, "integrity_failures": 0}
    assert result["tiers"][-1]["direct_io"] is True  # ext4 here accepts O_DIRECT
    assert result["memory"]["peak_rss_bytes"] <= result["memory"]["peak_rss_estimate_bytes"]
    assert result["gpu_tier"]["present"] is False


def test_buffered_fallback_is_recorded(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    proc = _worker(tmp_path, "--model", "tiny-1b", "--num-users", 1, "--duration", 1, "--buffered-io",
                   "--cache-dir", cache)
    assert proc.returncode == 0, proc.stderr
    assert "buffered I/O" in proc.stderr
    tier = json.loads((tmp_path / "out" / "kvcache_rank0.json").read_text())["tiers"][-1]
    assert tier["direct_io"] is False and tier["direct_io_reason"] == "buffered I/O requested"
    assert (cache / "rank_0").is_dir() and not list((cache / "rank_0").glob("*.kv"))


def test_two_ranks_under_mpirun_through_mlps(tmp_path, need_mpirun):
    cache, results = tmp_path / "cache", tmp_path / "results"
    cache.mkdir()
    proc = run_mlps("run", *TINY, "--duration", 4, "--num-processes", 2, "--cache-dir", cache,
                    "--results-dir", results, *MPI_FLAGS)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    meta = metadata_of(results)
    assert meta["exit_status"] == "success" and meta["num_processes"] == 2
    assert meta["steps"][0].startswith("mpirun") or "/mpirun " in meta["steps"][0]
    trial = next(results.rglob("custom/trial_0"))
    ranks = [json.loads((trial / f"kvcache_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["seed"] for r in ranks] == [42, 43] and [r["rank"] for r in ranks] == [0, 1]
    assert {r["cache_dir"] for r in ranks} == {str(cache / "rank_0"), str(cache / "rank_1")}
    m = meta["metrics"]
    read = [r["summary"]["cache_stats"]["tier_storage_read_bandwidth_gbps"] for r in ranks]
    assert m["aggregated_read_bandwidth_gbps"] == pytest.approx(sum(read))
    p95 = [r["summary"]["cache_stats"]["storage_read_device_p95_ms"] for r in ranks]
    assert m["aggregated_device_read_p95_ms"] == pytest.approx(max(p95))
    assert m["rank_count"] == 2 and m["partial_failure"] is False
    assert "storage" in proc.stderr and "results: " in proc.stderr and "cache hit rate" in proc.stderr


def test_a_dying_rank_fails_the_run_and_stops_the_others(tmp_path, need_mpirun):
    cache, results = tmp_path / "cache", tmp_path / "results"
    cache.mkdir()
    started = time.monotonic()
    proc = run_mlps("run", *TINY, "--duration", 60, "--num-processes", 2, "--cache-dir", cache,
                    "--results-dir", results, *MPI_FLAGS, env={"MLPS_KVCACHE_FAIL_RANK": "1"})
    assert proc.returncode == 6, proc.stderr[-3000:]
    assert time.monotonic() - started < 40  # rank 0 (asked for 60 s) was stopped, not waited for
    meta = metadata_of(results)
    assert meta["exit_status"] == "failed" and "exited with status" in meta["error"]["message"]


def test_a_full_cache_filesystem_stops_cleanly_with_metadata(tmp_path, small_filesystem):
    small = small_filesystem(size="8m")
    results = tmp_path / "results"
    # the storage tier is told it has 1 GiB, the filesystem has 8 MiB: the first big write hits ENOSPC
    proc = run_mlps("run", *TINY, "--cpu-mem-gb", 0, "--duration", 20, "--storage-capacity-gb", 1,
                    "--cache-dir", small, "--results-dir", results)
    assert proc.returncode == 6, proc.stderr[-3000:]
    assert "cache directory full" in proc.stderr
    meta = metadata_of(results)
    assert meta["exit_status"] == "failed"
    rank = json.loads(next(results.rglob("kvcache_rank0.json")).read_text())
    assert "full" in rank["error"]
    assert not list((small / "rank_0").glob("*.kv"))


@pytest.mark.slow
def test_the_default_run_is_a_short_local_job_with_a_summary(tmp_path):
    results = tmp_path / "results"
    started = time.monotonic()
    proc = run_mlps("run", "--results-dir", results)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 90
    assert "[kvcache rank 0]" in proc.stderr  # progress lines
    for text in ("read GiB/s", "storage", "cache hit rate", "results: "):
        assert text in proc.stderr
    meta = metadata_of(results)
    assert meta["metrics"]["aggregated_read_bandwidth_gbps"] > 0 and meta["model"] == "llama3.1-8b"
