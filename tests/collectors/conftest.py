"""Fixtures for the collector tests: captured /proc files and one real loopback sshd per session."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # loopback_sshd lives beside the tests (the benchmark script uses it too)

from loopback_sshd import closed_port, sshd_binary, start_sshd  # noqa: E402

from mlps_collectors import host as H  # noqa: E402

DATA = HERE / "data"
#: captured file name in tests/collectors/data -> the path it was read from on this machine
CAPTURED = {"meminfo": H.MEMINFO, "cpuinfo": H.CPUINFO, "diskstats": H.DISKSTATS, "net_dev": H.NET_DEV,
            "version": H.VERSION, "loadavg": H.LOADAVG, "uptime": H.UPTIME, "os-release": H.OS_RELEASE,
            "vmstat": H.VMSTAT, "mounts": H.MOUNTS, "cgroups": H.CGROUPS}


@pytest.fixture
def captured_texts() -> dict[str, str]:
    """The files captured from the build machine, keyed by the path a collector reads."""
    texts = {path: (DATA / name).read_text() for name, path in CAPTURED.items()}
    texts[H.HOSTNAME] = "captured-host\n"
    texts[H.ARCH] = "x86_64"
    return texts


@pytest.fixture(scope="session")
def loopback_sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1:<free port>, its client key and an ``ssh -F`` config (alias mlps-loopback)."""
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd needs root (privilege separation directory /run/sshd)")
    if sshd_binary() is None or shutil.which("ssh") is None:
        pytest.skip("openssh-server / openssh-client not installed (apt-get install openssh-server)")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def ssh_config_options(loopback_sshd) -> list[str]:
    return ["-F", str(loopback_sshd.client_config)]


@pytest.fixture
def unused_port() -> int:
    return closed_port()
