"""One rank of a KV-cache run: ``python -m mlps_kvcache.worker --out-dir DIR [options]``.

Launched once per MPI rank (under the core's mpirun line) or as a plain process. The rank comes from the
launcher's environment (Open MPI ``OMPI_COMM_WORLD_RANK``, PMIx ``PMIX_RANK``, MPICH/Hydra ``PMI_RANK``); no
MPI library is initialised because ranks never talk to each other. Each rank gets seed = seed base + rank, its
own cache subdirectory ``<cache-dir>/rank_<r>`` (or a temporary directory, removed afterwards) and its own
results file ``<out-dir>/kvcache_rank<r>.json``.

Exit status: 0 success, 2 bad input, 3 cache directory unusable or full, 4 not enough memory, 1 other failure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from mlps_kvcache import models, sizing

RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")
LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS")
FAULT_ENV = "MLPS_KVCACHE_FAIL_RANK"  # test hook: this rank exits with status 1 after one second


def env_int(names, default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                pass
    return default


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mlps_kvcache.worker", description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--cache-dir", type=Path, default=None, help="per-rank subdirectories are made inside")
    p.add_argument("--model", default="llama3.1-8b", choices=sorted(models.MODELS))
    p.add_argument("--num-users", type=int, default=4)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--gpu-mem-gb", type=float, default=0.0)
    p.add_argument("--cpu-mem-gb", type=float, default=0.0)
    p.add_argument("--storage-capacity-gb", type=float, default=0.0)
    p.add_argument("--generation-mode", default="none", choices=("none", "fast", "realistic"))
    p.add_argument("--performance-profile", default="latency", choices=("latency", "throughput"))
    p.add_argument("--disable-multi-turn", action="store_true")
    p.add_argument("--disable-prefix-caching", action="store_true")
    p.add_argument("--enable-rag", action="store_true")
    p.add_argument("--rag-num-docs", type=int, default=10)
    p.add_argument("--seed-base", type=int, default=42)
    p.add_argument("--max-concurrent-allocs", type=int, default=0)
    p.add_argument("--tensor-parallel", type=int, default=1)
    p.add_argument("--buffered-io", action="store_true", help="do not use O_DIRECT even where it works")
    p.add_argument("--max-requests", type=int, default=0)
    p.add_argument("--interval", type=float, default=1.0, help="time-series sampling interval (s)")
    p.add_argument("--label", default="", help="recorded in the result (option/trial)")
    p.add_argument("--progress", action="store_true", help="progress lines on stderr (rank 0)")
    p.add_argument("--io-trace", action="store_true",
                   help="trace mode: no I/O, every operation logged to <out-dir>/kvcache_trace_rank<r>.csv")
    return p.parse_args(argv)


def fail(code: int, message: str) -> int:
    print(f"kvcache worker: error: {message}", file=sys.stderr, flush=True)
    return code


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def _prepare_cache(args, rank: int) -> tuple[Path, bool]:
    """The rank's cache directory and whether it is temporary; stale objects of earlier runs are removed."""
    if args.cache_dir is None:
        return Path(tempfile.mkdtemp(prefix=f"mlps-kvcache-rank{rank}-")), True
    problem = sizing.check_cache_dir(args.cache_dir)
    if problem:
        raise FileNotFoundError(problem)
    rank_dir = args.cache_dir / f"rank_{rank}"
    rank_dir.mkdir(exist_ok=True)
    _clear_objects(rank_dir)
    return rank_dir, False


def _clear_objects(directory: Path) -> None:
    for item in directory.glob("*.kv"):
        try:
            item.unlink()
        except FileNotFoundError:
            pass


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM (Ctrl-C in mlps, or mpirun stopping the job) unwinds through the finally below: caches cleaned
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rank = env_int(RANK_VARS, 0)
    local_ranks = env_int(LOCAL_SIZE_VARS, 1)
    if args.num_users < 1 or args.duration <= 0:
        return fail(2, "--num-users and --duration must be positive")
    if os.environ.get(FAULT_ENV) == str(rank):
        time.sleep(1.0)
        return fail(1, f"rank {rank} failing on purpose ({FAULT_ENV})")
    estimate = sizing.peak_rss_estimate(args.num_users, args.cpu_mem_gb, args.gpu_mem_gb)
    available = sizing.available_memory()
    if available is not None and estimate * local_ranks > available:
        return fail(4, f"peak memory estimate {estimate * local_ranks / sizing.GIB:.2f} GiB "
                       f"({local_ranks} rank(s) x {estimate / sizing.GIB:.2f} GiB) exceeds the "
                       f"{available / sizing.GIB:.2f} GiB available on this host")
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        cache_dir, temporary = _prepare_cache(args, rank)
    except OSError as exc:
        return fail(3, str(exc))
    from mlps_kvcache.engine import Engine, EngineConfig  # numpy and the engine load only now
    from mlps_kvcache.tiers import TierFullError

    cfg = EngineConfig(
        model=args.model, num_users=args.num_users, duration=args.duration, gpu_mem_gb=args.gpu_mem_gb,
        cpu_mem_gb=args.cpu_mem_gb, storage_capacity_gb=args.storage_capacity_gb, cache_dir=str(cache_dir),
        generation_mode=args.generation_mode, performance_profile=args.performance_profile,
        multi_turn=not args.disable_multi_turn, prefix_caching=not args.disable_prefix_caching,
        rag=args.enable_rag, rag_num_docs=args.rag_num_docs, seed=args.seed_base + rank,
        max_concurrent_allocs=args.max_concurrent_allocs, tensor_parallel=args.tensor_parallel,
        direct_io=False if args.buffered_io else None, max_requests=args.max_requests,
        interval=args.interval, progress=args.progress and rank == 0, storage_share=local_ranks,
        trace_path=str(args.out_dir / f"kvcache_trace_rank{rank}.csv") if args.io_trace else "")
    try:
        try:
            engine = Engine(cfg, rank)
        except RuntimeError as exc:  # e.g. GPU tier without CUDA
            return fail(2, str(exc))
        storage = engine.tiers[-1]
        if not storage.direct and not args.io_trace:
            print(f"kvcache worker: warning: rank {rank}: buffered I/O ({storage.direct_reason}); "
                  "reads drop cached pages first", file=sys.stderr, flush=True)
        try:
            result = engine.run()
        except TierFullError as exc:  # during setup (RAG ingestion); the measured phase reports it itself
            return fail(3, f"cache directory full: {exc}")
    finally:
        if temporary:
            shutil.rmtree(cache_dir, ignore_errors=True)
        else:
            _clear_objects(cache_dir)
    result.update(label=args.label, world_size=env_int(("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"), 1),
                  hostname=os.uname().nodename, cache_dir=str(cache_dir), temporary_cache=temporary,
                  memory={"peak_rss_estimate_bytes": estimate,
                          "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024})
    _write_json(args.out_dir / f"kvcache_rank{rank}.json", result)
    cs = result["summary"]["cache_stats"]
    print(f"kvcache worker: rank {rank} {args.label}: {result['requests_completed']} requests, storage read "
          f"{cs['tier_storage_read_bandwidth_gbps']:.3f} GiB/s, write {cs['tier_storage_write_bandwidth_gbps']:.3f} "
          f"GiB/s, hit rate {cs['cache_hit_rate']:.1%}", file=sys.stderr, flush=True)
    if result["error"]:
        return fail(3 if "full" in result["error"] else 1, result["error"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
