"""The §10 validation checklist of the KV-cache engine, on tiny tiers over real files."""

from __future__ import annotations

import hashlib
import math
import random
import threading

import numpy as np
import pytest

from mlps_kvcache import models
from mlps_kvcache.cache import KVCache
from mlps_kvcache.data import BLOCK, DataGenerator
from mlps_kvcache.engine import Engine, EngineConfig
from mlps_kvcache.metrics import GIB, Recorder, RequestRecord, summarize
from mlps_kvcache.tiers import CPUTier, StorageTier, Timing
from mlps_kvcache.workload import Request, RequestFactory, User, decode_reads

TINY_BPT = models.bytes_per_token("tiny-1b")  # 24 KiB per token: 16 tokens = 384 KiB
KIB = 1024


def test_bytes_per_token_table_matches_the_reference():
    expected = {"tiny-1b": 24576, "mistral-7b": 131072, "llama2-7b": 524288, "llama3.1-8b": 131072,
                "llama3.1-70b-instruct": 327680, "deepseek-v3": 70272, "qwen3-32b": 262144,
                "gpt-oss-120b": 73728, "gpt-oss-20b": 49152}
    assert {k: m.bytes_per_token for k, m in models.MODELS.items()} == expected
    assert models.bytes_per_token("llama3.1-8b", tensor_parallel=2) == 65536
    assert models.object_bytes("llama3.1-70b-instruct", 8192) == int(2.5 * GIB)


def test_object_bytes_are_deterministic_per_key_and_seed_and_chunking():
    gen, again, other = DataGenerator(7), DataGenerator(7), DataGenerator(8)
    size = 3 * (1 << 20) + 12345
    whole = gen.object_bytes("conv_user_0001_1_turn_1", size)
    assert whole == again.object_bytes("conv_user_0001_1_turn_1", size)
    assert whole != other.object_bytes("conv_user_0001_1_turn_1", size)
    assert whole != gen.object_bytes("conv_user_0001_1_turn_2", size)
    chunked = np.empty(size, dtype=np.uint8)
    for off in range(0, size, 1 << 20):  # writers fill chunk by chunk: same bytes as one fill
        gen.fill("conv_user_0001_1_turn_1", off, chunked[off:off + (1 << 20)])
    assert chunked.tobytes() == whole


def _block_digests(data: bytes) -> list[bytes]:
    return [hashlib.blake2b(data[i:i + BLOCK], digest_size=16).digest() for i in range(0, len(data) - BLOCK + 1, BLOCK)]


def test_no_duplicate_4k_blocks_across_50_objects():
    gen = DataGenerator(42)
    digests = []
    for i in range(50):
        digests += _block_digests(gen.object_bytes(f"user_{i:04d}_req_000001", 1 << 20))
    assert len(digests) == 50 * 256
    assert len(set(digests)) == len(digests)


