"""Fixtures of the vectordb tests: one real milvus-lite collection (20,000 x 128, HNSW) made once per session by
the real `mlps vectordb datagen` and shared by every search test, and small mounted filesystems."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from vectordb_helpers import DIMENSION, NUM_VECTORS, metadata_in, run_mlps  # noqa: E402


@pytest.fixture(scope="session")
def lite_collection(tmp_path_factory):
    results = tmp_path_factory.mktemp("vdb_results")
    proc = run_mlps("vectordb", "datagen", "--results-dir", results, "--num-vectors", NUM_VECTORS,
                    "--dimension", DIMENSION, "--collection", "shared")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (meta,) = metadata_in(results, "datagen")
    return {"results": results, "db_path": results / "vectordb_data" / "milvus_lite.db", "metadata": meta,
            "stderr": proc.stderr}
