"""``python -m mlps_vectordb.search``: the timed (``--runtime``) or counted (``--queries``) search run.

The driver (this process) connects, checks the collection, builds the query pool and its exact top-k with numpy
(untimed), then starts ``--num-query-processes`` query processes. Each opens its own client, issues one untimed
warm-up search, waits at a common start, and times only its ``search()`` calls. For milvus-lite the driver holds
the database open (it allows one process) and the query processes connect to its local URI. Results:
``summary.json`` (the reference's keys), ``recall_stats.json``, ``config.json`` and one CSV per process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mlps import ConfigurationError, ExecutionError, MlpsError

from mlps_vectordb import connect

MAX_CONSECUTIVE_FAILURES = 10
START_TIMEOUT = 120.0


def query_loop(client, plan: dict, pool, worker: int, start_wall: float, deadline_wall: float | None,
               quota: int | None):
    """Issue searches until the deadline or the quota; returns per-batch arrays and first answers seen."""
    import numpy as np

    n, batch = len(pool), plan["batch_size"]
    position = (worker * n) // max(1, plan["num_query_processes"])
    starts, seconds, sizes, found = [], [], [], {}
    failed = streak = done = 0
    params = plan["search_params"]
    while True:
        if quota is not None:
            if done >= quota:
                break
            b = min(batch, quota - done)
        else:
            if time.time() >= deadline_wall:
                break
            b = batch
        idx = [(position + j) % n for j in range(b)]
        position += b
        data = [pool[i] for i in idx]
        t_wall, t0 = time.time(), time.perf_counter()
        try:
            result = client.search(plan["collection"], data=data, limit=plan["search_limit"],
                                   search_params=params, anns_field=plan["vector_field"])
        except Exception as exc:
            failed, streak = failed + 1, streak + 1
            if streak >= MAX_CONSECUTIVE_FAILURES:
                raise ExecutionError(f"query process {worker}: {streak} searches in a row failed: "
                                     f"{connect._short(exc)}")
            continue
        elapsed = time.perf_counter() - t0
        streak = 0
        starts.append(t_wall)
        seconds.append(elapsed)
        sizes.append(b)
        done += b
        for i, hits in zip(idx, result):
            if i not in found:
                found[i] = [int(h["id"]) for h in hits]
        if plan["report_count"] and len(seconds) % plan["report_count"] == 0:
            print(f"query process {worker}: {done:,} queries", flush=True)
    return ({"start": np.asarray(starts, dtype=np.float64), "seconds": np.asarray(seconds, dtype=np.float64),
             "size": np.asarray(sizes, dtype=np.int64), "failed": failed}, found)


def _quota(plan: dict, worker: int) -> int | None:
    if plan["queries"] is None:
        return None
    P = plan["num_query_processes"]
    return plan["queries"] // P + (1 if worker < plan["queries"] % P else 0)


def _warm_up(client, plan: dict, pool) -> None:
    client.search(plan["collection"], data=[pool[0]], limit=plan["search_limit"],
                  search_params=plan["search_params"], anns_field=plan["vector_field"])


def _measure(client, plan: dict, pool, worker: int, start: float):
    quota = _quota(plan, worker)
    deadline = None if quota is not None else start + plan["runtime"]
    while time.time() < start:
        time.sleep(min(0.01, max(0.0, start - time.time())))
    return query_loop(client, plan, pool, worker, start, deadline, quota)


def _save(out: Path, worker: int, records: dict, found: dict) -> None:
    import numpy as np

    np.savez(out / f"worker_{worker}.npz", **{k: v for k, v in records.items() if k != "failed"},
             failed=records["failed"])
    (out / f"worker_{worker}_found.json").write_text(json.dumps({str(k): v for k, v in found.items()}))
    _write_csv(out / f"milvus_benchmark_p{worker}.csv", worker, records)


def worker_main(worker: int, uri: str, plan: dict, ready, go, start_value, out_dir: str) -> None:
    """One query process (spawned): connect, warm up, wait for the common start, run, save its records."""
    import numpy as np

    out = Path(out_dir)
    connect.quiet_client_logs()
    try:
        pool = np.load(out / "query_vectors.npy")
        client = connect.open_client(uri, None, plan["connect_timeout"])
        _warm_up(client, plan, pool)
        ready.release()
        if not go.wait(START_TIMEOUT):
            raise ExecutionError("the start signal never came")
        records, found = _measure(client, plan, pool, worker, start_value.value)
    except MlpsError as exc:
        connect.fail(exc, out / f"worker_{worker}_error.json")
        sys.exit(2)
    _save(out, worker, records, found)


def _write_csv(path: Path, worker: int, r: dict) -> None:
    lines = ["process_id,batch_id,timestamp,batch_size,batch_time_seconds,avg_query_time_seconds,success"]
    for i, (s, t, b) in enumerate(zip(r["start"], r["seconds"], r["size"])):
        lines.append(f"{worker},{i},{s:.6f},{int(b)},{t:.6f},{t / b:.6f},True")
    path.write_text("\n".join(lines) + "\n")


def ground_truth(client, info: dict, pool, k: int):
    """Exact top-k of every pool query over every stored vector, streamed through a query iterator."""
    import numpy as np
    from mlps_vectordb.vectors import TopK

    top = TopK(pool, k, info["metric_type"] or "COSINE")
    it = client.query_iterator(info["collection"], batch_size=10000, output_fields=["id", info["vector_field"]])
    try:
        while True:
            rows = it.next()
            if not rows:
                break
            ids = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
            top.add(ids, np.asarray([r[info["vector_field"]] for r in rows], dtype=np.float32))
    finally:
        it.close()
    return top.result(), top.seen


def run(args, out: Path) -> dict:
    import numpy as np
    from mlps_vectordb import stats, vectors

    timings, t_open = {}, time.monotonic()
    if args.db_path and not args.uri:
        uri = connect.lite_server_uri(args.db_path)
    else:
        uri = args.uri
    client = connect.open_client(uri, None, args.connect_timeout)
    info = connect.collection_info(client, args.collection)
    check_collection(info, args)
    client.load_collection(args.collection)
    timings["open_seconds"] = round(time.monotonic() - t_open, 3)
    plan = {"collection": args.collection, "vector_field": info["vector_field"], "batch_size": args.batch_size,
            "search_limit": args.search_limit, "num_query_processes": args.num_query_processes,
            "runtime": args.runtime, "queries": args.queries, "report_count": args.report_count,
            "connect_timeout": args.connect_timeout,
            "search_params": connect.search_params(info["index_type"], args.search_ef, args.search_limit)}
    recall_k = min(args.recall_k or args.search_limit, args.search_limit, info["row_count"])
    pool = vectors.query_pool(args.num_query_vectors, info["dimension"], args.distribution, args.seed)
    np.save(out / "query_vectors.npy", pool)
    (out / "config.json").write_text(json.dumps({**vars(args), **plan, "recall_k": recall_k, **info}, indent=1))

    t = time.monotonic()
    if args.num_query_processes == 1:
        # One query process: the driver searches itself, so with milvus-lite client and database share one
        # process exactly as in a user's own MilvusClient("x.db") loop (measured: a second process costs
        # 10-15 % QPS on a busy 2-core host; see benchmarks/vectordb_bench.py).
        _warm_up(client, plan, pool)
        timings["query_process_start_seconds"] = round(time.monotonic() - t, 3)
        _save(out, 0, *_measure(client, plan, pool, 0, time.time()))
    else:
        _spawn_query_processes(args, uri, plan, out, timings)
    # Exact ground truth after the timed searches, not before: its numpy work (BLAS threads that spin on after
    # a matrix product) must not share the CPU with the first timed queries.
    t = time.monotonic()
    truth, seen = ground_truth(client, info, pool, recall_k)
    gt_seconds = timings["ground_truth_seconds"] = round(time.monotonic() - t, 3)
    if seen < info["row_count"]:
        raise ExecutionError(f"ground truth saw {seen} of {info['row_count']} vectors")
    batches, found = [], {}
    for w in range(args.num_query_processes):
        data = np.load(out / f"worker_{w}.npz")
        batches.append({k: data[k] for k in ("start", "seconds", "size")} | {"failed": int(data["failed"])})
        for key, ids in json.loads((out / f"worker_{w}_found.json").read_text()).items():
            found.setdefault(int(key), ids)
    summary = stats.summarise(batches)
    recall = vectors.recall_at_k(found, truth, recall_k)
    recall.update(recall_at_k_exact=recall["recall_at_k"], ground_truth_seconds=round(gt_seconds, 3),
                  ground_truth_vectors=seen, computed="numpy, outside the timed loop")
    (out / "recall_stats.json").write_text(json.dumps(recall, indent=1))
    summary.update(recall=recall["recall_at_k"], recall_k=recall_k, num_vectors=info["row_count"],
                   inserted_vectors=info["row_count"], dimension=info["dimension"],
                   index_type=info["index_type"], metric_type=info["metric_type"], collection=args.collection,
                   database=connect.describe_target(args.uri, args.db_path, client),
                   benchmark_mode="query_count" if args.queries is not None else "timed",
                   num_query_processes=args.num_query_processes, batch_size=args.batch_size,
                   runtime=args.runtime, queries=args.queries, search_limit=args.search_limit,
                   search_ef=args.search_ef, search_params=plan["search_params"],
                   num_query_vectors=args.num_query_vectors, setup_timings=timings)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _spawn_query_processes(args, uri: str, plan: dict, out: Path, timings: dict) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, go, start_value = ctx.Semaphore(0), ctx.Event(), ctx.Value("d", 0.0)
    procs = [ctx.Process(target=worker_main, args=(w, uri, plan, ready, go, start_value, str(out)), daemon=True)
             for w in range(args.num_query_processes)]
    t = time.monotonic()
    for p in procs:
        p.start()
    _wait_ready(procs, ready)
    timings["query_process_start_seconds"] = round(time.monotonic() - t, 3)
    start_value.value = time.time() + 0.05
    go.set()
    limit = None if args.runtime is None else args.runtime + 60 + 2 * args.connect_timeout
    for p in procs:
        p.join(limit)
    if any(p.is_alive() for p in procs):
        for p in procs:
            p.kill()
        raise ExecutionError("query processes did not stop in time")
    bad = [w for w, p in enumerate(procs) if p.exitcode != 0]
    if bad:
        raise ExecutionError(f"query process(es) {bad} failed (exit {[procs[w].exitcode for w in bad]})")


def _wait_ready(procs, ready) -> None:
    """Wait until every query process has connected and warmed up; fail fast if one dies meanwhile."""
    deadline, count = time.monotonic() + START_TIMEOUT, 0
    while count < len(procs):
        if ready.acquire(timeout=0.1):
            count += 1
            continue
        dead = [w for w, p in enumerate(procs) if p.exitcode is not None]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            what = f"exited with {[procs[w].exitcode for w in dead]}" if dead else "did not start in time"
            raise ExecutionError(f"query process(es) {dead or ''} {what} before the start (see the messages above)")


def check_collection(info: dict, args) -> None:
    if info["dimension"] != args.dimension:
        raise ConfigurationError(f"dimension mismatch: collection {info['collection']!r} holds "
                                 f"{info['dimension']}-dim vectors, the run asked for {args.dimension}",
                                 parameter="dimension", expected=info["dimension"], actual=args.dimension,
                                 suggestion=f"pass --dimension {info['dimension']} (the value used by datagen)")
    if info["row_count"] == 0:
        raise ConfigurationError(f"collection {info['collection']!r} is empty", parameter="collection",
                                 suggestion="run `mlps vectordb datagen` (with --force) to fill it")
    if args.index_type and info["index_type"] and info["index_type"].upper() != args.index_type.upper():
        raise ConfigurationError(f"collection {info['collection']!r} has a {info['index_type']} index, the run "
                                 f"declared {args.index_type}", parameter="index_type",
                                 expected=info["index_type"], actual=args.index_type,
                                 suggestion=f"pass --index-type {info['index_type']}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m mlps_vectordb.search", description=__doc__)
    p.add_argument("--uri")
    p.add_argument("--db-path")
    p.add_argument("--collection", required=True)
    p.add_argument("--dimension", type=int, required=True)
    p.add_argument("--index-type")
    p.add_argument("--distribution", default="uniform")
    p.add_argument("--num-query-processes", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--runtime", type=float)
    p.add_argument("--queries", type=int)
    p.add_argument("--search-limit", type=int, default=10)
    p.add_argument("--search-ef", type=int, default=200)
    p.add_argument("--num-query-vectors", type=int, default=1000)
    p.add_argument("--recall-k", type=int)
    p.add_argument("--report-count", type=int, default=100)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--out-dir", required=True)
    args = p.parse_args(argv)
    if (args.runtime is None) == (args.queries is None):
        p.error("give exactly one of --runtime and --queries")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    connect.quiet_client_logs()
    out = Path(args.out_dir)
    try:
        s = run(args, out)
    except MlpsError as exc:
        return connect.fail(exc, out / "vectordb_error.json")
    finally:
        if args.db_path and not args.uri:
            connect.release_lite(args.db_path)
    print(f"search: {s['total_queries']:,} queries, {s['throughput_qps']:.1f} QPS, mean "
          f"{s.get('mean_latency_ms', 0):.2f} ms, p99 {s.get('p99_latency_ms', 0):.2f} ms, "
          f"recall@{s['recall_k']} {s['recall'] if s['recall'] is None else round(s['recall'], 4)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
