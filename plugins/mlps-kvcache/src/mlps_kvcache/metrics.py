"""Counters, latency samples and the formulas that turn them into the reported metrics (spec §6.1).

Units: bytes are reported in GiB (2^30), bandwidths in GiB/s, latencies in ms; percentiles use NumPy's
default linear interpolation over the raw samples. The reference's "storage throughput" (tokens divided by
the *sum* of per-request cache I/O time) is reported under the name of what it is,
``cache_io_tokens_per_thread_second``, and again under its reference key in ``reference_compat``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

GIB = float(1 << 30)
PERCENTILES = (("p50", 50), ("p95", 95), ("p99", 99), ("p999", 99.9), ("p9999", 99.99))
QOS_PROFILES = {  # priority and E2E P95 target (ms), reference config.yaml
    "interactive": {"priority": 3, "target_p95_ms": 50.0},
    "responsive": {"priority": 2, "target_p95_ms": 100.0},
    "batch": {"priority": 1, "target_p95_ms": 1000.0},
}


def percentiles_ms(samples_s: list[float]) -> dict:
    """mean and p50..p99.99 of second-valued samples, in ms (zeros when there are no samples)."""
    import numpy as np

    if not samples_s:
        return {"mean": 0.0, **{k: 0.0 for k, _ in PERCENTILES}, "count": 0}
    arr = np.asarray(samples_s, dtype=np.float64) * 1000.0
    out = {"mean": float(arr.mean())}
    out.update({k: float(np.percentile(arr, q)) for k, q in PERCENTILES})
    out["count"] = int(arr.size)
    return out


@dataclass
class TierCounters:
    bytes_read: int = 0
    bytes_written: int = 0
    read_ops: int = 0
    write_ops: int = 0
    read_lat: list = field(default_factory=list)
    write_lat: list = field(default_factory=list)
    read_device: list = field(default_factory=list)
    read_host: list = field(default_factory=list)
    write_device: list = field(default_factory=list)
    write_host: list = field(default_factory=list)


@dataclass
class RequestRecord:
    qos: str
    e2e: float  # enqueue -> complete, s
    storage: float  # sum of the request's tier-op totals, s
    generation: float  # simulated decode sleep, s
    tokens: int  # generated tokens
    queue_wait: float = 0.0


class Recorder:
    """Thread-safe collection point for one rank's measurements."""

    TIERS = ("gpu", "cpu", "storage")

    def __init__(self):
        self.lock = threading.Lock()
        self.tiers = {t: TierCounters() for t in self.TIERS}
        self.counts: dict[str, int] = {}
        self.requests: list[RequestRecord] = []

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + n

    def op(self, tier: str, kind: str, nbytes: int, timing=None) -> None:
        """Count one tier operation; ``timing`` None means traffic without a latency sample (demotions)."""
        with self.lock:
            c = self.tiers[tier]
            if kind == "read":
                c.bytes_read += nbytes
                if timing is not None:
                    c.read_ops += 1
                    c.read_lat.append(timing.total)
                    if tier == "storage":
                        c.read_device.append(timing.device)
                        c.read_host.append(timing.host)
            else:
                c.bytes_written += nbytes
                if timing is not None:
                    c.write_ops += 1
                    c.write_lat.append(timing.total)
                    if tier == "storage":
                        c.write_device.append(timing.device)
                        c.write_host.append(timing.host)

    def request(self, rec: RequestRecord) -> None:
        with self.lock:
            self.requests.append(rec)

    def byte_totals(self) -> dict:
        with self.lock:
            return {t: (c.bytes_read, c.bytes_written) for t, c in self.tiers.items()}


class TimeSeries:
    """Samples cumulative tier bytes every ``interval`` seconds and keeps per-interval bandwidth."""

    def __init__(self, recorder: Recorder, interval: float):
        self.recorder, self.interval = recorder, max(0.1, interval)
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kvcache-timeseries", daemon=True)
        self._t0 = time.monotonic()

    def start(self):
        self._t0 = time.monotonic()
        self._last = (self._t0, self.recorder.byte_totals(), 0)
        self._thread.start()

    def _loop(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self):
        now, totals = time.monotonic(), self.recorder.byte_totals()
        with self.recorder.lock:
            nreq = len(self.recorder.requests)
        t_prev, prev, req_prev = self._last
        dt = max(now - t_prev, 1e-9)
        row = {"t_s": round(now - self._t0, 3), "interval_s": round(dt, 3),
               "requests_per_sec": (nreq - req_prev) / dt}
        for tier, (rd, wr) in totals.items():
            row[f"{tier}_read_gibps"] = (rd - prev[tier][0]) / GIB / dt
            row[f"{tier}_write_gibps"] = (wr - prev[tier][1]) / GIB / dt
        self.samples.append(row)
        self._last = (now, totals, nreq)

    def stop(self):
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


