"""Latency and throughput statistics from the per-batch records of every query process (numpy)."""

from __future__ import annotations

import numpy as np

PERCENTILES = {"median": 50, "p95": 95, "p99": 99, "p999": 99.9, "p9999": 99.99}


def summarise(batches: list[dict]) -> dict:
    """``batches``: one dict per process with arrays ``start`` (epoch s), ``seconds`` and ``size`` per batch
    plus ``failed`` (count). Every query of a batch waited for the whole ``search()`` call, so each query's
    latency is its batch's time (recorded once per query), never batch time divided by batch size."""
    starts = np.concatenate([b["start"] for b in batches]) if batches else np.empty(0)
    seconds = np.concatenate([b["seconds"] for b in batches]) if batches else np.empty(0)
    sizes = np.concatenate([b["size"] for b in batches]).astype(np.int64) if batches else np.empty(0, np.int64)
    failed = int(sum(int(b.get("failed", 0)) for b in batches))
    out = {"total_queries": int(sizes.sum()), "batch_count": int(len(seconds) + failed),
           "successful_batches": int(len(seconds)), "failed_batches": failed}
    if len(seconds) == 0:
        out.update(total_time_seconds=0.0, throughput_qps=0.0)
        return out
    wall = float((starts + seconds).max() - starts.min())
    out["total_time_seconds"] = round(wall, 6)
    out["throughput_qps"] = float(sizes.sum() / wall) if wall > 0 else 0.0
    per_query_ms = np.repeat(seconds, sizes) * 1000.0
    batch_ms = seconds * 1000.0
    out.update(min_latency_ms=float(per_query_ms.min()), max_latency_ms=float(per_query_ms.max()),
               mean_latency_ms=float(per_query_ms.mean()))
    for name, q in PERCENTILES.items():
        out[f"{name}_latency_ms"] = float(np.percentile(per_query_ms, q))
    out.update(min_batch_time_ms=float(batch_ms.min()), max_batch_time_ms=float(batch_ms.max()),
               mean_batch_time_ms=float(batch_ms.mean()))
    for name, q in PERCENTILES.items():
        out[f"{name}_batch_time_ms"] = float(np.percentile(batch_ms, q))
    return out
