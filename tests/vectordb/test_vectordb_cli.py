"""`mlps vectordb` through the core (in-process CLI): plans, bad input, rules. No database is touched except by
the unreachable-server test (a real connection attempt to a closed local port)."""

from __future__ import annotations

import json
import shlex
import socket
import time

import pytest

import mlps_vectordb.plugin as vdbplugin
from mlps.rules import Validation, verify
from mlps_vectordb.rules import VectorDBRunChecker, VectorDBSubmissionChecker


@pytest.fixture
def cli(mlps_cli, register_plugin):
    register_plugin(vdbplugin)
    return mlps_cli


def _invoke(cli, tmp_path, command, *args):
    return cli.invoke(["vectordb", command, "--results-dir", str(tmp_path / "results"), *map(str, args)])


def _argv(result, module):
    return [shlex.split(line) for line in result.stdout.splitlines() if f"mlps_vectordb.{module}" in line]


def test_datasize_prints_and_records_the_reference_arithmetic(cli, tmp_path):
    result = _invoke(cli, tmp_path, "datasize", "--num-vectors", 1_000_000, "--dimension", 1536,
                     "--index-type", "HNSW", "--num-shards", 2)
    assert result.exit_code == 0, result.output
    assert "18.432 GB" in result.output  # 1e6 x 1536 x 4 B x 1.5 x 2
    (meta_file,) = (tmp_path / "results").glob("vectordb/HNSW/datasize/*/*_metadata.json")
    meta = json.loads(meta_file.read_text())
    assert meta["benchmark_type"] == "vector_database"
    assert meta["metrics"]["total_bytes"] == 18_432_000_000
    assert meta["parameters"]["dataset"]["index_overhead"] == 1.5


def test_datagen_plan_defaults_to_milvus_lite_and_hnsw(cli, tmp_path):
    result = _invoke(cli, tmp_path, "datagen", "--what-if", "--num-vectors", 5000, "--dimension", 64,
                     "--distribution", "zipfian", "--force")
    assert result.exit_code == 0, result.output
    assert "[in-process] check the database and the collection" in result.stdout
    (argv,) = _argv(result, "datagen")
    db_path = tmp_path / "results" / "vectordb_data" / "milvus_lite.db"
    assert argv[argv.index("--db-path") + 1] == str(db_path.resolve())
    assert argv[argv.index("--index-type") + 1] == "HNSW"
    assert argv[argv.index("--distribution") + 1] == "zipfian" and "--force" in argv
    assert not db_path.exists()  # what-if touches nothing


def test_run_plan_passes_the_search_flags(cli, tmp_path):
    result = _invoke(cli, tmp_path, "run", "--what-if", "--uri", "http://db.example:19530", "--runtime", 45,
                     "--num-query-processes", 3, "--batch-size", 8, "--search-limit", 20, "--search-ef", 64,
                     "--dimension", 768)
    assert result.exit_code == 0, result.output
    (argv,) = _argv(result, "search")
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert flags["--uri"] == "http://db.example:19530" and flags["--runtime"] == "45.0"
    assert (flags["--num-query-processes"], flags["--batch-size"], flags["--search-limit"]) == ("3", "8", "20")
    assert flags["--search-ef"] == "64" and flags["--dimension"] == "768" and flags["--index-type"] == "DISKANN"
    assert "--queries" not in argv


@pytest.mark.parametrize("index", ["DISKANN", "AISAQ"])
def test_diskann_and_aisaq_are_refused_on_milvus_lite(cli, tmp_path, index):
    result = _invoke(cli, tmp_path, "datagen", "--index-type", index, "--num-vectors", 10, "--dimension", 4)
    assert result.exit_code == 2
    assert "brute force" in result.output and "--uri" in result.output


def test_diskann_is_planned_against_a_server(cli, tmp_path):
    result = _invoke(cli, tmp_path, "datagen", "--what-if", "--host", "10.0.0.5", "--index-type", "DISKANN",
                     "--max-degree", 64)
    assert result.exit_code == 0, result.output
    (argv,) = _argv(result, "datagen")
    assert argv[argv.index("--uri") + 1] == "http://10.0.0.5:19530"
    assert argv[argv.index("--max-degree") + 1] == "64"


