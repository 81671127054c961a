"""mlps hooks for the vector-database benchmark: ``mlps vectordb datasize|datagen|run``.

datagen and run execute ``python -m mlps_vectordb.<module>`` subprocesses (so the core's process-group signal
handling applies); a short in-process preflight step before them turns bad input (unreachable ``--uri``, a
missing collection, a dimension mismatch) into one-line errors with hints. Only stdlib and ``mlps`` are imported
here; pymilvus and numpy load inside the functions and worker modules that use them.
"""

import json
import sys
from pathlib import Path

from mlps import Benchmark, Command, ConfigurationError, ExecutionError, Option, Requirement, Step, hookimpl

from mlps_vectordb.sizing import INDEX_TYPES, LITE_INDEX_TYPES, datasize, datasize_text

BENCHMARK_TYPE = "vector_database"  # the reference's metadata value and results-tree name
DEFAULT_COLLECTION = "mlps_vectordb"
LITE_DIRNAME = "vectordb_data"  # default milvus-lite data: <results-dir>/vectordb_data/milvus_lite.db

_SIZE = (
    Option(("--dimension", "--vector-dim"), type=int, default=1536, min=1, help="Vector dimension."),
    Option(("--num-vectors",), type=int, default=1_000_000, min=1, help="Vectors in the collection."),
    Option(("--num-shards",), type=int, default=1, min=1, help="Collection shards."),
    Option(("--vector-dtype",), choices=("FLOAT_VECTOR",), default="FLOAT_VECTOR", help="Vector element type."),
)
_INDEX = Option(("--index-type",), choices=INDEX_TYPES, help="Index: HNSW (default on milvus-lite) or DISKANN "
                "(default on a Milvus server); AISAQ, IVF_FLAT, IVF_SQ8, FLAT (datasize default: DISKANN).")
_CONNECT = (
    Option(("--uri",), help="Milvus server URI (http://host:19530). Default: embedded milvus-lite (--db-path)."),
    Option(("--host",), help="Milvus server host (same as --uri http://HOST:PORT)."),
    Option(("--port",), type=int, default=19530, min=1, help="Milvus server port (with --host)."),
    Option(("--db-path",), type=Path, help="milvus-lite data directory, ending in .db "
                                          f"[default: <results-dir>/{LITE_DIRNAME}/milvus_lite.db]."),
    Option(("--collection",), default=DEFAULT_COLLECTION, help="Collection name."),
    Option(("--connect-timeout",), type=float, default=10.0, min=0.1, help="Seconds to wait for the server."),
    Option(("--vdb-engine",), choices=("milvus",), default="milvus", help="Vector database engine."),
    Option(("--seed",), type=int, default=42, help="Seed of the generated data and query vectors."),
)
_BUILD = (
    Option(("--distribution",), choices=("uniform", "normal", "zipfian"), default="uniform",
           help="Distribution of the generated vectors."),
    Option(("--batch-size",), type=int, default=1000, min=1, help="Vectors per insert call."),
    Option(("--chunk-size",), type=int, default=10000, min=1, help="Vectors generated at a time (memory bound)."),
    Option(("--force",), type=bool, help="Drop and recreate an existing collection."),
    Option(("--metric-type",), choices=("COSINE", "L2", "IP"), default="COSINE", help="Distance metric."),
    Option(("--M",), type=int, default=16, min=2, help="HNSW: graph degree."),
    Option(("--ef-construction",), type=int, default=200, min=1, help="HNSW: build candidate list."),
    Option(("--max-degree",), type=int, default=16, min=1, help="DISKANN/AISAQ: graph degree."),
    Option(("--search-list-size",), type=int, default=200, min=1, help="DISKANN/AISAQ: build list size."),
    Option(("--inline-pq",), type=int, default=16, min=0, help="AISAQ: inline PQ bytes."),
    Option(("--compact",), type=bool, secondary="--no-compact", default=True, help="Compact after the load."),
)
_SEARCH = (
    Option(("--num-query-processes",), type=int, default=1, min=1, help="Query processes (clients)."),
    Option(("--batch-size",), type=int, default=1, min=1, help="Query vectors per search call."),
    Option(("--runtime",), type=float, min=0.1, help="Timed mode: seconds of searching (default 60)."),
    Option(("--queries",), type=int, min=1, help="Query-count mode: total queries (excludes --runtime)."),
    Option(("--search-limit",), type=int, default=10, min=1, help="Top-k returned per query."),
    Option(("--search-ef",), type=int, default=200, min=1, help="Search list: HNSW ef / DISKANN search_list / "
                                                                  "IVF nprobe (at least --search-limit)."),
    Option(("--num-query-vectors",), type=int, default=1000, min=1, help="Query pool size (cycled)."),
    Option(("--recall-k",), type=int, min=1, help="k of recall@k (default: --search-limit)."),
    Option(("--report-count",), type=int, default=100, min=0, help="Progress line every N batches (0: off)."),
    Option(("--distribution",), choices=("uniform", "normal", "zipfian"), default="uniform",
           help="Distribution of the query vectors (use datagen's)."),
)
BENCHMARK = Benchmark(
    name="vectordb", benchmark_type=BENCHMARK_TYPE,
    help="Vector database load and search (Milvus via pymilvus; embedded milvus-lite by default). Preview: OPEN.",
    commands=(
        Command("datasize", help="Storage the collection needs: raw bytes x index overhead x shards.",
                options=(*_SIZE, Option(_INDEX.flags, choices=INDEX_TYPES, default="DISKANN", help=_INDEX.help))),
        Command("datagen", help="Create the collection, insert generated vectors, build the index, flush, compact.",
                options=(*_SIZE, _INDEX, *_CONNECT, *_BUILD)),
        Command("run", help="Timed (--runtime) or counted (--queries) search with recall@k and latency.",
                options=(_SIZE[0], _INDEX, *_CONNECT, *_SEARCH)),
    ))
