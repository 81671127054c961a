"""Real milvus-lite end to end: the installed `mlps` command (subprocess) and the in-process CLI with the real
executor. One 20,000 x 128 HNSW collection is made once (conftest) and shared by every search test."""

from __future__ import annotations

import json

import pytest

import mlps_vectordb.plugin as vdbplugin
from vectordb_helpers import DIMENSION, NUM_VECTORS, metadata_in, run_mlps

SEARCH_EF = 500  # ef 200 gives recall@10 about 0.85 on uniform 128-d data with milvus-lite's HNSW (M 16)


@pytest.fixture
def cli(mlps_cli, register_plugin):
    register_plugin(vdbplugin)
    return mlps_cli


def _run_args(lite, results, *extra):
    return ["vectordb", "run", "--results-dir", str(results), "--db-path", str(lite["db_path"]),
            "--collection", "shared", "--dimension", str(DIMENSION), "--search-ef", str(SEARCH_EF),
            "--report-count", "0", *map(str, extra)]


def test_datagen_records_the_inserted_count_and_index(lite_collection):
    meta = lite_collection["metadata"]
    m = meta["metrics"]
    assert meta["exit_status"] == "success" and meta["benchmark_type"] == "vector_database"
    assert m["inserted_vectors"] == m["num_vectors"] == NUM_VECTORS and m["dimension"] == DIMENSION
    assert m["index"]["index_type"] == "HNSW" and m["index"]["state"] == "Finished"
    assert m["database"]["backend"] == "milvus-lite" and m["status"] == "complete"
    assert meta["parameters"]["datasize"]["total_bytes"] == round(NUM_VECTORS * DIMENSION * 4 * 1.5)
    assert "inserting [" in lite_collection["stderr"]  # the progress bar
    assert meta["verification"] == "OPEN"


def test_search_run_end_to_end_with_recall_and_metrics_in_metadata(lite_collection, tmp_path):
    proc = run_mlps(*_run_args(lite_collection, tmp_path, "--queries", 400))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (meta,) = metadata_in(tmp_path, "run")
    m = meta["metrics"]
    assert m["total_queries"] == 400 and m["throughput_qps"] > 0
    assert m["recall"] >= 0.9 and m["recall_k"] == 10 and m["index_type"] == "HNSW"
    for key in ("mean_latency_ms", "p95_latency_ms", "p99_latency_ms", "p999_latency_ms"):
        assert m[key] > 0
    assert m["mean_latency_ms"] <= m["p99_latency_ms"] <= m["p999_latency_ms"]
    assert m["num_vectors"] == NUM_VECTORS and m["dimension"] == DIMENSION
    assert (meta["vdb_engine"], meta["vdb_index"], meta["collection"]) == ("milvus", "HNSW", "shared")
    leaf = tmp_path / "vectordb" / "HNSW" / "run" / meta["run_datetime"]
    summary = json.loads((leaf / "summary.json").read_text())
    assert summary["database"]["database"] == "milvus" and summary["throughput_qps"] == m["throughput_qps"]
    recall = json.loads((leaf / "recall_stats.json").read_text())
    assert recall["ground_truth_vectors"] == NUM_VECTORS and recall["num_queries_evaluated"] == 400
    assert (leaf / "vectordb_run.stdout.log").read_text().count("search: 400 queries") == 1


def test_two_query_processes_share_the_lite_database(lite_collection, tmp_path, cli):
    result = cli.invoke(_run_args(lite_collection, tmp_path, "--queries", 301, "--num-query-processes", 2,
                                  "--batch-size", 4))
    assert result.exit_code == 0, result.output
    (meta,) = metadata_in(tmp_path, "run")
    leaf = tmp_path / "vectordb" / "HNSW" / "run" / meta["run_datetime"]
    rows = [len((leaf / f"milvus_benchmark_p{w}.csv").read_text().splitlines()) - 1 for w in (0, 1)]
    assert rows == [38, 38]  # 151 and 150 queries in batches of 4
    assert meta["metrics"]["total_queries"] == 301 and meta["num_processes"] == 2
    assert meta["metrics"]["recall"] >= 0.9


def test_a_timed_run_stops_on_time(lite_collection, tmp_path, cli):
    result = cli.invoke(_run_args(lite_collection, tmp_path, "--runtime", 3, "--allow-invalid-params"))
    assert result.exit_code == 0, result.output
    (meta,) = metadata_in(tmp_path, "run")
    m = meta["metrics"]
    assert m["benchmark_mode"] == "timed" and m["total_queries"] > 10
    # the last search starts before the deadline and lasts one search: the span ends close to 3 s
    assert 2.5 <= m["total_time_seconds"] <= 3.0 + max(0.5, 5 * m["max_latency_ms"] / 1000)
    assert meta["verification"] == "INVALID"  # under 30 s


def test_dimension_mismatch_is_a_clear_error(lite_collection, tmp_path, cli):
    args = _run_args(lite_collection, tmp_path, "--queries", 10)
    args[args.index("--dimension") + 1] = "64"
    result = cli.invoke(args)
    assert result.exit_code == 2, result.output
    assert "dimension mismatch" in result.output and "--dimension 128" in result.output


