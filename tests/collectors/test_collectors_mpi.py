"""The MPI collector under a real ``mpirun`` (Open MPI), and its failure modes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from mlps import Host
from mlps.mpi import mpi_prefix
from mlps_collectors.host import collect_local
from mlps_collectors.mpi_collect import STDOUT_MARK, collect_mpi, unique_by_hostname

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed (openmpi-bin)")


def test_module_under_mpirun_two_ranks_one_record_per_host(tmp_path):
    """The exact launch the plugin uses: the core's prefix + ``python -m mlps_collectors.mpi_collect``."""
    out = tmp_path / "cluster.json"
    argv = mpi_prefix([Host("127.0.0.1", 2)], 2, oversubscribe=True, allow_run_as_root=True)
    argv += [sys.executable, "-m", "mlps_collectors.mpi_collect", "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    assert payload["num_ranks"] == 2 and payload["collection_method"] == "mpi"
    assert len(payload["hosts"]) == 1  # two ranks, one machine, one record
    assert payload["hosts"][0]["hostname"] == collect_local().hostname
    assert payload["hosts"][0]["memory"]["total"] == collect_local().memory.total
    marked = [l for l in proc.stdout.splitlines() if l.startswith(STDOUT_MARK)]
    assert len(marked) == 1 and json.loads(marked[0][len(STDOUT_MARK):]) == payload  # only rank 0 prints


def test_collect_mpi_returns_records(tmp_path):
    records, error = collect_mpi([Host("127.0.0.1")], out_dir=tmp_path, num_processes=2, oversubscribe=True,
                                 allow_run_as_root=True, timeout=120)
    assert error is None and len(records) == 1 and records[0].reachable and records[0].cpu.num_logical_cores


def test_missing_mpirun_is_an_error_not_a_crash(tmp_path):
    records, error = collect_mpi([Host("127.0.0.1")], out_dir=tmp_path, mpi_bin="/nonexistent/bin/mpirun")
    assert records == [] and "cannot run /nonexistent/bin/mpirun" in error


def test_mpirun_refusing_root_is_reported(tmp_path, monkeypatch):
    import os

    if os.geteuid() != 0:
        pytest.skip("only root is refused by mpirun")
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT", raising=False)
    monkeypatch.delenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", raising=False)
    records, error = collect_mpi([Host("127.0.0.1")], out_dir=tmp_path, allow_run_as_root=False, timeout=60)
    assert records == [] and "MPI collection failed" in error and "root" in error


def test_rank_without_mpi4py_is_reported(tmp_path, monkeypatch):
    """A Python on the ranks that cannot import mpi4py (the system one here): named in the error."""
    system_python = shutil.which("python3", path="/usr/bin")
    probe = subprocess.run([system_python, "-c", "import mpi4py"], capture_output=True) if system_python else None
    if probe is None or probe.returncode == 0:
        pytest.skip("no Python without mpi4py available")
    # the ranks need mlps_collectors importable but not mpi4py: give them our sources on PYTHONPATH
    import mlps_collectors, mlps, os

    paths = [os.path.dirname(os.path.dirname(m.__file__)) for m in (mlps_collectors, mlps)]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    records, error = collect_mpi([Host("127.0.0.1")], out_dir=tmp_path, allow_run_as_root=True,
                                 python=system_python, mpi_params=["-x", "PYTHONPATH"], timeout=60)
    assert records == [] and "mpi4py cannot be imported" in error


def test_timeout_kills_the_job(tmp_path):
    # a launcher that hangs: `sleep` stands in for mpirun so the timeout path is exercised without MPI
    fake = tmp_path / "hanging-mpirun"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    records, error = collect_mpi([Host("127.0.0.1")], out_dir=tmp_path, mpi_bin=str(fake), timeout=1)
    assert records == [] and "timed out after 1 s" in error


def test_unique_by_hostname_keeps_first():
    assert unique_by_hostname([{"hostname": "a", "x": 1}, {"hostname": "b"}, {"hostname": "a", "x": 2}]) == \
        [{"hostname": "a", "x": 1}, {"hostname": "b"}]


def test_rank_that_dies_ends_collection_with_an_error(tmp_path):
    """Rank 1 exits before MPI starts: mpirun aborts the job and the error is returned, nothing hangs."""
    wrapper = tmp_path / "python-rank1-dies"
    wrapper.write_text(f'#!/bin/sh\n[ "$OMPI_COMM_WORLD_RANK" = 1 ] && exit 7\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    records, error = collect_mpi([Host("127.0.0.1")], out_dir=tmp_path, num_processes=2, oversubscribe=True,
                                 allow_run_as_root=True, python=str(wrapper), timeout=60)
    assert records == [] and error.startswith("MPI collection")
