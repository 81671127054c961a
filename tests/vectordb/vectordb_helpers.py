"""Helpers shared by the vectordb tests (imported by name: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MLPS = str(Path(sys.executable).with_name("mlps"))
NUM_VECTORS, DIMENSION = 20_000, 128


def run_mlps(*args, timeout=240):
    """The installed `mlps` command as a subprocess (CompletedProcess with text output)."""
    proc = subprocess.run([MLPS, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return proc


def metadata_in(results: Path, command: str) -> list[dict]:
    """Every metadata file of a command under a results dir, oldest first."""
    files = sorted(results.glob(f"vectordb/*/{command}/*/*_metadata.json"))
    return [json.loads(f.read_text()) for f in files]
