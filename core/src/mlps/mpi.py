"""Host lists and the MPI launch line, built once here for every plugin.

The line matches the reference tool's Open MPI form: ``mpirun -n N -host h1:s1,h2:s2 --bind-to none
--map-by <node|socket> [--oversubscribe] [--allow-run-as-root] [mpi-params...]``. Every piece is a separate
argv element; nothing is ever joined into a shell string.
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Iterable, Sequence

from mlps.errors import ConfigurationError
from mlps.model import Host

# Host names: DNS labels, IPv4, or bracket-less IPv6. Anything else (spaces, ;, $, `, quotes...) is refused.
_HOST_RE = re.compile(r"^[A-Za-z0-9_.\-]+$|^[0-9A-Fa-f:]+$")


def parse_hosts(values: Iterable[str] | str | None) -> list[Host]:
    """Parse ``--hosts`` values: space- or comma-separated, each ``name`` or ``name:slots``."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    tokens: list[str] = []
    for value in values:
        for word in str(value).split():
            parts = word.split(",")
            if any(p == "" for p in parts):
                raise ConfigurationError(f"empty entry in host list {value!r}", parameter="hosts",
                                         suggestion="separate hosts with single commas or spaces: --hosts h1,h2")
            tokens += parts
    hosts = []
    for token in tokens:
        name, slots = token, None
        if token.count(":") == 1:  # host:slots (a bare IPv6 address has several colons)
            name, raw = token.split(":")
            if not raw.isdigit() or int(raw) <= 0:
                raise ConfigurationError(f"bad slot count in host {token!r}", parameter="hosts",
                                         expected="host:N with N >= 1", actual=token,
                                         suggestion="write slots as a positive integer, e.g. node1:4")
            slots = int(raw)
        if not name or not _HOST_RE.match(name):
            raise ConfigurationError(f"invalid host name {name!r}", parameter="hosts",
                                     suggestion="use plain host names or IP addresses (letters, digits, '.', '-', '_')")
        hosts.append(Host(name, slots))
    return hosts


def distribute_slots(hosts: Sequence[Host], num_processes: int) -> list[tuple[str, int]]:
    """Slots per host: given slots are honoured (their sum must cover N); otherwise N is split evenly and the
    remainder goes to the first hosts (200 ranks on 6 hosts -> 34,34,33,33,33,33)."""
    if num_processes <= 0:
        raise ConfigurationError(f"number of processes must be at least 1, got {num_processes}",
                                 parameter="num_processes")
    if not hosts:
        raise ConfigurationError("no hosts given", parameter="hosts", suggestion="pass --hosts 127.0.0.1")
    if any(h.slots is not None for h in hosts):
        if not all(h.slots is not None for h in hosts):
            raise ConfigurationError("either give slots for every host or for none", parameter="hosts",
                                     actual=",".join(map(str, hosts)),
                                     suggestion="write every host as host:N, or drop the :N parts")
        total = sum(h.slots for h in hosts)
        if total < num_processes:
            raise ConfigurationError(f"host slots add up to {total}, fewer than the {num_processes} processes asked for",
                                     parameter="hosts", expected=f">= {num_processes}", actual=total,
                                     suggestion="raise the :N slot counts or lower --num-processes")
        return [(h.name, h.slots) for h in hosts]
    base, extra = divmod(num_processes, len(hosts))
    return [(h.name, base + (1 if i < extra else 0)) for i, h in enumerate(hosts)]


def launcher_path(mpi_bin: str = "mpirun") -> str:
    """The launcher binary: ``MPI_RUN_BIN`` overrides mpirun, ``MPI_EXEC_BIN`` overrides mpiexec."""
    if mpi_bin == "mpiexec":
        return os.environ.get("MPI_EXEC_BIN") or "mpiexec"
    return os.environ.get("MPI_RUN_BIN") or mpi_bin


def mpi_prefix(hosts: Sequence[Host], num_processes: int, *, mpi_bin: str = "mpirun",
               oversubscribe: bool = False, allow_run_as_root: bool = False,
               mpi_params: Iterable[str] | str | None = ()) -> list[str]:
    """The argv prefix that launches ``num_processes`` ranks over ``hosts``."""
    slots = distribute_slots(hosts, num_processes)
    argv = [launcher_path(mpi_bin), "-n", str(num_processes), "-host", ",".join(f"{h}:{n}" for h, n in slots)]
    multi_host = len({h for h, _ in slots}) > 1
    argv += ["--bind-to", "none", "--map-by", "node" if multi_host else "socket"]
    if oversubscribe:
        argv.append("--oversubscribe")
    if allow_run_as_root:
        argv.append("--allow-run-as-root")
    if isinstance(mpi_params, str):
        mpi_params = [mpi_params]
    for chunk in mpi_params or ():
        argv += shlex.split(chunk)  # split like a shell would, but never run one
    if os.environ.get("DLIO_DROP_CACHES_TIMEOUT"):
        argv += ["-x", "DLIO_DROP_CACHES_TIMEOUT"]
    return argv
