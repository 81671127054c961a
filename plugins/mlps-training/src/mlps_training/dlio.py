"""Where DLIO is, how to install it, and the DLIO command line.

The line follows the reference tool: ``<mpi prefix> <dlio_benchmark> workload=<name> ++hydra.run.dir=<run dir>
++hydra.output_subdir=dlio_config ++workload.<key>=<value>... --config-path=<our configs>``. We pass
``--config-path`` where the reference passes ``--config-dir``: with DLIO 2.0.0 (hydra 1.3) ``--config-dir``
appends our directory *after* DLIO's bundled configs, so ``workload=unet3d_a100`` would silently load DLIO's own
file instead of ours. ``--config-path`` makes our ``config.yaml`` the primary config (verified by running it).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from mlps import Requirement

from mlps_training.params import hydra_overrides
from mlps_training.workloads import CONFIG_DIR

BINARY = "dlio_benchmark"
HYDRA_OUTPUT_SUBDIR = "dlio_config"

#: The install recipe verified on this machine kind (PyPI + Debian only). DLIO 2.0.0's own requirements pull a
#: DALI stub that downloads from a non-PyPI index and fails, so DLIO goes in with --no-deps and its real runtime
#: needs are listed by hand (it imports TensorFlow at start-up; pydftracer 2.x crashes it at import).
APT_PACKAGES = "openmpi-bin libopenmpi-dev"
PIP_DEPS = ("tensorflow-cpu torch==2.13.0 hydra-core omegaconf h5py pandas psutil Pillow PyYAML "
            "pydftracer==1.0.2 mpi4py")
INSTALL_HINT = (f"install DLIO 2.0.0 (PyPI's release; its declared dependencies do not install from PyPI):\n"
                f"  apt-get install -y {APT_PACKAGES}\n"
                f"  {{python}} -m pip install --no-deps dlio-benchmark==2.0.0\n"
                f"  {{python}} -m pip install {PIP_DEPS}\n"
                f"or pass --dlio-bin-path to the directory of an existing dlio_benchmark")


def resolve_binary(dlio_bin_path) -> str:
    """The dlio_benchmark executable: ``--dlio-bin-path`` (a directory or the file itself), else beside the
    running Python (the same venv), else on PATH. Falls back to the bare name so ``--what-if`` works without
    DLIO installed."""
    if dlio_bin_path:
        path = Path(dlio_bin_path).expanduser()
        return str(path / BINARY if path.is_dir() or not path.name.startswith(BINARY) else path)
    for folder in (Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else None,
                   Path(sys.executable).parent):
        if folder is not None and (folder / BINARY).is_file() and os.access(folder / BINARY, os.X_OK):
            return str(folder / BINARY)
    return shutil.which(BINARY) or BINARY


def command_line(dlio_binary: str, workload: str, run_dir, overrides: dict[str, object]) -> list[str]:
    """The DLIO part of the launch line (the MPI prefix goes in front)."""
    return [dlio_binary, f"workload={workload}", f"++hydra.run.dir={run_dir}",
            f"++hydra.output_subdir={HYDRA_OUTPUT_SUBDIR}", *hydra_overrides(overrides),
            f"--config-path={CONFIG_DIR}"]


def requirement(dlio_binary: str) -> Requirement:
    # no install={"pip": ...}: the recipe is three commands (DLIO goes in with --no-deps), so it is all in hint
    return Requirement(kind="executable", target=dlio_binary, hint=INSTALL_HINT.format(python=sys.executable),
                       reason="the DLIO training emulation")
