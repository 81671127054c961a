"""A real OpenSSH server on a free loopback port, with a host key, client key and config generated here.

Used by the collector tests (session fixture) and by benchmarks/collectors_bench.py. Needs root (sshd's
privilege separation directory /run/sshd), ``openssh-server`` and ``openssh-client``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd")


def sshd_binary() -> str | None:
    return next((p for p in SSHD_CANDIDATES if os.access(p, os.X_OK)), shutil.which("sshd"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    return free_port()


@dataclass
class LoopbackSSHD:
    port: int
    client_key: Path
    client_config: Path  # an ``ssh -F`` file: Host 127.0.0.1 with this port and key
    pid_file: Path
    process: subprocess.Popen

    def ssh_options(self) -> list[str]:
        """Options for ssh argv when not using ``client_config``."""
        return ["-p", str(self.port), "-i", str(self.client_key), "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL)


def start_sshd(workdir: Path, *, alias: str = "mlps-loopback") -> LoopbackSSHD:
    """Start sshd in the foreground (-D) as our own child; returns when it accepts connections."""
    binary = sshd_binary()
    if binary is None:
        raise RuntimeError("sshd not found (apt-get install openssh-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    host_key, client_key = workdir / "host_ed25519", workdir / "client_ed25519"
    for key in (host_key, client_key):
        if not key.exists():
            _keygen(key)
    port = free_port()
    pid_file = workdir / "sshd.pid"
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {client_key}.pub\nPidFile {pid_file}\nStrictModes no\nUsePAM no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin yes\nMaxStartups 64:30:128\nMaxSessions 64\nLogLevel ERROR\n")
    client_config = workdir / "ssh_config"
    # the alias lets a test name a non-local host that still lands on this sshd
    client_config.write_text(
        f"Host 127.0.0.1 {alias}\n  HostName 127.0.0.1\n  Port {port}\n  IdentityFile {client_key}\n"
        "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=(workdir / "sshd.log").open("w"))
    server = LoopbackSSHD(port, client_key, client_config, pid_file, process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {(workdir / 'sshd.log').read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("sshd did not start listening within 15 s")