def test_missing_collection_suggests_datagen(lite_collection, tmp_path, cli):
    args = _run_args(lite_collection, tmp_path, "--queries", 10)
    args[args.index("--collection") + 1] = "nope"
    result = cli.invoke(args)
    assert result.exit_code == 2 and "'nope' does not exist" in result.output
    assert "mlps vectordb datagen" in result.output


def test_existing_collection_needs_force(lite_collection, tmp_path, cli):
    result = cli.invoke(["vectordb", "datagen", "--results-dir", str(tmp_path), "--db-path",
                         str(lite_collection["db_path"]), "--collection", "shared", "--num-vectors", "10",
                         "--dimension", "8"])
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output


def test_full_disk_during_datagen_stops_with_the_state_recorded(tmp_path, cli, small_filesystem):
    mount = small_filesystem("3m")
    result = cli.invoke(["vectordb", "datagen", "--results-dir", str(tmp_path / "results"), "--db-path",
                         str(mount / "full.db"), "--num-vectors", "20000", "--dimension", "128",
                         "--batch-size", "2000"])
    assert result.exit_code == 6, result.output
    assert "disk full" in result.output and "--force" in result.output
    (meta,) = metadata_in(tmp_path / "results", "datagen")
    assert meta["exit_status"] == "failed"
    record = meta["vectordb_datagen"]
    assert record["status"] == "failed" and record["inserted_acknowledged"] < 20000
    assert "collection_state" in record and meta["vectordb_error"]["type"] == "FileSystemError"


def test_ctrl_c_stops_every_query_process_and_frees_the_database(lite_collection, tmp_path):
    import signal
    import subprocess
    import time

    from vectordb_helpers import MLPS

    proc = subprocess.Popen([MLPS, *_run_args(lite_collection, tmp_path, "--runtime", 120, "--num-query-processes",
                                              2, "--report-count", 20)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # wait until the query processes are searching
        if "query process" in line:
            break
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 8 and time.monotonic() - started < 20
    (meta,) = metadata_in(tmp_path, "run")
    assert meta["exit_status"] == "interrupted"
    # nothing holds the milvus-lite lock any more: a new run can open the database at once
    follow = run_mlps(*_run_args(lite_collection, tmp_path, "--queries", 20))
    assert follow.returncode == 0, follow.stderr[-2000:]


def test_an_empty_collection_is_refused_before_searching(tmp_path, cli):
    from pymilvus import MilvusClient

    from mlps_vectordb.connect import release_lite

    db = tmp_path / "empty.db"
    client = MilvusClient(str(db))
    client.create_collection("hollow", dimension=8)
    client.close()
    release_lite(str(db))  # milvus-lite lets one process hold a database: give it back before mlps opens it
    result = cli.invoke(["vectordb", "run", "--results-dir", str(tmp_path / "r"), "--db-path", str(db),
                         "--collection", "hollow", "--dimension", "8", "--queries", "5", "--index-type", "FLAT"])
    assert result.exit_code == 2, result.output
    assert "is empty" in result.output and "datagen" in result.output


def test_the_same_client_code_drives_a_milvus_server_over_uri(tmp_path):
    """milvus-lite's server mode speaks the real Milvus gRPC protocol: it stands in for a Milvus standalone."""
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(tmp_path / "srv"),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        uri = f"http://127.0.0.1:{port}"
        results = tmp_path / "results"
        gen = run_mlps("vectordb", "datagen", "--results-dir", results, "--uri", uri, "--index-type", "HNSW",
                       "--num-vectors", 3000, "--dimension", 16, "--collection", "remote")
        assert gen.returncode == 0, gen.stderr[-2000:]
        refused = run_mlps("vectordb", "datagen", "--results-dir", results, "--uri", uri, "--index-type", "DISKANN",
                           "--num-vectors", 10, "--dimension", 16, "--collection", "diskann")
        assert refused.returncode == 2 and "milvus-lite server" in refused.stderr and "brute force" in refused.stderr
        run = run_mlps("vectordb", "run", "--results-dir", results, "--uri", uri, "--index-type", "HNSW",
                       "--dimension", 16, "--collection", "remote", "--queries", 100, "--num-query-processes", 2,
                       "--search-ef", 100)
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(30)
    (meta,) = metadata_in(results, "run")
    m = meta["metrics"]
    # same client code as for a Milvus server; the version tells this server is milvus-lite's server mode
    assert m["database"] == {"database": "milvus", "backend": "milvus-lite-server", "uri": uri,
                             "server_version": m["database"]["server_version"]}
    assert m["database"]["server_version"].startswith("milvus_lite")
    assert meta["parameters"]["database"]["backend"] == "milvus-lite-server"
    # the gate graded before the server was asked; grading the saved run (as reports do) sees milvus-lite
    from mlps.rules import verify
    from mlps_vectordb.rules import VectorDBRunChecker
    assert any("milvus-lite" in i.message for i in verify([VectorDBRunChecker], meta).issues)
    assert m["total_queries"] == 100 and m["num_vectors"] == 3000 and m["recall"] >= 0.9
    assert not (results / "vectordb_data").exists()  # no embedded database was made
