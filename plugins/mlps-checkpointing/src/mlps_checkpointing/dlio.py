"""The reference tool's DLIO command line for a checkpointing run (``--engine dlio``).

Only useful with a DLIO that has the checkpoint write-then-read workflow (the MLCommons fork); PyPI's
dlio-benchmark 2.0.0 does not, which is why the native engine is the default.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def dlio_binary(dlio_bin_path=None) -> str:
    """``<dlio-bin-path>/dlio_benchmark``, else the one beside this Python, else whatever PATH finds."""
    if dlio_bin_path:
        return str(Path(dlio_bin_path) / "dlio_benchmark")
    beside = Path(sys.executable).parent / "dlio_benchmark"
    if beside.exists():
        return str(beside)
    return shutil.which("dlio_benchmark") or "dlio_benchmark"


def dlio_overrides(model, num_processes: int, num_write: int, num_read: int, folder: str | None,
                   user_params: dict[str, str]) -> list[str]:
    """``++workload.<key>=<value>`` arguments: tool-injected first, then the user's ``--params``."""
    injected: dict[str, object] = {}
    if num_processes < model.closed_processes:
        injected["checkpoint.mode"] = "subset"
        injected["model.parallelism.data"] = model.closed_data_parallelism
    injected["checkpoint.num_checkpoints_read"] = num_read
    injected["checkpoint.num_checkpoints_write"] = num_write
    if folder:
        injected["checkpoint.checkpoint_folder"] = os.path.abspath(folder)
    for key, value in user_params.items():
        injected[key] = value  # the user's value wins over an injected one
    return [f"++workload.{key}={value}" for key, value in injected.items()]


def dlio_argv(model, num_processes: int, num_write: int, num_read: int, folder: str | None, run_dir,
              user_params: dict[str, str], dlio_bin_path=None) -> list[str]:
    return [dlio_binary(dlio_bin_path), f"workload={model.workload}", f"++hydra.run.dir={run_dir}",
            "++hydra.output_subdir=dlio_config",
            *dlio_overrides(model, num_processes, num_write, num_read, folder, user_params),
            f"--config-dir={CONFIG_DIR}"]