def summarize(rec: Recorder, elapsed: float, profile: str = "latency") -> dict:
    """The §6.1 metrics of one rank from its recorder and the measured wall time (s)."""
    elapsed = max(elapsed, 1e-9)
    c, reqs = rec.counts, rec.requests
    total_tokens = sum(r.tokens for r in reqs)
    storage_sum = sum(r.storage for r in reqs)
    hits, misses = c.get("cache_hits", 0), c.get("cache_misses", 0)
    cache_stats = {
        "cache_hit_rate": hits / (hits + misses) if hits + misses else 0.0,
        "cache_hits": hits, "cache_misses": misses,
    }
    total_read = total_written = 0
    for tier, tc in rec.tiers.items():
        total_read += tc.bytes_read
        total_written += tc.bytes_written
        cache_stats[f"tier_{tier}_kv_bytes_read_gb"] = tc.bytes_read / GIB
        cache_stats[f"tier_{tier}_kv_bytes_written_gb"] = tc.bytes_written / GIB
        cache_stats[f"tier_{tier}_read_bandwidth_gbps"] = tc.bytes_read / GIB / elapsed
        cache_stats[f"tier_{tier}_write_bandwidth_gbps"] = tc.bytes_written / GIB / elapsed
        cache_stats[f"{tier}_read_ops"], cache_stats[f"{tier}_write_ops"] = tc.read_ops, tc.write_ops
        for kind, samples in (("read", tc.read_lat), ("write", tc.write_lat)):
            pct = percentiles_ms(samples)
            cache_stats.update({f"{tier}_{kind}_{k}_ms": pct[k] for k, _ in PERCENTILES})
            cache_stats[f"{tier}_{kind}_mean_ms"] = pct["mean"]
        if tier == "storage":
            for name, samples in (("read_device", tc.read_device), ("read_host", tc.read_host),
                                  ("write_device", tc.write_device), ("write_host", tc.write_host)):
                pct = percentiles_ms(samples)
                cache_stats.update({f"storage_{name}_{k}_ms": pct[k] for k, _ in PERCENTILES})
    cache_stats.update({
        "total_read_gb": total_read / GIB, "total_write_gb": total_written / GIB,
        "read_write_ratio": total_read / total_written if total_written else 0.0,
        "read_ops_total": sum(t.read_ops for t in rec.tiers.values()),
        "write_ops_total": sum(t.write_ops for t in rec.tiers.values()),
    })
    for name in ("evictions", "offloads_cpu", "offloads_storage", "prefill_writes", "decode_reads",
                 "system_prompt_hits", "user_cache_hits", "multi_turn_hits", "rag_hits",
                 "storage_tokens_processed", "gpu_entries", "cpu_entries", "storage_entries"):
        cache_stats[name] = c.get(name, 0)
    mt_hits, mt_misses = c.get("multi_turn_cache_hits", 0), c.get("multi_turn_cache_misses", 0)
    summary = {
        "total_requests": len(reqs),
        "total_tokens": total_tokens,
        "elapsed_time": elapsed,
        "avg_throughput_tokens_per_sec": total_tokens / elapsed,
        "requests_per_second": len(reqs) / elapsed,
        "cache_io_tokens_per_thread_second": total_tokens / storage_sum if storage_sum > 0 else 0.0,
        "end_to_end_latency_ms": percentiles_ms([r.e2e for r in reqs]),
        "queue_wait_ms": percentiles_ms([r.queue_wait for r in reqs]),
        "storage_io_latency_ms": percentiles_ms([r.storage for r in reqs]),
        "generation_latency_ms": percentiles_ms([r.generation for r in reqs]),
        "cache_stats": cache_stats,
        "multi_turn_stats": {"cache_hits": mt_hits, "cache_misses": mt_misses,
                             "hit_rate": mt_hits / (mt_hits + mt_misses) if mt_hits + mt_misses else 0.0},
        "prefix_cache_stats": {"prefix_hits": c.get("prefix_hits", 0), "prefix_misses": c.get("prefix_misses", 0)},
        "qos_metrics": qos_metrics(reqs, profile),
    }
    summary["reference_compat"] = {
        "storage_throughput_tokens_per_sec": summary["cache_io_tokens_per_thread_second"],
        "read_iops": cache_stats["read_ops_total"], "write_iops": cache_stats["write_ops_total"],
    }
    return summary


def qos_metrics(reqs: list[RequestRecord], profile: str) -> dict:
    import numpy as np

    out = {}
    for level, prof in QOS_PROFILES.items():
        lat = [r.e2e * 1000.0 for r in reqs if r.qos == level]
        if not lat:
            out[level] = {"requests": 0, "sla": "no_data"}
            continue
        arr = np.asarray(lat)
        entry = {"requests": len(lat), "latency_ms": {
            "mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "p99": float(np.percentile(arr, 99)), "max": float(arr.max())}}
        if profile == "latency":
            target = prof["target_p95_ms"]
            compliance = 1.0 - float((arr > target).sum()) / len(lat)
            entry["sla"] = {"target_p95_ms": target, "actual_p95_ms": entry["latency_ms"]["p95"],
                            "compliance": compliance, "met": compliance >= 0.95}
        out[level] = entry
    return out
