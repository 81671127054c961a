"""Aggregation over ranks and trials (spec §7.3); standard library only.

Per option and trial: rates and bandwidths are summed over ranks; latency percentiles take the worst rank.
Across trials: mean of the sums, max of the maxima. All three latency definitions of the reference are
emitted (per-request storage P95, per-op storage read P95, device read/write P95). Missing or unreadable rank
files are listed and set ``partial_failure``; ranks whose storage tier holds nothing are listed as
``cpu_tier_ranks``.
"""

from __future__ import annotations

import json
from pathlib import Path

SUMMED = {  # output key -> path in a rank's summary
    "aggregated_read_bandwidth_gbps": ("cache_stats", "tier_storage_read_bandwidth_gbps"),
    "aggregated_write_bandwidth_gbps": ("cache_stats", "tier_storage_write_bandwidth_gbps"),
    "aggregated_cpu_read_bandwidth_gbps": ("cache_stats", "tier_cpu_read_bandwidth_gbps"),
    "aggregated_cpu_write_bandwidth_gbps": ("cache_stats", "tier_cpu_write_bandwidth_gbps"),
    "aggregated_gpu_read_bandwidth_gbps": ("cache_stats", "tier_gpu_read_bandwidth_gbps"),
    "aggregated_gpu_write_bandwidth_gbps": ("cache_stats", "tier_gpu_write_bandwidth_gbps"),
    "aggregated_avg_throughput_tokens_per_sec": ("avg_throughput_tokens_per_sec",),
    "aggregated_cache_io_tokens_per_thread_second": ("cache_io_tokens_per_thread_second",),
    "aggregated_requests_per_second": ("requests_per_second",),
}
WORST = {
    "aggregated_p95_latency_ms": ("storage_io_latency_ms", "p95"),
    "aggregated_e2e_p95_latency_ms": ("end_to_end_latency_ms", "p95"),
    "aggregated_storage_read_p95_ms": ("cache_stats", "storage_read_p95_ms"),
    "aggregated_storage_write_p95_ms": ("cache_stats", "storage_write_p95_ms"),
    "aggregated_device_read_p95_ms": ("cache_stats", "storage_read_device_p95_ms"),
    "aggregated_device_write_p95_ms": ("cache_stats", "storage_write_device_p95_ms"),
    "aggregated_cpu_read_p95_ms": ("cache_stats", "cpu_read_p95_ms"),
    "aggregated_cpu_write_p95_ms": ("cache_stats", "cpu_write_p95_ms"),
    "aggregated_gpu_read_p95_ms": ("cache_stats", "gpu_read_p95_ms"),
    "aggregated_gpu_write_p95_ms": ("cache_stats", "gpu_write_p95_ms"),
    "aggregated_interactive_e2e_p95_ms": ("qos_metrics", "interactive", "latency_ms", "p95"),
    "aggregated_responsive_e2e_p95_ms": ("qos_metrics", "responsive", "latency_ms", "p95"),
    "aggregated_batch_e2e_p95_ms": ("qos_metrics", "batch", "latency_ms", "p95"),
}


def _get(summary: dict, path: tuple) -> float:
    node = summary
    for part in path:
        node = node.get(part, 0.0) if isinstance(node, dict) else 0.0
    return float(node or 0.0)


def rank_file(trial_dir: Path, rank: int) -> Path:
    return trial_dir / f"kvcache_rank{rank}.json"


def aggregate_option(option_dir: Path, trials: int, ranks: int) -> dict:
    sums = {k: [] for k in SUMMED}
    worst = {k: 0.0 for k in WORST}
    missing, cpu_tier, hits, misses, requests = [], [], 0, 0, 0
    for t in range(trials):
        trial_sum = {k: 0.0 for k in SUMMED}
        for r in range(ranks):
            path = rank_file(option_dir / f"trial_{t}", r)
            try:
                data = json.loads(path.read_text())
                summary = data["summary"]
            except (OSError, ValueError, KeyError):
                missing.append(str(path))
                continue
            for key, where in SUMMED.items():
                trial_sum[key] += _get(summary, where)
            for key, where in WORST.items():
                worst[key] = max(worst[key], _get(summary, where))
            cs = summary.get("cache_stats", {})
            hits, misses = hits + cs.get("cache_hits", 0), misses + cs.get("cache_misses", 0)
            requests += summary.get("total_requests", 0)
            if cs.get("storage_entries", 0) == 0 and cs.get("tier_storage_kv_bytes_written_gb", 0) == 0:
                cpu_tier.append(f"trial_{t}/rank_{r}")
        for key in SUMMED:
            sums[key].append(trial_sum[key])
    out = {key: (sum(v) / len(v) if v else 0.0) for key, v in sums.items()}
    out["aggregated_storage_throughput_tokens_per_sec"] = out["aggregated_cache_io_tokens_per_thread_second"]
    out.update(worst)
    out.update({"cache_hit_rate": hits / (hits + misses) if hits + misses else 0.0, "total_requests": requests,
                "rank_count": ranks, "trial_count": trials, "partial_failure": bool(missing),
                "missing_files": missing, "cpu_tier_ranks": cpu_tier,
                "per_trial_read_bandwidth_gbps": sums["aggregated_read_bandwidth_gbps"],
                "per_trial_write_bandwidth_gbps": sums["aggregated_write_bandwidth_gbps"]})
    return out


def summed_timeseries(trial_dir: Path, ranks: int) -> list[dict]:
    """Per-interval bandwidths of one trial, summed over ranks interval by interval (ranks sample alike)."""
    series = []
    for r in range(ranks):
        try:
            series.append(json.loads(rank_file(trial_dir, r).read_text()).get("timeseries") or [])
        except (OSError, ValueError):
            continue
    if not series:
        return []
    out = []
    for i in range(min(len(s) for s in series)):
        row = {"t_s": series[0][i]["t_s"]}
        for key in series[0][i]:
            if key.endswith("_gibps") or key == "requests_per_sec":
                row[key] = sum(s[i].get(key, 0.0) for s in series)
        out.append(row)
    return out


def aggregate_run(run_dir: Path, options: list[str], trials: int, ranks: int) -> dict:
    results = {name: aggregate_option(run_dir / name, trials, ranks) for name in options}
    for name, res in results.items():
        res["timeseries_trial_0"] = summed_timeseries(run_dir / name / "trial_0", ranks)
    return {"schema_version": "1.0", "total_ranks": ranks, "trials_per_option": trials, "options": results,
            "partial_failure": any(o["partial_failure"] for o in results.values())}
