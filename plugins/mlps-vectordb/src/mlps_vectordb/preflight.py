"""The in-process check before datagen/run: reach the database, look at the collection, and raise one-line
mlps errors (with hints) for bad input, before any subprocess starts. milvus-lite allows a single process per
data directory, so the directory is released again before the worker opens it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from mlps import ConfigurationError, FileSystemError

from mlps_vectordb import connect
from mlps_vectordb.sizing import LITE_INDEX_TYPES


def preflight(run) -> dict:
    db = run.parameters["database"]
    uri, db_path = db["uri"], db["db_path"]
    timeout = float(run.option("connect_timeout"))
    if db_path and run.command == "datagen":
        parent = Path(db_path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileSystemError(f"cannot create {parent}: {exc.strerror}", path=parent,
                                  suggestion="choose a writable --db-path") from None
    elif db_path and not Path(db_path).exists():
        raise ConfigurationError(f"no milvus-lite database at {db_path}", parameter="db_path",
                                 suggestion="run `mlps vectordb datagen` first with the same --db-path/--results-dir")
    connect.quiet_client_logs()
    client = connect.open_client(uri, db_path, timeout)
    try:
        _check_server(run, client, uri)
        name = run.parameters["dataset"]["collection_name"]
        if run.command == "datagen":
            return _datagen_checks(run, client, name, db_path)
        from types import SimpleNamespace
        from mlps_vectordb.search import check_collection

        info = connect.collection_info(client, name)
        check_collection(info, SimpleNamespace(dimension=run.parameters["dataset"]["dimension"],
                                               index_type=run.parameters["index"]["index_type"]))
        return {"collection": info}
    finally:
        try:
            client.close()
        finally:
            if db_path:
                connect.release_lite(db_path)


def _check_server(run, client, uri) -> None:
    """Record the server's version; milvus-lite in server mode behind --uri gets milvus-lite's limits."""
    db = run.parameters["database"]
    db["server_version"] = connect.server_version(client)
    if not (uri and connect.is_lite_version(db["server_version"])):
        return
    db["backend"] = "milvus-lite-server"
    index = run.parameters["index"]["index_type"]
    if index not in LITE_INDEX_TYPES:
        raise ConfigurationError(f"{uri} is a milvus-lite server ({db['server_version']}): it accepts {index} but "
                                 "silently searches by brute force", parameter="index_type",
                                 expected=list(LITE_INDEX_TYPES), actual=index,
                                 suggestion="use --index-type HNSW, or point --uri at a real Milvus server")


def _datagen_checks(run, client, name, db_path) -> dict:
    exists = client.has_collection(name)
    if exists and not run.parameters["workflow"]["force"]:
        raise ConfigurationError(f"collection {name!r} already exists", parameter="collection",
                                 suggestion="pass --force to drop and recreate it, or choose another --collection")
    out = {"collection_existed": exists}
    if db_path:
        needed = run.parameters["datasize"]["total_bytes"]
        free = shutil.disk_usage(Path(db_path).parent).free
        out.update(free_bytes=free, estimated_bytes=needed)
        if free < needed:
            print(f"warning: {Path(db_path).parent} has {free / 1e9:.2f} GB free, the collection needs about "
                  f"{needed / 1e9:.2f} GB", file=sys.stderr)
    return out
