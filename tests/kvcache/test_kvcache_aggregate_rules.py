"""Aggregation over ranks and trials on hand-written rank files, and the run rules on metadata dicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlps.rules import Validation, verify
from mlps_kvcache import aggregate, plan
from mlps_kvcache.rules import KVCacheRunChecker


def _rank(path: Path, read, write, dev_p95, req_p95, entries=3, hits=9, misses=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    cs = {"tier_storage_read_bandwidth_gbps": read, "tier_storage_write_bandwidth_gbps": write,
          "storage_read_device_p95_ms": dev_p95, "storage_entries": entries, "cache_hits": hits,
          "cache_misses": misses, "tier_storage_kv_bytes_written_gb": 1.0 if entries else 0.0}
    summary = {"cache_stats": cs, "storage_io_latency_ms": {"p95": req_p95}, "avg_throughput_tokens_per_sec": 10.0,
               "cache_io_tokens_per_thread_second": 5.0, "requests_per_second": 1.0, "total_requests": 4}
    path.write_text(json.dumps({"summary": summary, "timeseries": [{"t_s": 1.0, "storage_read_gibps": read}]}))


def test_sum_over_ranks_mean_over_trials_worst_latency(tmp_path):
    opt = tmp_path / "option_1"
    _rank(opt / "trial_0/kvcache_rank0.json", 1.0, 0.5, 100.0, 900.0)
    _rank(opt / "trial_0/kvcache_rank1.json", 2.0, 0.5, 300.0, 800.0)
    _rank(opt / "trial_1/kvcache_rank0.json", 3.0, 1.0, 200.0, 700.0)
    _rank(opt / "trial_1/kvcache_rank1.json", 4.0, 1.0, 250.0, 950.0, entries=0)
    out = aggregate.aggregate_run(tmp_path, ["option_1"], trials=2, ranks=2)["options"]["option_1"]
    assert out["per_trial_read_bandwidth_gbps"] == [3.0, 7.0]
    assert out["aggregated_read_bandwidth_gbps"] == pytest.approx(5.0)  # mean of per-trial sums
    assert out["aggregated_write_bandwidth_gbps"] == pytest.approx(1.5)
    assert out["aggregated_avg_throughput_tokens_per_sec"] == pytest.approx(20.0)
    assert out["aggregated_device_read_p95_ms"] == 300.0  # worst rank of any trial
    assert out["aggregated_p95_latency_ms"] == 950.0
    assert out["cache_hit_rate"] == pytest.approx(0.9) and out["total_requests"] == 16
    assert out["cpu_tier_ranks"] == ["trial_1/rank_1"] and out["partial_failure"] is False
    assert out["timeseries_trial_0"] == [{"t_s": 1.0, "storage_read_gibps": 3.0}]


def test_a_missing_rank_file_is_a_partial_failure(tmp_path):
    _rank(tmp_path / "custom/trial_0/kvcache_rank0.json", 1.0, 1.0, 1.0, 1.0)
    out = aggregate.aggregate_run(tmp_path, ["custom"], trials=1, ranks=2)
    assert out["partial_failure"] is True
    assert out["options"]["custom"]["missing_files"][0].endswith("trial_0/kvcache_rank1.json")


def _metadata(mode, plan_dict, fs="ext4"):
    return {"benchmark_type": "kvcache", "command": "run", "mode": mode,
            "parameters": {"plan": plan_dict, "storage": {"cache_dir": "/c", "cache_fs_type": fs}}}


def _grade(meta):
    return verify([KVCacheRunChecker], meta, benchmark="kvcache")


def test_the_closed_plan_grades_closed_and_any_change_grades_open():
    closed = plan.resolve({}, {}, "closed")
    assert _grade(_metadata("closed", closed)).validation == Validation.CLOSED
    changed = json.loads(json.dumps(closed))
    changed["options"]["option_2"]["cpu_mem_gb"] = 8.0
    changed["trials"] = 1
    verdict = _grade(_metadata("open", changed))
    assert verdict.validation == Validation.OPEN
    assert {i.parameter for i in verdict.issues if i.validation == Validation.OPEN} == {"option_2.cpu_mem_gb",
                                                                                           "trials"}


def test_invalid_values_and_tmpfs_in_closed():
    bad = plan.resolve({}, {}, "closed")
    bad["options"]["option_1"]["model"] = "gpt-9"
    bad["options"]["option_3"]["num_users"] = 0
    verdict = _grade(_metadata("closed", bad))
    invalid = {i.parameter for i in verdict.issues if i.validation == Validation.INVALID}
    assert invalid == {"option_1.model", "option_3.num_users"}
    tmpfs = _grade(_metadata("closed", plan.resolve({}, {}, "closed"), fs="tmpfs"))
    assert tmpfs.validation == Validation.INVALID
    assert _grade(_metadata("open", plan.resolve({}, {}, "open"), fs="tmpfs")).validation == Validation.OPEN


def test_sigterm_removes_the_temporary_cache(tmp_path):
    out = tmp_path / "out"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mlps_kvcache.worker", "--out-dir", str(out), "--model", "tiny-1b",
                             "--num-users", "2", "--duration", "60"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + 30
    while not list(tmp.glob("mlps-kvcache-rank0-*/*.kv")) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until objects are being written
    assert list(tmp.glob("mlps-kvcache-rank0-*")), "the worker made no temporary cache"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert not list(tmp.iterdir()), "temporary cache left behind"
