"""Collect host records over SSH, in parallel, with a fixed remote program.

The remote side runs a constant POSIX-sh program that prints each file behind a marker line; nothing typed
by a user reaches a shell. Host names are validated and passed as their own argv element after ``--``.
Names of this machine are read directly (no SSH) unless ``force_ssh`` is set (tests use it to exercise the
SSH path on loopback).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

from mlps import ConfigurationError
from mlps_collectors.host import (ARCH, SAMPLE_SOURCES, SNAPSHOT_SOURCES, build_host, build_sample,
                                  local_hostnames, read_local)
from mlps_collectors.records import HostInfo

_HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$|^[0-9A-Fa-f:]+$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9_./\-]+$")
FILE_MARK = "@@MLPS-FILE "
MISSING_MARK = "@@MLPS-MISSING "
SAMPLE_END = "@@MLPS-SAMPLE-END"
#: extra ``ssh -F <file>`` configuration (ports, keys, users) for every collector connection
SSH_CONFIG_ENV = "MLPS_COLLECTORS_SSH_CONFIG"
MAX_PARALLEL = 16


def validate_host(name: str) -> str:
    """Refuse anything but a plain host name or IP address (no spaces, quotes, ``;``, leading ``-``)."""
    if not isinstance(name, str) or not _HOST_RE.match(name) or len(name) > 253:
        raise ConfigurationError(f"invalid host name {name!r}", parameter="hosts",
                                 suggestion="use plain host names or IP addresses (letters, digits, '.', '-', '_')")
    return name


def _dump(sources: Sequence[str]) -> str:
    """sh code printing every source behind a marker. Built only from our own constant paths."""
    paths = [s for s in sources if s != ARCH]
    if not all(_PATH_RE.match(p) for p in paths):
        raise ValueError("collector source paths must be plain absolute paths")
    program = (f"for f in {' '.join(paths)}; do if [ -r \"$f\" ]; then echo \"{FILE_MARK}$f\"; cat \"$f\"; echo; "
               f"else echo \"{MISSING_MARK}$f\"; fi; done")
    if ARCH in sources:
        program += f"; echo \"{FILE_MARK}{ARCH}\"; uname -m"
    return program


def remote_program(sources: Sequence[str]) -> str:
    """The fixed remote command of one collection."""
    return "sh -c " + shlex.quote(_dump(sources))  # the remote login shell may not be POSIX (csh, fish)


def remote_sampling_program(sources: Sequence[str], interval: float, count: int) -> str:
    """A remote loop printing ``count`` samples, ``interval`` seconds apart, each closed by ``SAMPLE_END``.
    Only numbers we formatted ourselves are interpolated."""
    loop = (f"i=0; while [ $i -lt {int(count)} ]; do {_dump(sources)}; echo \"{SAMPLE_END}\"; i=$((i+1)); "
            f"sleep {float(interval):.3f}; done")
    return "sh -c " + shlex.quote(loop)


def split_output(output: str) -> tuple[dict[str, str], dict[str, str]]:
    """The remote program's output -> ``(texts, errors)`` keyed by path."""
    texts: dict[str, str] = {}
    errors: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []

    def flush():
        if current is not None:
            texts[current] = "\n".join(lines).rstrip("\n") + "\n"

    for line in output.splitlines():
        if line.startswith(FILE_MARK):
            flush()
            current, lines = line[len(FILE_MARK):].strip(), []
        elif line.startswith(MISSING_MARK):
            flush()
            current, lines = None, []
            errors[line[len(MISSING_MARK):].strip()] = "unreadable on the remote host"
        elif current is not None:
            lines.append(line)
    flush()
    return texts, errors


#: Key exchanges tried first for collection connections. OpenSSH 9's default, the post-quantum hybrid
#: sntrup761x25519, costs about 60 ms of CPU per connection on each side (measured here: client CPU 74 ms -> 10 ms),
#: which dominates collecting from many hosts; what travels is /proc statistics. Every name here exists since
#: OpenSSH 7.4. ``MLPS_COLLECTORS_SSH_KEX=default`` keeps ssh's own choice.
FAST_KEX = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group14-sha256"
SSH_KEX_ENV = "MLPS_COLLECTORS_SSH_KEX"


def ssh_argv(host: str, program: str, *, connect_timeout: int = 10, ssh_bin: str = "ssh",
             ssh_options: Sequence[str] = ()) -> list[str]:
    """``ssh -o BatchMode=yes -o ConnectTimeout=N [...] -- host <program>`` as an argv list."""
    argv = [ssh_bin, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(connect_timeout)}",
            "-o", "StrictHostKeyChecking=accept-new", "-o", "ForwardX11=no"]
    kex = os.environ.get(SSH_KEX_ENV, FAST_KEX)
    if kex and kex != "default":
        argv += ["-o", f"KexAlgorithms={kex}"]
    config = os.environ.get(SSH_CONFIG_ENV)
    if config:
        argv += ["-F", config]
    return argv + list(ssh_options) + ["--", validate_host(host), program]


