"""The GPU tier (torch CUDA): runs only where a CUDA device exists (the device machine); skipped elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mlps_kvcache.tiers import cuda_status

CUDA, WHY = cuda_status()
pytestmark = pytest.mark.skipif(not CUDA, reason=f"no CUDA: {WHY}")


def test_gpu_tier_round_trip_and_cascade_to_cpu_and_storage(tmp_path):
    from mlps_kvcache import models
    from mlps_kvcache.cache import KVCache
    from mlps_kvcache.data import DataGenerator
    from mlps_kvcache.metrics import Recorder
    from mlps_kvcache.tiers import CPUTier, GPUTier, StorageTier

    gen, rec = DataGenerator(5), Recorder()
    bpt = models.bytes_per_token("tiny-1b")
    tiers = [GPUTier(4 << 20), CPUTier(4 << 20), StorageTier(tmp_path, float("inf"), check=gen.check)]
    cache = KVCache(tiers, rec, gen, bpt)
    size = 64 * bpt  # 1.5 MiB: two fit under the 0.8 target of each 4 MiB tier
    for i in range(6):
        assert cache.allocate(f"o{i}", 64)[1] == "gpu"
    placed = {k: cache.tiers[e.tier].name for k, e in cache.entries.items()}
    assert placed == {"o0": "storage", "o1": "storage", "o2": "cpu", "o3": "cpu", "o4": "gpu", "o5": "gpu"}
    back = np.empty(size, dtype=np.uint8)
    tiers[0].read_into("o5", 0, back)
    assert back.tobytes() == gen.object_bytes("o5", size)  # bytes survive the trip through device memory
    tiers[1].read_into("o3", 0, back)
    assert back.tobytes() == gen.object_bytes("o3", size)  # and the GPU -> CPU demotion
    assert cache.read("o4") is not None and rec.tiers["gpu"].read_ops == 1
    assert cache.consistent() and tiers[2].integrity_failures == 0


def test_worker_with_a_gpu_tier(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mlps_kvcache.worker", "--out-dir", str(out), "--model", "tiny-1b",
                           "--num-users", "4", "--duration", "5", "--gpu-mem-gb", "0.5", "--cpu-mem-gb", "0.25"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "kvcache_rank0.json").read_text())
    cs = result["summary"]["cache_stats"]
    assert result["gpu_tier"]["present"] is True and result["tiers"][0]["name"] == "gpu"
    assert cs["tier_gpu_kv_bytes_written_gb"] > 0 and cs["gpu_read_ops"] > 0
    print(json.dumps({k: cs[k] for k in ("tier_gpu_read_bandwidth_gbps", "tier_gpu_write_bandwidth_gbps",
                                         "gpu_read_p95_ms", "gpu_write_p95_ms", "cache_hit_rate")}))
