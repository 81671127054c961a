"""Helpers shared by the kvcache tests (a uniquely named module: tests/*/ have no packages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MLPS = Path(sys.executable).with_name("mlps")
MPI_FLAGS = ("--allow-run-as-root", "--oversubscribe")
# a configuration small enough for a few seconds on 2 cores: tiny-1b objects are 24 KiB/token
TINY = ("--model", "tiny-1b", "--num-users", "2", "--cpu-mem-gb", "0.05")


def run_mlps(*args, env=None, timeout=240) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(MLPS), "kvcache", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def metadata_of(results: Path) -> dict:
    found = sorted(results.rglob("kvcache_*_metadata.json"))
    assert found, f"no metadata under {results}"
    return json.loads(found[-1].read_text())
