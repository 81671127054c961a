"""Session fixtures of the training tests: one tiny real DLIO dataset generated once per session (DLIO and
TensorFlow take seconds to import per rank), and one real 2-rank training on it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from training_helpers import DLIO, MPI_FLAGS, TINY_DATASET, TINY_TRAINING, mlps  # noqa: E402


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A real DLIO datagen through `mlps training datagen`, 2 ranks; returns (data_dir, results_dir, process)."""
    if not DLIO.exists() or shutil.which("mpirun") is None:
        pytest.skip("DLIO (dlio_benchmark) or mpirun is not installed")
    root = tmp_path_factory.mktemp("training")
    data, results = root / "data", root / "results"
    proc = mlps("datagen", "--model", "unet3d", "--num-processes", 2, "--data-dir", data, "--results-dir", results,
                *MPI_FLAGS, "--allow-invalid-params", "--params", *TINY_DATASET)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return data, results, proc


@pytest.fixture(scope="session")
def tiny_training(tiny_dataset):
    """A real 2-rank DLIO training on the tiny dataset through `mlps training run`."""
    data, results, _ = tiny_dataset
    proc = mlps("run", "--model", "unet3d", "--accelerator-type", "h100", "--num-accelerators", 2,
                "--client-host-memory-in-gb", 0.0001, "--data-dir", data, "--results-dir", results, *MPI_FLAGS,
                "--allow-invalid-params", "--params", *TINY_DATASET, *TINY_TRAINING)
    return data, results, proc
