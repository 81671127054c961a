"""One benchmark run on one rank: build the tiers, play the users, process requests, summarise.

Per request (spec §3.2): prefix probe -> multi-turn reload of earlier turns -> prefill write -> RAG chunk
reads -> decode (probe read, then max(1, ceil(gen/32)) whole-object reads on a hit, or a write on a miss) ->
simulated generation sleep -> record. Requests still in flight when the duration ends are not recorded.
"""

from __future__ import annotations

import os
import queue
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mlps_kvcache import models
from mlps_kvcache.cache import KVCache
from mlps_kvcache.data import DataGenerator
from mlps_kvcache.metrics import GIB, Recorder, RequestRecord, TimeSeries, summarize
from mlps_kvcache.sizing import peak_rss_estimate, workers
from mlps_kvcache.tiers import Aborted, CPUTier, GPUTier, NullTier, StorageTier, TierFullError, cuda_status
from mlps_kvcache.trace import TraceWriter
from mlps_kvcache.workload import (DECODE_BATCH, GENERATION_SECONDS_PER_TOKEN, RequestFactory, Scheduler,
                                   make_users)


@dataclass
class EngineConfig:
    model: str = "llama3.1-8b"
    num_users: int = 100
    duration: float = 60.0
    gpu_mem_gb: float = 0.0
    cpu_mem_gb: float = 0.0
    storage_capacity_gb: float = 0.0  # 0: 95 % of the free space at start, shared by storage_share ranks
    storage_share: int = 1  # ranks on this host that draw on the same free space
    cache_dir: str = ""
    generation_mode: str = "none"
    performance_profile: str = "latency"
    multi_turn: bool = True
    prefix_caching: bool = True
    rag: bool = False
    rag_num_docs: int = 10
    seed: int = 42
    max_concurrent_allocs: int = 0
    tensor_parallel: int = 1
    direct_io: bool | None = None  # None: use O_DIRECT when the filesystem accepts it
    max_requests: int = 0
    interval: float = 1.0
    progress: bool = False
    trace_path: str = ""  # trace mode: no-op tiers, every operation logged to this CSV

    @property
    def workers(self) -> int:
        return workers(self.num_users)

    @property
    def peak_rss_estimate(self) -> int:
        return peak_rss_estimate(self.num_users, self.cpu_mem_gb, self.gpu_mem_gb)


def storage_capacity(cfg: EngineConfig) -> float:
    if cfg.storage_capacity_gb > 0:
        return cfg.storage_capacity_gb * GIB
    st = os.statvfs(cfg.cache_dir)
    return 0.95 * st.f_bavail * st.f_frsize / max(1, cfg.storage_share)


def build_tiers(cfg: EngineConfig, gen: DataGenerator) -> list:
    if cfg.trace_path:
        tiers = [NullTier("gpu", "Tier-0", cfg.gpu_mem_gb * GIB)] if cfg.gpu_mem_gb > 0 else []
        if cfg.cpu_mem_gb > 0:
            tiers.append(NullTier("cpu", "Tier-1", cfg.cpu_mem_gb * GIB))
        return tiers + [NullTier("storage", "Tier-2", storage_capacity(cfg))]
    tiers = []
    if cfg.gpu_mem_gb > 0:
        ok, why = cuda_status()
        if not ok:
            raise RuntimeError(f"a GPU tier was asked for (--gpu-mem-gb {cfg.gpu_mem_gb}) but {why}")
        import torch  # ranks sharing a host spread over its GPUs by local rank
        local_rank = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK") or os.environ.get("MPI_LOCALRANKID") or 0)
        tiers.append(GPUTier(cfg.gpu_mem_gb * GIB, device=local_rank % max(1, torch.cuda.device_count())))
    if cfg.cpu_mem_gb > 0:
        tiers.append(CPUTier(cfg.cpu_mem_gb * GIB))
    tiers.append(StorageTier(Path(cfg.cache_dir), storage_capacity(cfg), cfg.direct_io, check=gen.check))
    return tiers


