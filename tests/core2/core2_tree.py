"""Builds results trees in the core's layout for core-2 tests (a uniquely named helper module instead of a
conftest.py: another directory's tests import names from their own ``conftest`` module, which a second
conftest.py would shadow). Test modules import the fixture: ``from core2_tree import bare_pm``."""

from __future__ import annotations

import json
from pathlib import Path

import pluggy
import pytest

import mlps.hookspecs


@pytest.fixture
def bare_pm():
    """A plugin manager with the mlps hookspecs and nothing registered (no entry points)."""
    pm = pluggy.PluginManager("mlps")
    pm.add_hookspecs(mlps.hookspecs)
    return pm


def write_run(root: Path, benchmark="training", model="unet3d", command="run", ts="20260101_120000",
              accelerator="b200", metrics=None, exit_status="success", **extra) -> Path:
    """Write one run leaf in the layout the core uses; returns the leaf directory."""
    leaf = Path(root) / benchmark / model / command / ts
    leaf.mkdir(parents=True, exist_ok=True)
    metadata = {"benchmark_type": benchmark, "model": model, "command": command, "run_datetime": ts,
                "num_processes": 8, "accelerator": accelerator, "parameters": extra.pop("parameters", {}),
                "override_parameters": extra.pop("override_parameters", {}),
                "metrics": {"throughput_mb_per_second": 100.0} if metrics is None else metrics,
                "verification": None, "verification_issues": [], "exit_status": exit_status, "args": {},
                **extra}
    (leaf / f"{benchmark}_{ts}_metadata.json").write_text(json.dumps(metadata))
    return leaf
