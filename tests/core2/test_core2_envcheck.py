"""Fail-fast environment validation: real PATH lookups, real imports, a real ssh client against a closed port."""

from __future__ import annotations

import os
import socket
import sys
import time

import pytest

from mlps import Requirement
from mlps.envcheck import (check_requirements, check_ssh, detect_os_family, is_local_host, raise_if_problems,
                           system_install_hint)
from mlps.errors import DependencyError


def _closed_port() -> int:
    with socket.socket() as sock:  # bind, read the port, close: nothing listens there afterwards
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_missing_binary_with_os_hint():
    req = Requirement("executable", "mlps-no-such-binary-xyz", install={"apt": "xyz-tools", "dnf": "xyz",
                                                                        "pip": "xyz"}, reason="the benchmark")
    (problem,) = check_requirements([req, req])  # duplicates are checked once
    assert problem.kind == "missing_executable" and "not found on PATH" in problem.what
    assert "the benchmark" in problem.where
    family = detect_os_family()
    if family == "debian":
        assert "apt-get install -y xyz-tools" in problem.fix
    elif family == "rhel":
        assert "install -y xyz" in problem.fix
    assert f"{sys.executable} -m pip install 'xyz'" in problem.fix


def test_present_things_pass(tmp_path):
    reqs = [Requirement("executable", "sh"), Requirement("module", "json"), Requirement("module", "os.path"),
            Requirement("writable", str(tmp_path)), Requirement("writable", str(tmp_path / "new" / "dir")),
            Requirement("disk_space", str(tmp_path), amount=1024), Requirement("ssh", "localhost"),
            Requirement("ssh", "127.0.0.1:8"), Requirement("ssh", socket.gethostname())]
    assert check_requirements(reqs) == []


def test_missing_module_and_not_writable_and_disk(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    reqs = [Requirement("module", "mlps_no_such_module.sub", install={"pip": "mlps-nothing"}),
            Requirement("writable", str(blocker)),
            Requirement("disk_space", str(tmp_path), amount=1 << 60),
            Requirement("teleport", "x")]
    problems = {p.kind: p for p in check_requirements(reqs)}
    assert set(problems) == {"missing_module", "not_writable", "disk_space", "unknown_requirement"}
    assert "-m pip install 'mlps-nothing'" in problems["missing_module"].fix
    assert "not a directory" in problems["not_writable"].what
    assert "short by" in problems["disk_space"].what and "df -h" in problems["disk_space"].fix


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_dir_is_not_writable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    (problem,) = check_requirements([Requirement("writable", str(ro))])
    assert problem.kind == "not_writable"


def test_mpi_requirement():
    assert check_requirements([Requirement("mpi", "mpirun")]) == []
    (problem,) = check_requirements([Requirement("mpi", "mpirun-missing-xyz")])
    assert problem.kind == "missing_mpi"
    if detect_os_family() == "debian":
        assert "apt-get install -y openmpi-bin libopenmpi-dev" in problem.fix


def test_unreachable_ssh_host_real_client_closed_port():
    port = _closed_port()
    start = time.monotonic()
    problem = check_ssh("127.0.0.1", ssh_options=["-p", str(port)], timeout=3)
    assert time.monotonic() - start < 15
    assert problem is not None and problem.kind == "ssh_unreachable"
    assert "Connection refused" in problem.what or "port" in problem.what
    assert "BatchMode=yes" in problem.fix


def test_ssh_requirement_for_non_local_host_uses_real_ssh():
    # 192.0.2.1 (TEST-NET-1) is never local; HostName/Port aim the real client at a closed local port so the
    # test needs no network.
    port = _closed_port()
    problems = check_requirements([Requirement("ssh", "192.0.2.1"), Requirement("ssh", "localhost")],
                                  ssh_options=["-o", "HostName=127.0.0.1", "-p", str(port)])
    assert [p.where for p in problems] == ["ssh 192.0.2.1"]
    assert not is_local_host("192.0.2.1") and is_local_host("127.0.0.1:4") and is_local_host("user@localhost")


def test_raise_if_problems_lists_everything():
    raise_if_problems([])
    problems = check_requirements([Requirement("executable", "mlps-missing-a"),
                                   Requirement("executable", "mlps-missing-b", hint="see docs/install.md")])
    with pytest.raises(DependencyError) as err:
        raise_if_problems(problems)
    exc = err.value
    assert exc.exit_code == 4 and "2 problems" in exc.message
    assert "1) executable mlps-missing-a" in exc.suggestion and "2) executable mlps-missing-b" in exc.suggestion
    assert "see docs/install.md" in exc.suggestion and "--skip-validation" in exc.suggestion
    assert len(exc.details["problems"]) == 2


def test_install_hints_per_family():
    packages = {"apt": "openmpi-bin", "dnf": "openmpi"}
    assert system_install_hint(packages, "debian").endswith("apt-get install -y openmpi-bin")
    assert system_install_hint(packages, "rhel").endswith("install -y openmpi")
    assert system_install_hint(packages, "other") is None


def test_writable_fails_where_files_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    problems = check_requirements([Requirement("writable", str(blocker / "sub")),
                                   Requirement("writable", "/proc/1/mlps-results")])  # even root cannot
    assert [p.kind for p in problems] == ["not_writable", "not_writable"]
    assert all("--results-dir" in p.fix for p in problems)


def test_core_requirements_and_launcher_bypass(tmp_path, monkeypatch):
    from mlps import Host, Run
    from mlps.envcheck import core_requirements, ssh_check_bypassed

    run = Run(benchmark="x", command="run", options={"mpi_bin": "mpirun"}, results_root=tmp_path,
              hosts=[Host("127.0.0.1"), Host("node7", 4)])
    kinds = [(r.kind, r.target) for r in core_requirements(run, uses_mpi=True)]
    assert kinds == [("writable", str(tmp_path)), ("mpi", "mpirun"), ("ssh", "127.0.0.1"), ("ssh", "node7")]
    assert [r.kind for r in core_requirements(run)] == ["writable"]
    assert ssh_check_bypassed("srun", {"SLURM_JOB_ID": "12"}) and ssh_check_bypassed("mpiexec", {"PALS_RANKID": "0"})
    assert not ssh_check_bypassed("mpirun", {"SLURM_JOB_ID": "12"})
    monkeypatch.setenv("MPI_RUN_BIN", "/nonexistent/mpirun")
    (problem,) = check_requirements([Requirement("mpi", "mpirun")])
    assert "/nonexistent/mpirun" in problem.what