DEFAULT_RUNTIME = 60.0


@hookimpl
def mlps_register_benchmarks(register):
    register(BENCHMARK)


def _endpoint(run) -> tuple[str | None, str | None]:
    """(uri, db_path): exactly one is set."""
    uri, host = run.option("uri"), run.option("host")
    if uri and host:
        raise ConfigurationError("give --uri or --host, not both", parameter="uri")
    if host:
        uri = f"http://{host}:{run.option('port')}"
    if uri:
        if not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:")):
            raise ConfigurationError(f"--uri {uri!r} is not a Milvus server URI", parameter="uri",
                                     suggestion="use http://HOST:19530; for milvus-lite pass --db-path instead")
        return uri, None
    db_path = run.option("db_path")
    if db_path is None:
        db_path = Path(run.option("results_dir")).expanduser() / LITE_DIRNAME / "milvus_lite.db"
    db_path = Path(db_path).expanduser().resolve()
    if db_path.suffix != ".db":
        raise ConfigurationError(f"--db-path {db_path} must end in .db (milvus-lite's convention)",
                                 parameter="db_path", suggestion=f"use --db-path {db_path}.db")
    return None, str(db_path)


def _index_type(run, uri) -> str:
    index = run.option("index_type") or ("DISKANN" if uri else "HNSW")
    if not uri and index not in LITE_INDEX_TYPES:
        raise ConfigurationError(
            f"{index} needs a real Milvus server: milvus-lite accepts it but silently searches by brute force",
            parameter="index_type", expected=list(LITE_INDEX_TYPES), actual=index,
            suggestion="use --index-type HNSW with milvus-lite, or point --uri at a Milvus server")
    return index


