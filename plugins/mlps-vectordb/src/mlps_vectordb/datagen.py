"""``python -m mlps_vectordb.datagen``: create the collection, insert generated vectors, build the index, flush,
compact, and write ``datagen.json`` (also when it fails: how far it got and what state the collection is in).

Exit status: 0 done, 2 bad input or the database refused (message on stderr, ``vectordb_error.json``),
3 the disk filled up.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
from pathlib import Path

from mlps import FileSystemError, MlpsError

from mlps_vectordb import connect

INDEX_WAIT_SECONDS = 3600


def build_index_params(client, args):
    params = client.prepare_index_params()
    build = {"HNSW": {"M": args.M, "efConstruction": args.ef_construction},
             "DISKANN": {"max_degree": args.max_degree, "search_list_size": args.search_list_size},
             "AISAQ": {"inline_pq": args.inline_pq, "max_degree": args.max_degree,
                       "search_list_size": args.search_list_size},
             "IVF_FLAT": {"nlist": args.nlist}, "IVF_SQ8": {"nlist": args.nlist}}.get(args.index_type, {})
    params.add_index(field_name="vector", index_type=args.index_type, metric_type=args.metric_type, params=build)
    return params, build


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota" in text or "errno 28" in text


def _collection_state(client, name: str) -> dict:
    try:
        if not client.has_collection(name):
            return {"exists": False}
        return {"exists": True, "row_count": int(client.get_collection_stats(name).get("row_count", 0))}
    except Exception as exc:  # the database itself may be unusable after a full disk
        return {"exists": None, "error": connect._short(exc)}


class Progress:
    """A one-line progress bar on stderr, redrawn at most twice a second."""

    def __init__(self, total: int):
        self.total, self.started, self.last = total, time.monotonic(), 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.5:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        width = 30
        filled = int(width * done / max(1, self.total))
        sys.stderr.write(f"\rinserting [{'#' * filled}{'.' * (width - filled)}] {done:,}/{self.total:,} "
                         f"({rate:,.0f} vectors/s)")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def insert_all(client, args, record: dict) -> None:
    from mlps_vectordb.vectors import generate

    progress = Progress(args.num_vectors)
    started = time.monotonic()
    for chunk_no, chunk_start in enumerate(range(0, args.num_vectors, args.chunk_size)):
        count = min(args.chunk_size, args.num_vectors - chunk_start)
        vectors = generate(count, args.dimension, args.distribution, args.seed, stream=chunk_no)
        for b in range(0, count, args.batch_size):
            part = vectors[b:b + args.batch_size]
            first = chunk_start + b
            rows = [{"id": first + i, "vector": part[i]} for i in range(len(part))]
            result = client.insert(args.collection, rows)
            record["inserted_acknowledged"] += int(result.get("insert_count", len(rows)))
            progress.update(record["inserted_acknowledged"])
    progress.update(record["inserted_acknowledged"], force=True)
    record["timings"]["insert_seconds"] = round(time.monotonic() - started, 3)


def wait_for_index(client, name: str, interval: float = 0.5) -> dict:
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while True:
        desc = client.describe_index(name, "vector")
        if desc.get("state") in ("Finished", None) and int(desc.get("pending_index_rows", 0) or 0) == 0:
            return desc
        if desc.get("state") == "Failed" or time.monotonic() > deadline:
            raise MlpsError(f"index build on {name!r} did not finish: {desc}")
        time.sleep(interval)


def datagen(args, record: dict) -> None:
    client = connect.open_client(args.uri, args.db_path, args.connect_timeout)
    record["database"] = connect.describe_target(args.uri, args.db_path, client)
    record["stage"] = "create"
    from pymilvus import DataType, MilvusClient

    if client.has_collection(args.collection):
        if not args.force:
            from mlps import ConfigurationError
            raise ConfigurationError(f"collection {args.collection!r} already exists", parameter="collection",
                                     suggestion="pass --force to drop and recreate it, or choose --collection")
        client.drop_collection(args.collection)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=args.dimension)
    # the index is declared on the empty collection (the reference's order); it is built as data arrives
    index_params, build = build_index_params(client, args)
    record["index_params"] = build
    client.create_collection(args.collection, schema=schema, shards_num=args.num_shards, index_params=index_params)
    record["stage"] = "insert"
    insert_all(client, args, record)
    timings = record["timings"]
    record["stage"] = "flush"
    t = time.monotonic()
    client.flush(args.collection)
    timings["flush_seconds"] = round(time.monotonic() - t, 3)
    record["stage"] = "index"
    t = time.monotonic()
    desc = wait_for_index(client, args.collection)
    timings["index_seconds"] = round(time.monotonic() - t, 3)
    if args.compact:
        record["stage"] = "compact"
        t = time.monotonic()
        job = client.compact(args.collection)
        _wait_compaction(client, job)
        desc = wait_for_index(client, args.collection)
        timings["compact_seconds"] = round(time.monotonic() - t, 3)
    record["stage"] = "done"
    record["index"] = {"index_type": desc.get("index_type"), "metric_type": desc.get("metric_type"),
                       "indexed_rows": desc.get("indexed_rows"), "state": desc.get("state")}
    record["inserted_vectors"] = int(client.get_collection_stats(args.collection).get("row_count", 0))
    record["collection_state"] = _collection_state(client, args.collection)
    client.close()
    if not args.uri:  # milvus-lite finishes background segment merges and index builds when it closes
        record["stage"] = "close"
        t = time.monotonic()
        connect.release_lite(args.db_path)
        timings["close_seconds"] = round(time.monotonic() - t, 3)
    record["stage"] = "done"


def _wait_compaction(client, job, timeout: float = INDEX_WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = str(client.get_compaction_state(job))
        except Exception:  # backends without compaction state (milvus-lite compacts synchronously)
            return
        if "Completed" in state or "Undefined" in state:
            return
        time.sleep(0.5)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m mlps_vectordb.datagen", description=__doc__)
    p.add_argument("--uri")
    p.add_argument("--db-path")
    p.add_argument("--collection", required=True)
    p.add_argument("--num-vectors", type=int, required=True)
    p.add_argument("--dimension", type=int, required=True)
    p.add_argument("--num-shards", type=int, default=1)
    p.add_argument("--distribution", default="uniform")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--chunk-size", type=int, default=10000)
    p.add_argument("--index-type", default="HNSW")
    p.add_argument("--metric-type", default="COSINE")
    p.add_argument("--M", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--max-degree", type=int, default=16)
    p.add_argument("--search-list-size", type=int, default=200)
    p.add_argument("--inline-pq", type=int, default=16)
    p.add_argument("--nlist", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--force", action="store_true")
    p.add_argument("--no-compact", dest="compact", action="store_false")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument("--out-dir", required=True)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    connect.quiet_client_logs()
    out = Path(args.out_dir)
    record = {"status": "running", "stage": "connect", "collection": args.collection,
              "num_vectors": args.num_vectors, "dimension": args.dimension, "num_shards": args.num_shards,
              "distribution": args.distribution, "index_type": args.index_type, "metric_type": args.metric_type,
              "vector_dtype": "FLOAT_VECTOR", "seed": args.seed, "batch_size": args.batch_size,
              "chunk_size": args.chunk_size, "compact": args.compact, "inserted_acknowledged": 0,
              "database": connect.describe_target(args.uri, args.db_path), "timings": {}}
    code = 0
    try:
        datagen(args, record)
        record["status"] = "complete"
    except MlpsError as exc:
        record.update(status="failed", error=exc.message)
        code = connect.fail(exc, out / "vectordb_error.json")
    except Exception as exc:
        if not _is_disk_full(exc):
            raise
        record.update(status="failed", error=f"disk full during {record['stage']}: {connect._short(exc)}")
        connect.fail(FileSystemError(record["error"], suggestion="free space on the database's filesystem (or "
                                     "use another --db-path), then rerun datagen with --force"),
                     out / "vectordb_error.json")
        code = 3
    finally:
        if record["status"] != "complete":
            try:  # what is left behind, for the metadata (a fresh client: the old one may be broken)
                client = connect.open_client(args.uri, args.db_path, args.connect_timeout)
                record["collection_state"] = _collection_state(client, args.collection)
            except Exception as exc:
                record["collection_state"] = {"exists": None, "error": connect._short(exc)}
        (out / "datagen.json").write_text(json.dumps(record, indent=1))
    if code == 0:
        print(f"datagen: {record['inserted_vectors']:,} vectors in {args.collection!r} "
              f"({args.index_type}, {record['timings']})", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