@pytest.mark.parametrize("args,needle", [
    (("run", "--runtime", 30, "--queries", 100), "exclude each other"),
    (("datagen", "--num-vectors", 0), "--num-vectors"),
    (("datagen", "--db-path", "/tmp/not-a-db-dir"), "must end in .db"),
    (("run", "--uri", "http://a:1", "--host", "b"), "not both"),
    (("run", "--uri", "localhost:19530"), "not a Milvus server URI"),
    (("run", "--params", "x=1"), "no --params"),
])
def test_bad_input_is_a_usage_error(cli, tmp_path, args, needle):
    result = _invoke(cli, tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert needle in result.output


def test_closed_runs_are_refused_because_the_benchmark_is_a_preview(cli, tmp_path):
    result = _invoke(cli, tmp_path, "run", "--closed", "--uri", "http://db:19530", "--runtime", 60)
    assert result.exit_code == 7
    assert "preview" in result.output


def test_a_short_timed_run_is_invalid_unless_allowed(cli, tmp_path, recording_executor):
    result = _invoke(cli, tmp_path, "run", "--open", "--runtime", 5)
    assert result.exit_code == 7 and "at least 30 s" in result.output
    result = _invoke(cli, tmp_path, "run", "--open", "--runtime", 5, "--allow-invalid-params")
    # the gate let it through; the recorded steps left no summary.json, so parsing reports a failed run
    assert [s.name for s in recording_executor.steps] == ["preflight", "run"]
    assert result.exit_code == 6 and "answered no queries" in result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_uri_fails_clearly_within_the_connect_timeout(cli, tmp_path):
    started = time.monotonic()
    result = _invoke(cli, tmp_path, "run", "--uri", f"http://127.0.0.1:{_closed_port()}", "--connect-timeout", 3,
                     "--runtime", 30)
    assert time.monotonic() - started < 3 + 10  # the timeout plus the CLI's own start
    assert result.exit_code == 4, result.output
    assert "cannot reach Milvus" in result.output and "hint:" in result.output
    (meta_file,) = (tmp_path / "results").glob("vectordb/DISKANN/run/*/*_metadata.json")
    assert json.loads(meta_file.read_text())["error"]["type"] == "DependencyError"


def _meta(command="run", **metrics):
    base = {"benchmark_type": "vector_database", "command": command, "mode": "open",
            "parameters": {"run": {"mode": "timed", "runtime": 60}, "dataset": {"dimension": 128},
                           "index": {"index_type": "HNSW"}, "database": {"backend": "milvus"}}}
    base["metrics"] = metrics
    return base


GOOD = dict(throughput_qps=100.0, mean_latency_ms=1, p95_latency_ms=2, p99_latency_ms=3, p999_latency_ms=4,
            recall=0.95, recall_k=10, dimension=128, index_type="HNSW", num_vectors=1000)


def _issues(meta, level):
    return [i.message for i in verify([VectorDBRunChecker], meta).issues if i.validation == level]


def test_a_complete_run_is_open_because_of_the_preview():
    verdict = verify([VectorDBRunChecker], _meta(**GOOD))
    assert verdict.validation == Validation.OPEN
    assert any("preview" in m for m in _issues(_meta(**GOOD), Validation.OPEN))


@pytest.mark.parametrize("change,needle", [
    ({"recall": 0.5}, "below the target"), ({"recall": None}, "no recall"), ({"p99_latency_ms": None}, "p99"),
    ({"dimension": 256}, "dimension"),
])
def test_run_metrics_rules(change, needle):
    invalid = _issues(_meta(**{**GOOD, **change}), Validation.INVALID)
    assert any(needle in m for m in invalid), invalid


def test_milvus_lite_and_non_closed_indexes_are_open_only():
    meta = _meta(**GOOD)
    meta["parameters"]["database"]["backend"] = "milvus-lite"
    meta["parameters"]["index"]["index_type"] = "IVF_FLAT"
    opens = _issues(meta, Validation.OPEN)
    assert any("milvus-lite" in m for m in opens) and any("IVF_FLAT" in m for m in opens)


def test_datagen_must_hold_every_declared_vector():
    assert _issues(_meta("datagen", inserted_vectors=90, num_vectors=100), Validation.INVALID)
    assert not _issues(_meta("datagen", inserted_vectors=100, num_vectors=100), Validation.INVALID)


def test_a_submission_needs_exactly_five_consistent_runs():
    four = [_meta(**GOOD) for _ in range(4)]
    assert verify([VectorDBSubmissionChecker], four, base=VectorDBSubmissionChecker).validation == Validation.INVALID
    five = [_meta(**GOOD) for _ in range(5)]
    assert verify([VectorDBSubmissionChecker], five, base=VectorDBSubmissionChecker).validation == Validation.CLOSED
    five[2]["metrics"]["dimension"] = 64
    assert verify([VectorDBSubmissionChecker], five, base=VectorDBSubmissionChecker).validation == Validation.INVALID
