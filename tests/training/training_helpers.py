"""Helpers of the training tests: the real `mlps` CLI as a subprocess, tiny DLIO parameters, metadata reading."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MLPS = Path(sys.executable).parent / "mlps"
DLIO = Path(sys.executable).parent / "dlio_benchmark"

#: unet3d-shaped but tiny: 8 npz files of 64 KiB (the real records are ~140 MiB).
TINY_DATASET = ["dataset.num_files_train=8", "dataset.record_length=65536", "dataset.record_length_stdev=0",
                "dataset.record_length_resize=65536"]
#: a short training: 2 epochs, 4 steps per rank per epoch with 2 ranks.
TINY_TRAINING = ["reader.batch_size=1", "train.epochs=2", "train.computation_time=0.01", "reader.read_threads=1"]
MPI_FLAGS = ["--allow-run-as-root", "--oversubscribe"]

needs_dlio = pytest.mark.skipif(not DLIO.exists() or shutil.which("mpirun") is None,
                                reason="DLIO (dlio_benchmark) or mpirun is not installed")


def mlps(*args, timeout=240) -> subprocess.CompletedProcess:
    """Run the installed `mlps` with only this plugin loaded (other plugins cannot change the outcome)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPS_")}
    env["MLPS_LOAD_PLUGINS"] = "training"
    return subprocess.run([str(MLPS), "training", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def metadata_of(results_dir: Path, command: str, model: str = "unet3d") -> dict:
    """The metadata of the newest leaf of <results>/training/<model>/<command>/."""
    leaves = sorted((results_dir / "training" / model / command).iterdir())
    files = list(leaves[-1].glob("training_*_metadata.json"))
    assert len(files) == 1, f"expected one metadata file in {leaves[-1]}"
    return json.loads(files[0].read_text())
