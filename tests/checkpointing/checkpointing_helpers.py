"""Helpers shared by the checkpointing tests (a uniquely named module: tests/ folders are not packages)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

MPIRUN = shutil.which("mpirun")
MPI_FLAGS = ["--allow-run-as-root", "--oversubscribe"]
needs_mpirun = pytest.mark.skipif(MPIRUN is None, reason="mpirun (Debian openmpi-bin) is not installed")


def engine_argv(n: int, folder: Path, out: Path, *extra: str) -> list[str]:
    """A direct ``mpirun -n N python -m mlps_checkpointing.engine`` line (the plugin builds the same one)."""
    return [MPIRUN, "-n", str(n), *MPI_FLAGS, sys.executable, "-m", "mlps_checkpointing.engine",
            "--model", "llama3-8b", "--folder", str(folder), "--output-dir", str(out), "--scale", "0.0001",
            "--block-size", str(1 << 20), *extra]


def read_metadata(results_dir: Path) -> list[dict]:
    files = sorted(Path(results_dir).rglob("checkpointing_*_metadata.json"))
    return [json.loads(f.read_text()) for f in files]


def no_engine_left(marker: str) -> list[int]:
    """PIDs of engine processes whose command line mentions ``marker`` (a test's unique folder)."""
    import psutil

    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info.get("cmdline") or [])
        if "mlps_checkpointing.engine" in cmd and marker in cmd and proc.info["pid"] != os.getpid():
            left.append(proc.info["pid"])
    return left
