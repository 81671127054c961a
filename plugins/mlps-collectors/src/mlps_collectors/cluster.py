"""Cluster view: choose the collection method for a run, aggregate host records, flag inconsistent nodes.

Method order: every host is this machine -> ``local`` (read directly); otherwise ``mpi`` when exec-type is
mpi and the MPI collector works, else ``ssh`` (partial results kept, each failed host named), else ``args``
(one record per host built from ``--client-host-memory-in-gb`` where the command has that option).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from mlps_collectors.host import collect_local, local_hostnames, now_iso
from mlps_collectors.records import ClusterInfo, HostInfo, HostMemory

#: nodes whose memory or core counts differ by more than this factor are inconsistent
CONSISTENCY_RATIO = 1.5
DEFAULT_TIMEOUT = 60


def unique_hosts(hosts: Sequence[HostInfo]) -> list[HostInfo]:
    """One record per machine (by kernel host name); failed hosts are kept under their requested name."""
    seen: dict[str, HostInfo] = {}
    for host in hosts:
        key = host.hostname if host.reachable else f"unreachable:{host.address or host.hostname}"
        seen.setdefault(key, host)
    return list(seen.values())


def consistency_issues(hosts: Sequence[HostInfo], ratio: float = CONSISTENCY_RATIO) -> list[str]:
    """Messages for memory or core counts differing by more than ``ratio``, and for differing kernels/OS."""
    up = [h for h in hosts if h.reachable]
    if len(up) < 2:
        return []
    issues = []
    memory = {h.hostname: h.memory.total for h in up}
    low, high = min(memory.values()), max(memory.values())
    if low > 0 and high / low > ratio:
        issues.append(f"host memory differs by {high / low:.2f}x (more than {ratio}x): "
                      + ", ".join(f"{n}={v / 1024**3:.1f} GiB" for n, v in memory.items()))
    cores = {h.hostname: h.cpu.num_physical_cores for h in up if h.cpu and h.cpu.num_physical_cores}
    if len(cores) >= 2 and max(cores.values()) / min(cores.values()) > ratio:
        issues.append(f"core counts differ by {max(cores.values()) / min(cores.values()):.2f}x "
                      f"(more than {ratio}x): " + ", ".join(f"{n}={v}" for n, v in cores.items()))
    kernels = {h.hostname: h.system.kernel_version for h in up if h.system and h.system.kernel_version}
    if len(set(kernels.values())) > 1:
        issues.append("different kernel versions: " + ", ".join(f"{n}={v}" for n, v in kernels.items()))
    systems = {h.hostname: _os_name(h) for h in up if h.system and h.system.os_release}
    if len(set(systems.values())) > 1:
        issues.append("different operating systems: " + ", ".join(f"{n}={v}" for n, v in systems.items()))
    return issues


def _os_name(host: HostInfo) -> str:
    release = host.system.os_release
    return f"{release.get('ID', '?')} {release.get('VERSION_ID', '')}".strip()


def aggregate(hosts: Sequence[HostInfo], method: str, *, phase: str | None = None,
              errors: Sequence[str] = ()) -> ClusterInfo:
    """Totals over the hosts that answered, plus consistency issues and every error met on the way."""
    hosts = unique_hosts(hosts)
    up = [h for h in hosts if h.reachable]
    memory = [h.memory.total for h in up]
    errors = list(errors) + [f"{h.address or h.hostname}: {msg}" for h in hosts if not h.reachable
                             for msg in (h.errors.values() or ["no data"])]
    return ClusterInfo(hosts=list(hosts), num_hosts=len(hosts), total_memory_bytes=sum(memory),
                       min_memory_bytes=min(memory, default=0), max_memory_bytes=max(memory, default=0),
                       total_cores=sum(h.cpu.num_physical_cores for h in up if h.cpu),
                       total_logical_cores=sum(h.cpu.num_logical_cores for h in up if h.cpu),
                       collection_method=method, collection_timestamp=now_iso(), phase=phase,
                       host_consistency_issues=consistency_issues(up), errors=errors)


def hosts_from_args(names: Sequence[str], memory_gb: float) -> list[HostInfo]:
    """The last resort: a record per host carrying only the memory the user declared."""
    total = int(float(memory_gb) * 1024**3)
    return [HostInfo(hostname=name, address=name, memory=HostMemory(total=total), collection_timestamp=now_iso(),
                     errors={"args": "memory from --client-host-memory-in-gb; nothing was collected"})
            for name in names]


def host_names(run) -> list[str]:
    return list(dict.fromkeys(h.name for h in (run.hosts or []))) or ["127.0.0.1"]


def all_local(names: Sequence[str]) -> bool:
    local = local_hostnames()
    return all(name.lower() in local for name in names)


def collect_cluster(run, phase: str | None = None, *, force_remote: bool = False,
                    ssh_options: Sequence[str] = ()) -> ClusterInfo:
    """The cluster record for ``run`` (hosts, options). ``force_remote`` treats local names as remote (tests)."""
    from mlps_collectors.ssh import MAX_PARALLEL, collect_ssh

    names = host_names(run)
    timeout = float(run.option("cluster_collection_timeout", DEFAULT_TIMEOUT))
    if all_local(names) and not force_remote:
        return aggregate([collect_local()], "local", phase=phase)
    errors: list[str] = []
    if run.option("exec_type", "mpi") == "mpi":
        from mlps_collectors.mpi_collect import collect_mpi

        with tempfile.TemporaryDirectory(prefix="mlps-collect-") as staging:
            records, error = collect_mpi(run.hosts or names_as_hosts(names), out_dir=Path(staging),
                                         timeout=timeout, mpi_bin=run.option("mpi_bin", "mpirun"),
                                         oversubscribe=bool(run.option("oversubscribe")),
                                         allow_run_as_root=bool(run.option("allow_run_as_root")),
                                         mpi_params=run.option("mpi_params", ()))
        if records:
            return aggregate(records, "mpi", phase=phase)
        errors.append(error or "MPI collection returned no hosts")
    # hosts go in batches of MAX_PARALLEL: give each batch its share of the budget (never under 10 s)
    per_host = max(10.0, timeout / -(-len(names) // MAX_PARALLEL))
    records = collect_ssh(names, timeout=min(timeout, per_host), force_ssh=force_remote, ssh_options=ssh_options)
    if any(r.reachable for r in records):
        return aggregate(records, "ssh", phase=phase, errors=errors)
    memory_gb = run.option("client_host_memory_in_gb")
    if memory_gb:
        failed = aggregate(records, "ssh").errors
        return aggregate(hosts_from_args(names, memory_gb), "args", phase=phase, errors=errors + failed)
    return aggregate(records, "ssh", phase=phase, errors=errors)


def names_as_hosts(names: Sequence[str]):
    from mlps import Host

    return [Host(name) for name in names]
