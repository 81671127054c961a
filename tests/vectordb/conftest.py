"""Fixtures of the vectordb tests: one real milvus-lite collection (20,000 x 128, HNSW) made once per session by
the real `mlps vectordb datagen` and shared by every search test, and small mounted filesystems."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MLPS = str(Path(sys.executable).with_name("mlps"))
NUM_VECTORS, DIMENSION = 20_000, 128


def run_mlps(*args, timeout=240):
    """The installed `mlps` command as a subprocess: (CompletedProcess, metadata dict or None)."""
    proc = subprocess.run([MLPS, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return proc


def metadata_in(results: Path, command: str) -> list[dict]:
    """Every metadata file of a command under a results dir, oldest first."""
    files = sorted(results.glob(f"vectordb/*/{command}/*/*_metadata.json"))
    return [json.loads(f.read_text()) for f in files]


@pytest.fixture(scope="session")
def lite_collection(tmp_path_factory):
    results = tmp_path_factory.mktemp("vdb_results")
    proc = run_mlps("vectordb", "datagen", "--results-dir", results, "--num-vectors", NUM_VECTORS,
                    "--dimension", DIMENSION, "--collection", "shared")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (meta,) = metadata_in(results, "datagen")
    return {"results": results, "db_path": results / "vectordb_data" / "milvus_lite.db", "metadata": meta,
            "stderr": proc.stderr}


@pytest.fixture
def mounted_tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs mount point, unmounted afterwards (skips without privileges)."""
    mounts = []

    def mount(size="4m"):
        point = tmp_path / f"mnt{len(mounts)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True)
        if proc.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