def test_no_duplicate_4k_blocks_within_one_object_larger_than_256_mib():
    gen = DataGenerator(42)  # the 16 MiB pool repeats 16+ times inside this object; the stamps keep blocks apart
    size = (256 << 20) + 8 * BLOCK
    buf = np.empty(size, dtype=np.uint8)
    gen.fill("big", 0, buf)
    rows = buf.view(np.uint64).reshape(-1, BLOCK // 8)
    keys = np.ascontiguousarray(rows[:, :4]).view(np.dtype((np.void, 32))).ravel()  # stamp + pool window start
    assert np.unique(keys).size == rows.shape[0]
    assert len(set(_block_digests(buf[:64 << 20].tobytes()))) == (64 << 20) // BLOCK


def _cache(tmp_path, cpu_bytes=0, storage_bytes=float("inf"), stand_in_gpu_bytes=0, allocs=0):
    rec, gen = Recorder(), DataGenerator(1)
    tiers = []
    if stand_in_gpu_bytes:
        # No CUDA on this machine: a RAM tier named "gpu" stands in for Tier-0 to exercise the 3-level
        # cascade; the real GPU tier is tested in test_kvcache_gpu.py where a GPU exists.
        gpu = CPUTier(stand_in_gpu_bytes)
        gpu.name = "gpu"
        tiers.append(gpu)
    if cpu_bytes:
        tiers.append(CPUTier(cpu_bytes))
    tiers.append(StorageTier(tmp_path, storage_bytes, check=gen.check))
    return KVCache(tiers, rec, gen, TINY_BPT, allocs), rec


def test_eviction_cascades_gpu_cpu_storage_then_deletes(tmp_path):
    obj = 16 * TINY_BPT  # 384 KiB; tier targets: gpu 0.8 x 1 MiB holds 2, cpu 2, storage 1.0 x 1.5 MiB holds 4
    cache, rec = _cache(tmp_path, cpu_bytes=1 << 20, storage_bytes=1536 * KIB, stand_in_gpu_bytes=1 << 20)
    where = {}
    for i in range(10):
        _, where[i] = cache.allocate(f"obj{i}", 16)
    assert all(t == "gpu" for t in where.values())  # new objects always land in the fastest tier
    tiers = {e.key: cache.tiers[e.tier].name for e in cache.entries.values()}
    assert tiers == {"obj8": "gpu", "obj9": "gpu", "obj6": "cpu", "obj7": "cpu",
                     "obj2": "storage", "obj3": "storage", "obj4": "storage", "obj5": "storage"}
    assert sorted(p.name for p in tmp_path.glob("*.kv")) == [f"obj{i}.kv" for i in (2, 3, 4, 5)]
    assert not cache.contains("obj0") and not cache.contains("obj1")  # deleted at the last tier
    assert rec.counts["offloads_cpu"] == 8 and rec.counts["offloads_storage"] == 6
    assert rec.counts["evictions"] == 8 + 6 + 2
    # eviction traffic is in the byte counters, without latency samples
    assert rec.tiers["storage"].bytes_written == 6 * obj and rec.tiers["storage"].write_ops == 0
    assert rec.tiers["gpu"].bytes_written == 10 * obj and rec.tiers["gpu"].write_ops == 10
    assert cache.consistent()
    # no promotion: reading a storage object leaves it in storage
    assert cache.read("obj2") is not None
    assert cache.tiers[cache.entries["obj2"].tier].name == "storage"


def test_lru_order_respects_reads(tmp_path):
    cache, _ = _cache(tmp_path, cpu_bytes=1 << 20)
    cache.allocate("a", 16)
    cache.allocate("b", 16)
    cache.read("a")  # b is now least recently used
    cache.allocate("c", 16)
    assert cache.tiers[cache.entries["b"].tier].name == "storage"
    assert cache.tiers[cache.entries["a"].tier].name == "cpu"


def test_storage_only_eviction_never_drives_usage_negative_under_concurrency(tmp_path):
    cache, rec = _cache(tmp_path, storage_bytes=3 * 16 * TINY_BPT, allocs=4)
    errors = []

    def hammer(seed):
        rng = random.Random(seed)
        try:
            for i in range(25):
                cache.allocate(f"t{seed}_{i}", rng.choice((8, 16, 24)))
                for _ in range(2):
                    cache.read(f"t{rng.randrange(8)}_{rng.randrange(i + 1)}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert cache.underflows == 0 and cache.consistent()
    on_disk = sorted(p.name for p in tmp_path.glob("*.kv"))
    assert on_disk == sorted(f"{k}.kv" for k in cache.entries)
    assert rec.counts["evictions"] >= 150
    assert cache.tiers[0].integrity_failures == 0


def _engine(tmp_path, **kw):
    cfg = EngineConfig(model="tiny-1b", num_users=1, duration=5, cache_dir=str(tmp_path), seed=3, **kw)
    return Engine(cfg)


@pytest.mark.parametrize("generated", [1, 32, 33, 100])
def test_decode_reads_whole_object_one_plus_ceil_gen_over_32_times(tmp_path, generated):
    eng = _engine(tmp_path)
    req = Request("user_0000", "user_0000_req_000001", 40, generated, "batch", "prefill_decode")
    eng.process(req)
    storage = eng.rec.tiers["storage"]
    assert storage.read_ops == decode_reads(generated) == 1 + math.ceil(generated / 32)
    assert storage.bytes_read == storage.read_ops * 40 * TINY_BPT
    assert eng.rec.counts["decode_reads"] == storage.read_ops


def test_prefill_only_requests_do_no_decode_reads(tmp_path):
    eng = _engine(tmp_path)
    eng.process(Request("user_0000", "k", 12000, 100, "batch", "prefill"))
    assert eng.rec.tiers["storage"].read_ops == 0 and eng.rec.tiers["storage"].write_ops == 1


def test_multi_turn_reloads_every_earlier_turn_triangular(tmp_path):
    factory = RequestFactory(random.Random(11), multi_turn=True, prefix_caching=False)
    user = User("user_0000", "chatbot", "batch", 600, 60, 0.1)
    convs: dict[str, list] = {}
    for _ in range(400):
        req = factory.next_request(user)
        convs.setdefault(req.key.rsplit("_turn_", 1)[0], []).append(req)
    conv = max(convs.values(), key=len)
    n = len(conv)
    assert n >= 5
    for i, req in enumerate(conv):  # turn i+1 lists turns 1..i as earlier turns
        assert req.key.endswith(f"_turn_{i + 1}")
        assert list(req.earlier_turns) == [r.key for r in conv[:i]]
    eng = _engine(tmp_path)
    for req in conv:
        req.phase = "prefill"  # isolate the reload reads from decode reads
        eng.process(req)
    assert eng.rec.counts.get("multi_turn_cache_hits", 0) == n * (n - 1) // 2
    assert eng.rec.tiers["storage"].read_ops == n * (n - 1) // 2
    assert max(len(c) for c in convs.values()) <= 50


def test_users_follow_the_persona_and_qos_distributions():
    from mlps_kvcache.workload import make_users

    users = make_users(4000, random.Random(5))
    share = {q: sum(u.qos == q for u in users) / len(users) for q in ("interactive", "responsive", "batch")}
    assert abs(share["interactive"] - 0.15) < 0.03 and abs(share["responsive"] - 0.35) < 0.03
    assert abs(share["batch"] - 0.50) < 0.03
    assert all(512 <= u.context_length <= 4096 for u in users if u.persona == "chatbot")


def test_metric_formulas_on_a_hand_computed_run():
    rec = Recorder()
    rec.op("storage", "write", 2 * (1 << 30), Timing(0.5, 0.4, 0.1))
    rec.op("storage", "read", 1 << 30, Timing(0.001, 0.0008, 0.0002))
    rec.op("storage", "read", 1 << 30, Timing(0.002, 0.0015, 0.0005))
    rec.op("storage", "read", 1 << 30, Timing(0.003, 0.002, 0.001))
    rec.op("storage", "read", 1 << 30, Timing(0.004, 0.003, 0.001))
    rec.op("cpu", "write", 1 << 29, None)  # demotion traffic: bytes, no latency sample
    rec.add("cache_hits", 3)
    rec.add("cache_misses", 1)
    rec.request(RequestRecord("batch", 2.0, 0.25, 0.0, 100))
    rec.request(RequestRecord("interactive", 1.0, 0.25, 0.0, 50))
    s = summarize(rec, elapsed=4.0)
    cs = s["cache_stats"]
    assert cs["tier_storage_write_bandwidth_gbps"] == pytest.approx(0.5)  # 2 GiB / 4 s
    assert cs["tier_storage_read_bandwidth_gbps"] == pytest.approx(1.0)  # 4 GiB / 4 s
    assert cs["tier_cpu_write_bandwidth_gbps"] == pytest.approx(0.125) and cs["cpu_write_ops"] == 0
    assert cs["storage_read_p50_ms"] == pytest.approx(2.5)  # linear interpolation of 1, 2, 3, 4 ms
    assert cs["storage_read_p95_ms"] == pytest.approx(3.85)
    assert cs["storage_read_device_p50_ms"] == pytest.approx(1.75)
    assert cs["storage_write_host_p95_ms"] == pytest.approx(100.0)
    assert cs["cache_hit_rate"] == pytest.approx(0.75)
    assert cs["read_write_ratio"] == pytest.approx(4 / 2.5)
    assert s["avg_throughput_tokens_per_sec"] == pytest.approx(150 / 4.0)
    assert s["requests_per_second"] == pytest.approx(0.5)
    assert s["cache_io_tokens_per_thread_second"] == pytest.approx(150 / 0.5)
    assert s["reference_compat"]["storage_throughput_tokens_per_sec"] == s["cache_io_tokens_per_thread_second"]
    assert s["end_to_end_latency_ms"]["p50"] == pytest.approx(1500.0)
    assert s["qos_metrics"]["interactive"]["sla"]["compliance"] == 0.0
    assert s["qos_metrics"]["responsive"] == {"requests": 0, "sla": "no_data"}


def test_one_request_run_matches_hand_computed_bytes(tmp_path):
    eng = _engine(tmp_path)
    eng.process(Request("u", "k1", 100, 64, "batch", "prefill_decode"))  # 1 write, 1 + 2 reads
    s = summarize(eng.rec, elapsed=2.0)
    obj = 100 * TINY_BPT
    assert s["cache_stats"]["tier_storage_kv_bytes_written_gb"] == pytest.approx(obj / GIB)
    assert s["cache_stats"]["tier_storage_read_bandwidth_gbps"] == pytest.approx(3 * obj / GIB / 2.0)
    assert s["cache_stats"]["storage_tokens_processed"] == 100 + 3 * 100


def test_rag_chunks_come_from_one_document_zipf_without_replacement():
    docs = {f"doc_{d:04d}": [(f"rag_doc_{d:04d}_chunk_{k}", 100 + k) for k in range(8)] for d in range(3)}
    factory = RequestFactory(random.Random(9), rag_docs=docs)
    first_picks = []
    for _ in range(300):
        chunks = factory.pick_rag_chunks()
        assert len(chunks) == 5 and len(set(chunks)) == 5
        assert len({key.split("_chunk_")[0] for key, _ in chunks}) == 1
        first_picks.append(int(chunks[0][0].rsplit("_", 1)[1]))
    assert first_picks.count(0) > first_picks.count(7) * 3  # weight 1 vs 1/8
    req = factory.rag_request(User("user_0000", "chatbot", "batch", 600, 60, 0.1))
    assert req.key.startswith("rag_doc_") and req.phase == "decode" and 5 * 100 <= req.context <= 5 * 107


def test_a_tier_that_runs_out_of_real_memory_passes_the_object_down(tmp_path):
    from mlps_kvcache.tiers import TierFullError

    class RefusingTier(CPUTier):  # stands in for CUDA out-of-memory, which needs a GPU to provoke
        def write(self, key, size, fill):
            raise TierFullError("out of device memory")

    gen, rec = DataGenerator(1), Recorder()
    cache = KVCache([RefusingTier(1 << 20), StorageTier(tmp_path, float("inf"))], rec, gen, TINY_BPT)
    assert cache.allocate("k", 16)[1] == "storage"
    assert cache.consistent() and cache.usage[0] == 0


def test_trace_mode_logs_prefill_decode_and_evict_rows_without_io(tmp_path):
    import csv

    from mlps_kvcache.trace import HEADER

    trace = tmp_path / "trace.csv"
    cfg = EngineConfig(model="tiny-1b", num_users=1, duration=5, cache_dir=str(tmp_path), seed=3,
                       cpu_mem_gb=60 * TINY_BPT / GIB, trace_path=str(trace))
    eng = Engine(cfg)
    for i in range(3):  # 40-token objects: the CPU tier (60 tokens) holds one, the rest is demoted
        eng.process(Request("u", f"k{i}", 40, 10, "batch", "prefill_decode"))
    eng.trace.close()
    assert trace.read_text().startswith(HEADER)
    rows = list(csv.DictReader(trace.open()))
    size = str(40 * TINY_BPT)
    assert [(r["Operation"], r["Tier"], r["Key"], r["Phase"]) for r in rows[:3]] == [
        ("Write", "Tier-1", "k0", "Prefill"), ("Read", "Tier-1", "k0", "Decode"), ("Read", "Tier-1", "k0", "Decode")]
    evict = [(r["Operation"], r["Tier"], r["Key"]) for r in rows if r["Phase"] == "Evict"]
    assert evict[:2] == [("Read", "Tier-1", "k0"), ("Write", "Tier-2", "k0")]
    assert all(r["Object_Size_Bytes"] == size for r in rows)
    assert not list(tmp_path.glob("*.kv"))  # no real I/O
