"""Sizes, memory estimates and pre-start checks; standard library only (the plugin imports this at run time).

Memory model of one rank (reads and writes are both chunked, so no in-flight object is ever held whole):
    CPU tier capacity + workers x 2 x CHUNK (two I/O buffers per worker thread) + 2 x POOL (data pool)
    + BASE (interpreter, numpy, our modules) [+ workers x CHUNK pinned staging + TORCH when a GPU tier is used]
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

from mlps_kvcache import models

GIB = 1 << 30
CHUNK = 4 << 20  # bytes per I/O call
POOL_BYTES = 16 << 20  # random pool of the data generator (kept twice in memory)
BASE_RSS_BYTES = 200 << 20  # python + numpy + engine, measured by benchmarks/kvcache_bench.py
TORCH_RSS_BYTES = 1 << 30  # torch + CUDA context on the host, when a GPU tier is used
MAX_WORKERS = 500
MEAN_TURNS_PER_CONVERSATION = 5  # conversations end with probability 0.2 per turn
TMPFS_TYPES = ("tmpfs", "ramfs", "devtmpfs")


def workers(num_users: int) -> int:
    return max(1, min(int(num_users), MAX_WORKERS))


def peak_rss_estimate(num_users: int, cpu_mem_gb: float, gpu_mem_gb: float = 0.0) -> int:
    """Upper bound of one rank's resident memory in bytes (see the module docstring)."""
    w = workers(num_users)
    est = int(cpu_mem_gb * GIB) + 2 * w * CHUNK + 2 * POOL_BYTES + BASE_RSS_BYTES
    if gpu_mem_gb > 0:
        est += w * CHUNK + TORCH_RSS_BYTES
    return est


def context_distribution(draws: int = 20000, seed: int = 7) -> dict:
    """Request context tokens under the synthetic-user rules (Monte-Carlo, fixed seed, deterministic)."""
    from mlps_kvcache.workload import PERSONAS  # stdlib-only module

    rng = random.Random(seed)
    samples = []
    for _ in range(draws):
        (lo, hi), _, _ = PERSONAS[rng.choice(tuple(PERSONAS))]
        ctx = rng.randint(lo, hi)
        samples.append(rng.randint(max(1, ctx // 4), ctx))
    samples.sort()
    return {"mean": sum(samples) / len(samples), "p95": samples[int(0.95 * (len(samples) - 1))],
            "max": max(hi for (lo, hi), _, _ in PERSONAS.values())}


def datasize(model: str, num_users: int, num_processes: int, cpu_mem_gb: float, gpu_mem_gb: float,
             hosts: int = 1, tensor_parallel: int = 1) -> dict:
    """Memory and storage a run needs, from the engine's own bytes/token table.

    Storage "needed" keeps every live conversation resident (users x 5 turns, the mean conversation length
    under the 20 % end rule, x the mean object); with less, the storage tier simply evicts more.
    """
    bpt = models.bytes_per_token(model, tensor_parallel)
    ctx = context_distribution()
    mean_obj, p95_obj, max_obj = ctx["mean"] * bpt, ctx["p95"] * bpt, ctx["max"] * bpt
    per_rank_working_set = num_users * MEAN_TURNS_PER_CONVERSATION * mean_obj
    ranks_per_host = math.ceil(num_processes / max(1, hosts))
    rss = peak_rss_estimate(num_users, cpu_mem_gb, gpu_mem_gb)
    return {
        "model": model, "bytes_per_token": bpt, "num_users_per_rank": num_users, "num_processes": num_processes,
        "mean_object_bytes": int(mean_obj), "p95_object_bytes": int(p95_obj), "max_object_bytes": int(max_obj),
        "working_set_bytes_per_rank": int(per_rank_working_set),
        "storage_needed_bytes": int(per_rank_working_set * num_processes),
        "storage_recommended_bytes": int(2 * per_rank_working_set * num_processes),
        "peak_rss_bytes_per_rank": rss, "peak_rss_bytes_per_host": rss * ranks_per_host,
        "gpu_tier_bytes_per_rank": int(gpu_mem_gb * GIB), "cpu_tier_bytes_per_rank": int(cpu_mem_gb * GIB),
    }


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where unknown)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def filesystem_type(path: Path) -> str | None:
    """The filesystem type of the mount holding ``path`` (longest mount-point prefix in /proc/self/mounts)."""
    try:
        real = os.path.realpath(path)
        best, fstype = "", None
        with open("/proc/self/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, parts[2]
        return fstype
    except OSError:
        return None


def check_cache_dir(path: Path) -> str | None:
    """Why ``path`` cannot hold the storage tier, or None when it can."""
    if not path.exists():
        return f"cache directory {path} does not exist"
    if not path.is_dir():
        return f"cache directory {path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"cache directory {path} is not writable"
    return None