def _run_remote(host: str, sources: Sequence[str], timeout: float, connect_timeout: int, ssh_bin: str,
                ssh_options: Sequence[str]) -> tuple[dict[str, str], dict[str, str], str | None]:
    """``(texts, errors, failure)``; ``failure`` names why the host gave nothing (unreachable, timeout...)."""
    argv = ssh_argv(host, remote_program(sources), connect_timeout=connect_timeout, ssh_bin=ssh_bin,
                    ssh_options=ssh_options)
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              errors="replace")
    except subprocess.TimeoutExpired:
        return {}, {}, f"ssh to {host} timed out after {timeout:g} s"
    except OSError as exc:
        return {}, {}, f"cannot run {ssh_bin}: {exc.strerror or exc}"
    texts, errors = split_output(proc.stdout)
    if proc.returncode != 0 and not texts:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return {}, {}, f"ssh to {host} failed (exit {proc.returncode}): {last}"
    return texts, errors, None


def is_local(host: str, local_names: Iterable[str] | None = None) -> bool:
    return host.lower() in (set(local_names) if local_names is not None else local_hostnames())


def collect_host(host: str, *, timeout: float = 60, connect_timeout: int | None = None, force_ssh: bool = False,
                 ssh_bin: str = "ssh", ssh_options: Sequence[str] = (), sample: bool = False):
    """One host's record (or time-series sample dict when ``sample``). Never raises for a bad host; a host
    that gave nothing has an ``ssh`` entry in its errors."""
    sources = SAMPLE_SOURCES if sample else SNAPSHOT_SOURCES
    build = build_sample if sample else build_host
    if not force_ssh and is_local(host):
        texts, errors = read_local(sources)
        failure = None
    else:
        texts, errors, failure = _run_remote(host, sources, timeout, connect_timeout or connect_timeout_for(timeout),
                                             ssh_bin, ssh_options)
    if failure:
        if sample:
            return {"hostname": host, "errors": {"ssh": failure}}
        return HostInfo(hostname=host, address=host, errors={"ssh": failure})
    result = build(texts, errors)
    if not sample:
        result.address = host
    return result


def connect_timeout_for(timeout: float) -> int:
    """SSH's connect timeout: a sixth of the whole budget, at least 5 s (as the reference tool does)."""
    return max(5, int(timeout // 6))


def collect_ssh(hosts: Sequence[str], *, timeout: float = 60, connect_timeout: int | None = None,
                force_ssh: bool = False, ssh_bin: str = "ssh", ssh_options: Sequence[str] = (),
                sample: bool = False, max_parallel: int = MAX_PARALLEL) -> list:
    """Records (or samples) for ``hosts``, in the given order, collected in parallel."""
    for host in hosts:
        validate_host(host)
    if not hosts:
        return []

    def one(host):
        return collect_host(host, timeout=timeout, connect_timeout=connect_timeout, force_ssh=force_ssh,
                            ssh_bin=ssh_bin, ssh_options=ssh_options, sample=sample)

    with ThreadPoolExecutor(max_workers=min(max_parallel, len(hosts)), thread_name_prefix="mlps-ssh") as pool:
        return list(pool.map(one, hosts))


class RemoteSampleStream:
    """One long-lived ``ssh host <sampling loop>`` per remote host: a connection per run, not per sample.

    A reader thread turns each block of output into a sample and hands it to ``on_sample``. :meth:`stop` ends
    the ssh process at once; the remote loop dies with its session (its next write fails).
    """

    def __init__(self, host: str, interval: float, count: int, on_sample, *, connect_timeout: int = 10,
                 ssh_bin: str = "ssh", ssh_options: Sequence[str] = ()):
        self.host = validate_host(host)
        self.on_sample = on_sample
        self.argv = ssh_argv(host, remote_sampling_program(SAMPLE_SOURCES, interval, count),
                             connect_timeout=connect_timeout, ssh_bin=ssh_bin, ssh_options=ssh_options)
        self.samples = 0
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> "RemoteSampleStream":
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, errors="replace")
        except OSError as exc:
            self.on_sample({"hostname": self.host, "errors": {"ssh": f"cannot run {self.argv[0]}: {exc.strerror}"}})
            return self
        self._reader = threading.Thread(target=self._read, name=f"mlps-ts-{self.host}", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        block: list[str] = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == SAMPLE_END:
                texts, errors = split_output("".join(block))
                self.on_sample(build_sample(texts, errors))
                self.samples += 1
                block = []
            else:
                block.append(line)
        code = self.proc.wait()
        if self.samples == 0:
            last = (self.proc.stderr.read().strip().splitlines() or [f"exit status {code}"])[-1]
            why = ("stopped before the first sample arrived" if code == -15
                   else f"ssh to {self.host} failed (exit {code}): {last}")
            self.on_sample({"hostname": self.host, "errors": {"ssh": why}})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        if self._reader is not None:
            self._reader.join(timeout=10)
