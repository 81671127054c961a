"""Fixtures of the checkpointing tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory this process cannot create files in: chmod 500 for a normal user; as root (which ignores
    modes) a path under sysfs, where creating anything fails with EPERM."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    candidates = [locked / "ckpt", Path("/sys/mlps-checkpointing-test")]
    try:
        for candidate in candidates:
            try:
                candidate.mkdir(parents=True)
            except OSError:
                yield candidate
                return
            candidate.rmdir()
        pytest.skip("no unwritable directory available on this machine")
    finally:
        locked.chmod(0o700)
