"""Search QPS through `mlps vectordb run` vs a bare pymilvus loop issuing the same queries, side by side.

One milvus-lite collection (N x D, HNSW) is made once with `mlps vectordb datagen`. Then each repetition runs,
in alternating order:

* mlps: `mlps vectordb run --queries Q --num-query-processes 1 --batch-size 1` (QPS from its metadata; with one
  query process the run's driver, which holds the lite database, searches itself);
* bare-embedded: a fresh Python process doing what a pymilvus user does with a local file:
  `MilvusClient("<path>.db")` (milvus-lite serves inside that process) and a loop of Q `search()` calls;
* bare-client: the lite database opened by one process and searched over its local URI by another
  (the topology mlps needs for several query processes, since milvus-lite allows one process per database).

With `--scaling`, it instead runs `mlps vectordb run` with 1 and with 2 query processes, alternating, and prints
the medians (the multi-process topology: the driver holds milvus-lite, the query processes connect to it).

Every variant issues the same Q query vectors in the same order (the run's seeded query pool), one query per
call, with the same search parameters, and times only the loop of search() calls. Medians of the repetitions
and the ratios are printed.

    .venv/bin/python benchmarks/vectordb_bench.py [--vectors 20000] [--dimension 128] [--queries 500] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

MLPS = str(Path(sys.executable).with_name("mlps"))

BARE = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from pymilvus import MilvusClient
    from mlps_vectordb import vectors
    target, collection, dim, queries, ef, topology = sys.argv[1:7]
    dim, queries, ef = int(dim), int(queries), int(ef)
    client = MilvusClient(target)
    client.load_collection(collection)
    pool = vectors.query_pool(1000, dim, "uniform", 42)
    params = {"params": {"ef": ef}}
    client.search(collection, data=[pool[0]], limit=10, search_params=params, anns_field="vector")  # warm-up
    t0 = time.perf_counter()
    for i in range(queries):
        client.search(collection, data=[pool[i % len(pool)]], limit=10, search_params=params, anns_field="vector")
    print(json.dumps({"qps": queries / (time.perf_counter() - t0)}))
""")

SERVER = textwrap.dedent("""
    import sys, time
    from milvus_lite.server_manager import server_manager_instance
    print(server_manager_instance.start_and_get_uri(sys.argv[1]), flush=True)
    sys.stdin.read()   # serve until the benchmark closes our stdin
    server_manager_instance.release_all()
""")


def mlps_qps(results: Path, db: Path, args, processes: int = 1) -> float:
    proc = subprocess.run([MLPS, "vectordb", "run", "--results-dir", str(results), "--db-path", str(db),
                           "--num-query-processes", str(processes),
                           "--collection", "bench", "--dimension", str(args.dimension), "--queries",
                           str(args.queries), "--search-ef", str(args.ef), "--report-count", "0",
                           "--num-query-vectors", "1000", "--allow-invalid-params"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"mlps run failed:\n{proc.stderr[-2000:]}")
    newest = max(results.glob("vectordb/HNSW/run/*/*_metadata.json"))
    return json.loads(newest.read_text())["metrics"]["throughput_qps"]


def bare_qps(db: Path, args, topology: str) -> float:
    server = None
    target = str(db)
    if topology == "client":
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(db)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        target = server.stdout.readline().strip()
    try:
        proc = subprocess.run([sys.executable, "-c", BARE, target, "bench", str(args.dimension), str(args.queries),
                               str(args.ef), topology], capture_output=True, text=True)
    finally:
        if server is not None:
            server.stdin.close()
            server.wait(60)
    if proc.returncode != 0:
        sys.exit(f"bare loop failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["qps"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vectors", type=int, default=20000)
    p.add_argument("--dimension", type=int, default=128)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--ef", type=int, default=200)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--scaling", action="store_true", help="mlps with 1 vs 2 query processes instead")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="vdb_bench_") as tmp:
        results = Path(tmp)
        db = results / "bench.db"
        proc = subprocess.run([MLPS, "vectordb", "datagen", "--results-dir", str(results), "--db-path", str(db),
                               "--collection", "bench", "--num-vectors", str(args.vectors), "--dimension",
                               str(args.dimension)], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"datagen failed:\n{proc.stderr[-2000:]}")
        runs = {"mlps": [], "bare-embedded": [], "bare-client": []}
        if args.scaling:
            runs = {"mlps-1-process": [], "mlps-2-processes": []}
        order = list(runs)
        for rep in range(args.reps):
            for name in (order if rep % 2 == 0 else order[::-1]):
                if name.startswith("mlps"):
                    qps = mlps_qps(results, db, args, 2 if name == "mlps-2-processes" else 1)
                else:
                    qps = bare_qps(db, args, name.split("-")[1])
                runs[name].append(qps)
                print(f"rep {rep + 1}: {name:16s} {qps:8.1f} QPS", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\n{args.vectors} x {args.dimension} HNSW on milvus-lite, {args.queries} queries, batch 1, ef {args.ef}, "
          f"medians of {args.reps}:")
    for k, v in med.items():
        print(f"  {k:16s} {v:8.1f} QPS")
    if args.scaling:
        print(f"  2 processes / 1 process = {med['mlps-2-processes'] / med['mlps-1-process']:.3f}")
        return
    print(f"  mlps / bare-embedded = {med['mlps'] / med['bare-embedded']:.3f}")
    print(f"  mlps / bare-client   = {med['mlps'] / med['bare-client']:.3f}")


if __name__ == "__main__":
    main()
