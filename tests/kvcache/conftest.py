"""Fixtures of the kvcache tests: the real `mlps` CLI as a subprocess, and small mounted filesystems."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def need_mpirun():
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun (Open MPI) is not installed")