@hookimpl
def mlps_prepare_run(run):
    if run.params:
        raise ConfigurationError("vectordb takes no --params overrides", parameter="params",
                                 actual=sorted(run.params), suggestion="use the vectordb options instead")
    run.num_processes = 1
    run.override_parameters = {}
    if run.command == "datasize":
        run.model = run.option("index_type")
        run.parameters = {"dataset": datasize(run.option("num_vectors"), run.option("dimension"),
                                              run.option("index_type"), run.option("num_shards"),
                                              run.option("vector_dtype"))}
        return
    uri, db_path = _endpoint(run)
    index = _index_type(run, uri)
    run.model = index
    database = {"database": run.option("vdb_engine"), "backend": "milvus" if uri else "milvus-lite",
                "uri": uri, "db_path": db_path, "collection": run.option("collection")}
    # the reference's top-level metadata fields for vector database runs
    run.extra_metadata.update(vdb_engine=run.option("vdb_engine"), vdb_index=index, collection=database["collection"],
                              uri=uri, db_path=db_path, dimension=run.option("dimension"))
    if run.command == "datagen":
        o = run.options
        run.parameters = {
            "database": database,
            "dataset": {"collection_name": o["collection"], "num_vectors": o["num_vectors"],
                        "dimension": o["dimension"], "num_shards": o["num_shards"],
                        "vector_dtype": o["vector_dtype"], "distribution": o["distribution"],
                        "batch_size": o["batch_size"], "chunk_size": o["chunk_size"], "seed": o["seed"]},
            "index": {"index_type": index, "metric_type": o["metric_type"], "M": o["M"],
                      "ef_construction": o["ef_construction"], "max_degree": o["max_degree"],
                      "search_list_size": o["search_list_size"], "inline_pq": o["inline_pq"]},
            "workflow": {"compact": bool(o["compact"]), "force": bool(o["force"])},
            "datasize": datasize(o["num_vectors"], o["dimension"], index, o["num_shards"], o["vector_dtype"])}
        return
    runtime, queries = run.option("runtime"), run.option("queries")
    if runtime is not None and queries is not None:
        raise ConfigurationError("--runtime and --queries exclude each other", parameter="runtime",
                                 suggestion="timed mode: --runtime SECONDS; query-count mode: --queries N")
    if queries is None and runtime is None:
        runtime = DEFAULT_RUNTIME
    run.num_processes = run.option("num_query_processes")
    o = run.options
    run.parameters = {
        "database": database,
        "dataset": {"collection_name": o["collection"], "dimension": o["dimension"], "seed": o["seed"],
                    "query_distribution": o["distribution"], "num_query_vectors": o["num_query_vectors"]},
        "index": {"index_type": index},
        "search": {"search_limit": o["search_limit"], "search_ef": o["search_ef"],
                   "recall_k": o["recall_k"] or o["search_limit"]},
        "run": {"mode": "query_count" if queries is not None else "timed", "runtime": runtime, "queries": queries,
                "num_query_processes": o["num_query_processes"], "batch_size": o["batch_size"],
                "report_count": o["report_count"]}}


def _endpoint_args(run) -> list:
    db = run.parameters["database"]
    return ["--uri", db["uri"]] if db["uri"] else ["--db-path", db["db_path"]]


@hookimpl
def mlps_build_commands(run):
    if run.command == "datasize":
        return [Step(func=_datasize_step, name="datasize", description="vector database size arithmetic")]
    p = run.parameters
    common = [*_endpoint_args(run), "--collection", p["dataset"]["collection_name"],
              "--dimension", p["dataset"]["dimension"], "--seed", p["dataset"]["seed"],
              "--connect-timeout", run.option("connect_timeout"), "--out-dir", run.run_dir]
    preflight = Step(func=_preflight, name="preflight", description="check the database and the collection")
    if run.command == "datagen":
        d, i = p["dataset"], p["index"]
        argv = [sys.executable, "-m", "mlps_vectordb.datagen", *common, "--num-vectors", d["num_vectors"],
                "--num-shards", d["num_shards"], "--distribution", d["distribution"], "--batch-size", d["batch_size"],
                "--chunk-size", d["chunk_size"], "--index-type", i["index_type"], "--metric-type", i["metric_type"],
                "--M", i["M"], "--ef-construction", i["ef_construction"], "--max-degree", i["max_degree"],
                "--search-list-size", i["search_list_size"], "--inline-pq", i["inline_pq"]]
        argv += ["--force"] if p["workflow"]["force"] else []
        argv += [] if p["workflow"]["compact"] else ["--no-compact"]
        return [preflight, Step(argv=argv, name="datagen")]
    r, s = p["run"], p["search"]
    argv = [sys.executable, "-m", "mlps_vectordb.search", *common,
            "--distribution", p["dataset"]["query_distribution"],
            "--num-query-vectors", p["dataset"]["num_query_vectors"],
            "--num-query-processes", r["num_query_processes"], "--batch-size", r["batch_size"],
            "--search-limit", s["search_limit"], "--search-ef", s["search_ef"], "--recall-k", s["recall_k"],
            "--report-count", r["report_count"]]
    argv += ["--runtime", r["runtime"]] if r["mode"] == "timed" else ["--queries", r["queries"]]
    argv += ["--index-type", p["index"]["index_type"]] if p["index"]["index_type"] else []
    return [preflight, Step(argv=argv, name="run")]


