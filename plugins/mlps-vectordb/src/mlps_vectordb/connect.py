"""Connecting to the database under test, the same pymilvus client code for both backends.

* embedded (default): milvus-lite on a local ``.db`` data directory. ``MilvusClient("<path>.db")`` starts the
  lite gRPC server inside the calling process; milvus-lite holds an exclusive lock on the directory, so only one
  process may open it (measured: a second process gets "Open local milvus failed"). The search step therefore
  opens it once and hands its local ``http://127.0.0.1:<port>`` URI to the query processes.
* server: ``--uri http://host:19530`` (or ``--host``/``--port``), a real Milvus standalone or cluster.

Failures are turned into mlps errors with a hint; callers in worker processes print them (see ``fail``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlps import ConfigurationError, DependencyError, FileSystemError, MlpsError

# Raised so large batches (1536-dim x 1000) fit in one gRPC message, as the reference does.
GRPC_MESSAGE_LIMIT = 514_983_574
INDEX_SEARCH_PARAM = {"HNSW": "ef", "DISKANN": "search_list", "AISAQ": "search_list", "IVF_FLAT": "nprobe",
                      "IVF_SQ8": "nprobe"}


def quiet_client_logs() -> None:
    """pymilvus logs every failed RPC with a traceback, milvus-lite and faiss log at INFO; the errors that matter
    are caught and reported by us in one line, so keep their loggers to real trouble."""
    import logging

    try:
        import pymilvus  # noqa: F401  (its import configures its logger: set the level afterwards)
    except ImportError:
        return
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    for name in ("milvus_lite", "faiss", "faiss.loader"):
        logging.getLogger(name).setLevel(logging.WARNING)


def describe_target(uri: str | None, db_path: str | None, client=None) -> dict:
    """What is being measured; with a client, also the server's version (milvus-lite's server mode is told
    apart from a real Milvus by it)."""
    out = {"database": "milvus", "backend": "milvus", "uri": uri} if uri else \
        {"database": "milvus", "backend": "milvus-lite", "db_path": str(db_path)}
    if client is not None:
        out["server_version"] = server_version(client)
        if uri and is_lite_version(out["server_version"]):
            out["backend"] = "milvus-lite-server"
    return out


def server_version(client) -> str | None:
    try:
        return str(client.get_server_version())
    except Exception:
        return None


def is_lite_version(version: str | None) -> bool:
    return bool(version) and version.lower().startswith("milvus_lite")


def open_client(uri: str | None, db_path: str | None, timeout: float):
    """A ``MilvusClient`` for the server at ``uri`` or the milvus-lite directory ``db_path``."""
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise DependencyError("pymilvus is not installed", suggestion="pip install 'pymilvus<3.1' milvus-lite")
    if uri:
        try:
            return MilvusClient(uri=uri, timeout=timeout,
                                grpc_options={"grpc.max_send_message_length": GRPC_MESSAGE_LIMIT,
                                              "grpc.max_receive_message_length": GRPC_MESSAGE_LIMIT})
        except Exception as exc:
            raise DependencyError(f"cannot reach Milvus at {uri} within {timeout:g} s: {_short(exc)}",
                                  suggestion="start the server or fix --uri; leave --uri out to use the embedded "
                                             "milvus-lite database") from None
    path = Path(db_path)
    if not path.parent.is_dir():
        raise FileSystemError(f"the directory of --db-path {path} does not exist", path=path.parent,
                              suggestion="create it or choose another --db-path")
    try:
        import milvus_lite  # noqa: F401  (pymilvus needs it for .db paths)
    except ImportError:
        raise DependencyError("milvus-lite is not installed (needed without --uri)",
                              suggestion="pip install milvus-lite, or point --uri at a Milvus server") from None
    try:
        return MilvusClient(str(path), timeout=timeout)
    except Exception as exc:
        raise FileSystemError(f"cannot open the milvus-lite database {path}: {_short(exc)}", path=path,
                              suggestion="another process may hold it open (milvus-lite allows one); stop it "
                                         "or use another --db-path") from None


def lite_server_uri(db_path: str) -> str:
    """Open the milvus-lite directory in this process and return the local URI other processes can use."""
    open_client(None, db_path, timeout=30).close()  # validates and starts the in-process server
    from milvus_lite.server_manager import server_manager_instance

    return server_manager_instance.start_and_get_uri(str(db_path))  # the running server's URI


def release_lite(db_path: str) -> None:
    try:
        from milvus_lite.server_manager import server_manager_instance
        server_manager_instance.release_server(str(db_path))
    except Exception:
        pass


def collection_info(client, name: str) -> dict:
    """Schema facts the run needs: vector field, dimension, index type, metric, row count."""
    if not client.has_collection(name):
        raise ConfigurationError(f"collection {name!r} does not exist", parameter="collection",
                                 suggestion="create it first with `mlps vectordb datagen` (same --collection, "
                                            "--uri/--db-path and --results-dir)")
    desc = client.describe_collection(name)
    vector_field, dimension = None, None
    for f in desc.get("fields", []):
        if (f.get("params") or {}).get("dim") is not None:
            vector_field, dimension = f["name"], int(f["params"]["dim"])
    if vector_field is None:
        raise ConfigurationError(f"collection {name!r} has no float vector field", parameter="collection")
    index_type, metric = None, None
    for index_name in client.list_indexes(name, field_name=vector_field) or []:
        d = client.describe_index(name, index_name)
        index_type, metric = d.get("index_type"), d.get("metric_type")
    rows = int(client.get_collection_stats(name).get("row_count", 0))
    return {"collection": name, "vector_field": vector_field, "dimension": dimension, "index_type": index_type,
            "metric_type": metric, "row_count": rows}


def search_params(index_type: str | None, search_ef: int, limit: int) -> dict:
    key = INDEX_SEARCH_PARAM.get((index_type or "").upper())
    return {"params": {key: max(int(search_ef), int(limit))}} if key else {"params": {}}


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:300]


def fail(exc: MlpsError, error_file: Path | None) -> int:
    """Report an mlps error from a worker process: one line on stderr, JSON for the plugin, exit status 2."""
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.suggestion:
        print(f"hint: {exc.suggestion}", file=sys.stderr)
    if error_file is not None:
        try:
            error_file.write_text(json.dumps(exc.to_dict(), indent=1))
        except OSError:
            pass
    return 2
