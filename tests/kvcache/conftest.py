"""Fixtures of the kvcache tests: the real `mlps` CLI as a subprocess, and small mounted filesystems."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def mounted_fs(tmp_path):
    """mount(fstype, size, ro=False) -> a fresh mount point, unmounted afterwards (skips without privileges)."""
    mounts = []

    def mount(size="16m", ro=False):
        point = tmp_path / f"mnt{len(mounts)}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip("cannot mount a filesystem here (needs root with CAP_SYS_ADMIN)")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture
def need_mpirun():
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun (Open MPI) is not installed")