def _datasize_step(run) -> int:
    d = run.parameters["dataset"]
    run.path("vectordb_datasize.json").write_text(json.dumps(d, indent=1))
    print(datasize_text(d), end="", flush=True)
    return 0


def _preflight(run) -> int:
    from mlps_vectordb.preflight import preflight
    run.extra_metadata["vectordb_preflight"] = preflight(run)
    return 0


@hookimpl
def mlps_requirements(run):
    if run.benchmark != "vectordb" or run.command == "datasize":
        return None
    reqs = [Requirement("module", "numpy", install={"pip": "numpy"}, reason="vector generation and recall"),
            Requirement("module", "pymilvus", install={"pip": "pymilvus<3.1"}, reason="the Milvus client")]
    if not run.parameters["database"]["uri"]:
        reqs.append(Requirement("module", "milvus_lite", install={"pip": "milvus-lite"},
                                reason="the embedded database (or pass --uri)"))
    return reqs


def _read_json(run, name):
    path = run.path(name)
    return json.loads(path.read_text()) if path.is_file() else None


@hookimpl
def mlps_parse_results(run):
    if run.command == "datasize":
        return _read_json(run, "vectordb_datasize.json")
    if run.command == "datagen":
        record = _read_json(run, "datagen.json")
        if not record or record.get("status") != "complete":
            raise ExecutionError("datagen left no complete datagen.json", suggestion="see vectordb_datagen.*.log")
        if record["inserted_vectors"] != record["num_vectors"]:
            raise ExecutionError(f"the collection holds {record['inserted_vectors']:,} vectors, "
                                 f"{record['num_vectors']:,} were inserted",
                                 suggestion="duplicate ids or a failing server; rerun datagen with --force")
        return record
    summary = _read_json(run, "summary.json")
    if not summary or not summary.get("total_queries"):
        raise ExecutionError("the search run answered no queries", suggestion="see vectordb_run.stderr.log")
    return summary


@hookimpl
def mlps_after_run(run, exit_status):
    if run.benchmark != "vectordb" or exit_status == "success" or run.run_dir is None:
        return
    for name, key in (("datagen.json", "vectordb_datagen"), ("vectordb_error.json", "vectordb_error")):
        try:
            value = _read_json(run, name)
        except (OSError, ValueError):
            value = None
        if value is not None:
            run.extra_metadata[key] = value


@hookimpl
def mlps_run_checkers(benchmark):
    if benchmark not in (BENCHMARK_TYPE, "vectordb"):
        return None
    from mlps_vectordb.rules import VectorDBRunChecker
    return [VectorDBRunChecker]


@hookimpl
def mlps_submission_checkers(benchmark):
    if benchmark not in (BENCHMARK_TYPE, "vectordb"):
        return None
    from mlps_vectordb.rules import VectorDBSubmissionChecker
    return [VectorDBSubmissionChecker]


@hookimpl
def mlps_headline_metrics(benchmark, metadata):
    if benchmark not in (BENCHMARK_TYPE, "vectordb") or metadata.get("command") != "run":
        return None
    m = metadata.get("metrics") or {}
    return {"QPS": m.get("throughput_qps"), "p99 latency ms": m.get("p99_latency_ms"),
            "recall": m.get("recall"), "vectors": m.get("num_vectors"), "dimension": m.get("dimension")}