class Engine:
    def __init__(self, cfg: EngineConfig, rank: int = 0):
        self.cfg, self.rank = cfg, rank
        self.bpt = models.bytes_per_token(cfg.model, cfg.tensor_parallel)
        self.gen = DataGenerator(cfg.seed)
        self.rec = Recorder()
        self.tiers = build_tiers(cfg, self.gen)
        self.trace = TraceWriter(Path(cfg.trace_path)) if cfg.trace_path else None
        self.cache = KVCache(self.tiers, self.rec, self.gen, self.bpt, cfg.max_concurrent_allocs, self.trace)
        self.stop = threading.Event()
        self.error: str | None = None
        self.t_tok = GENERATION_SECONDS_PER_TOKEN[cfg.generation_mode]

    # --- setup -------------------------------------------------------------------------------------------
    def ingest_rag(self, rng: random.Random) -> dict:
        """Chunk the RAG documents into objects before the measured phase (stats are reset afterwards)."""
        if not self.cfg.rag or self.cfg.rag_num_docs <= 0:
            return {}
        large = models.get_model(self.cfg.model).is_large
        lo, hi = (1024, 4096) if large else (4000, 12000)
        chunk_tokens = max(1, min(512, (256 << 20) // self.bpt))
        docs = {}
        for d in range(self.cfg.rag_num_docs):
            tokens, chunks, k = rng.randint(lo, hi), [], 0
            for start in range(0, tokens, chunk_tokens):
                key, n = f"rag_doc_{d:04d}_chunk_{k}", min(chunk_tokens, tokens - start)
                self.cache.allocate(key, n)
                chunks.append((key, n))
                k += 1
            docs[f"doc_{d:04d}"] = chunks
        return docs

    # --- request processing ------------------------------------------------------------------------------
    def _read(self, key: str) -> float:
        t = self.cache.read(key)
        return t.total if t is not None else 0.0

    def process(self, req) -> tuple[float, float]:
        """Run one request's cache operations; returns (storage seconds, generation seconds)."""
        storage, rec = 0.0, self.rec
        if req.system_prompt_key is not None:
            if self.cache.read(req.system_prompt_key) is None:
                rec.add("prefix_misses")
            else:
                rec.add("prefix_hits")
        for key in req.earlier_turns:  # full context reload of every earlier turn still cached
            if self.stop.is_set():
                return storage, 0.0  # past the deadline: the request is dropped anyway
            t = self.cache.read(key)
            if t is None:
                rec.add("multi_turn_cache_misses")
            else:
                rec.add("multi_turn_cache_hits")
                rec.add("multi_turn_hits")
                storage += t.total
        if req.phase in ("prefill", "prefill_decode"):
            t, tier = self.cache.allocate(req.key, req.context)
            storage += t.total
            if tier is not None:
                rec.add("prefill_writes")
        for key, _ in req.rag_chunks:
            t = self.cache.read(key)
            if t is not None:
                rec.add("rag_hits")
                storage += t.total
        if req.phase in ("prefill_decode", "decode"):
            t = self.cache.read(req.key)
            rec.add("decode_reads")
            if t is None:
                t, _ = self.cache.allocate(req.key, req.context)
                storage += t.total
            else:
                storage += t.total
                rec.add("system_prompt_hits" if req.system_prompt_key else "user_cache_hits")
                for _ in range(max(1, -(-req.generate // DECODE_BATCH))):
                    if self.stop.is_set():
                        return storage, 0.0
                    storage += self._read(req.key)
                    rec.add("decode_reads")
        gen_s = req.generate * self.t_tok
        if gen_s > 0:
            self.stop.wait(gen_s)
        return storage, gen_s

    def _worker(self, q: queue.PriorityQueue):
        while not self.stop.is_set():
            try:
                _, _, _, req = q.get(timeout=0.1)
            except queue.Empty:
                continue
            started = time.monotonic()
            try:
                storage, gen_s = self.process(req)
            except Aborted:
                return  # the run is over; this request is dropped
            except TierFullError as exc:
                self.error = f"cache directory full: {exc}"
                self.stop.set()
                return
            except Exception as exc:  # an I/O error ends the run; the rank reports it and exits non-zero
                self.error = f"{type(exc).__name__}: {exc}"
                self.stop.set()
                return
            if self.stop.is_set():
                return  # finished after the deadline: not recorded (reference stop semantics)
            done = time.monotonic()
            self.rec.request(RequestRecord(req.qos, done - req.enqueue_time, storage, gen_s, req.generate,
                                           started - req.enqueue_time))
            if self.cfg.max_requests and len(self.rec.requests) >= self.cfg.max_requests:
                self.stop.set()

    # --- the run -----------------------------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        rng = random.Random(cfg.seed)
        users = make_users(cfg.num_users, rng)
        docs = self.ingest_rag(rng)
        self.rec = self.cache.rec = Recorder()  # RAG ingestion is setup, not measurement
        q: queue.PriorityQueue = queue.PriorityQueue(maxsize=2 * cfg.workers)
        factory = RequestFactory(rng, cfg.multi_turn, cfg.prefix_caching, docs)
        scheduler = Scheduler(users, factory, q, self.stop, cfg.max_requests)
        series = TimeSeries(self.rec, cfg.interval)
        workers = [threading.Thread(target=self._worker, args=(q,), name=f"kvcache-worker-{i}", daemon=True)
                   for i in range(cfg.workers)]
        t0 = time.monotonic()
        try:
            series.start()
            scheduler.start()
            for w in workers:
                w.start()
            self._wait(t0)
        finally:  # also on SIGTERM (SystemExit): nothing may keep writing into a cache about to be removed
            self.stop.set()
            elapsed = time.monotonic() - t0
            self.tiers[-1].abort.set()
            for w in workers:
                if w.is_alive():
                    w.join(timeout=30)
            if scheduler.is_alive():
                scheduler.join(timeout=5)
            series.stop()
            if self.trace:
                self.trace.close()
        return self.result(elapsed, users, series)

    def _wait(self, t0: float) -> None:
        next_report = t0 + 5.0
        while not self.stop.wait(0.2):
            now = time.monotonic()
            if now - t0 >= self.cfg.duration:
                return
            if self.cfg.progress and now >= next_report:
                next_report += 5.0
                self._progress(now - t0)

    def _progress(self, t: float) -> None:
        row = self.rec.byte_totals()
        rd, wr = row["storage"]
        print(f"[kvcache rank {self.rank}] {t:5.0f}/{self.cfg.duration:.0f} s  requests {len(self.rec.requests)}"
              f"  storage read {rd / GIB:.2f} GiB  written {wr / GIB:.2f} GiB", file=sys.stderr, flush=True)

    def result(self, elapsed: float, users, series: TimeSeries) -> dict:
        for k, v in self.cache.residency().items():
            if k.endswith("_entries"):
                self.rec.counts[k] = v
        summary = summarize(self.rec, elapsed, self.cfg.performance_profile)
        storage = self.tiers[-1]
        return {
            "rank": self.rank, "seed": self.cfg.seed, "config": asdict(self.cfg),
            "model": {"key": self.cfg.model, "bytes_per_token": self.bpt},
            "tiers": [t.describe() for t in self.tiers],
            "gpu_tier": self._gpu_note(),
            "requests_completed": summary["total_requests"],
            "total_tokens_generated": summary["total_tokens"],
            "summary": summary,
            "timeseries": series.samples,
            "users": {"count": len(users), "by_qos": _count(u.qos for u in users),
                      "by_persona": _count(u.persona for u in users)},
            "accounting": {"usage_underflows": self.cache.underflows,
                           "integrity_failures": storage.integrity_failures},
            "error": self.error,
            "trace": {"file": str(self.trace.path), "rows": self.trace.rows} if self.trace else None,
        }

    def _gpu_note(self) -> dict:
        if self.cfg.gpu_mem_gb > 0:
            return {"present": True, "detail": cuda_status()[1]}
        return {"present": False, "detail": "not requested (--gpu-mem-gb 0)"}


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
