"""Readable console output: the end-of-run summary table and the datasize table; stdlib only."""

from __future__ import annotations

from pathlib import Path

GIB = float(1 << 30)


def _ms(value) -> str:
    return "-" if not value else (f"{value:,.0f}" if value >= 100 else f"{value:.1f}")


def _bw(value) -> str:
    return f"{value:.3f}"


def summary_table(summary: dict, workloads: dict, run_dir: Path) -> str:
    """One block per option: per-tier bandwidth and latency, hit rate, request and token rates."""
    lines = []
    for label, o in summary["options"].items():
        w = workloads[label]
        tiers_present = {"gpu": w["gpu_mem_gb"] > 0, "cpu": w["cpu_mem_gb"] > 0, "storage": True,
                         "gpu_why": "--gpu-mem-gb 0", "cpu_why": "--cpu-mem-gb 0"}
        lines.append("")
        lines.append(f"KV-cache {label}: {o.get('model', '?')}, {o['rank_count']} rank(s), "
                     f"{o['trial_count']} trial(s), {o['total_requests']} requests")
        lines.append(f"  {'tier':<8} {'read GiB/s':>11} {'write GiB/s':>12} {'read P95 ms':>12} {'write P95 ms':>13}")
        for tier in ("gpu", "cpu", "storage"):
            if not tiers_present.get(tier):
                lines.append(f"  {tier:<8} {'(not used: ' + tiers_present.get(tier + '_why', 'capacity 0') + ')'}")
                continue
            if tier == "storage":
                rd, wr = o["aggregated_read_bandwidth_gbps"], o["aggregated_write_bandwidth_gbps"]
                rp, wp = o["aggregated_storage_read_p95_ms"], o["aggregated_storage_write_p95_ms"]
            else:
                rd, wr = o[f"aggregated_{tier}_read_bandwidth_gbps"], o[f"aggregated_{tier}_write_bandwidth_gbps"]
                rp, wp = o.get(f"aggregated_{tier}_read_p95_ms"), o.get(f"aggregated_{tier}_write_p95_ms")
            lines.append(f"  {tier:<8} {_bw(rd):>11} {_bw(wr):>12} {_ms(rp):>12} {_ms(wp):>13}")
        lines.append(f"  storage device P95: read {_ms(o['aggregated_device_read_p95_ms'])} ms, "
                     f"write {_ms(o['aggregated_device_write_p95_ms'])} ms (per whole object)")
        lines.append(f"  cache hit rate {o['cache_hit_rate']:.1%}   requests/s {o['aggregated_requests_per_second']:.2f}"
                     f"   generated tokens/s {o['aggregated_avg_throughput_tokens_per_sec']:.1f}"
                     f"   request storage-time P95 {_ms(o['aggregated_p95_latency_ms'])} ms")
        if o["partial_failure"]:
            lines.append(f"  PARTIAL: {len(o['missing_files'])} rank result file(s) missing")
    lines.append("")
    lines.append(f"results: {run_dir}")
    return "\n".join(lines) + "\n"


def datasize_table(d: dict) -> str:
    def gib(key):
        return f"{d[key] / GIB:,.2f} GiB"

    rows = [
        ("model", d["model"]),
        ("KV bytes per token (per rank)", f"{d['bytes_per_token']:,}"),
        ("users per rank / ranks", f"{d['num_users_per_rank']} / {d['num_processes']}"),
        ("object size mean / P95 / max", f"{gib('mean_object_bytes')} / {gib('p95_object_bytes')} / "
                                         f"{gib('max_object_bytes')}"),
        ("live conversations per rank", gib("working_set_bytes_per_rank")),
        ("storage needed, no evictions", gib("storage_needed_bytes")),
        ("storage recommended (2x)", gib("storage_recommended_bytes")),
        ("peak memory per rank / per host", f"{gib('peak_rss_bytes_per_rank')} / {gib('peak_rss_bytes_per_host')}"),
    ]
    if d.get("cache_dir_free_bytes") is not None:
        rows.append(("free space in cache dir", gib("cache_dir_free_bytes")))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows) + "\n"
