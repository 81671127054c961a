"""Typed records of cluster information, each with a lossless ``to_dict``/``from_dict`` round trip.

Every record holds only JSON-native values (str, int, float, bool, None, lists and dicts of them), so
``Record.from_dict(json.loads(json.dumps(r.to_dict()))) == r`` holds for every record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


class _Record:
    """``to_dict``/``from_dict`` for flat records; nested records override ``_nested``."""

    _nested: ClassVar[dict[str, tuple[type, bool]]] = {}  # field -> (record type, is a list of them)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # deep: nested records become dicts, containers are copied

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in (data or {}).items():
            if key not in names:
                continue  # tolerate keys written by a newer version
            nested = cls._nested.get(key)
            if nested and value is not None:
                kind, many = nested
                value = [kind.from_dict(v) for v in value] if many else kind.from_dict(value)
            elif isinstance(value, (dict, list)):
                value = _copy(value)
            kwargs[key] = value
        return cls(**kwargs)


def _copy(value):
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass
class HostMemory(_Record):
    """Memory in bytes, from /proc/meminfo (used = total - free - buffers - cached)."""

    total: int = 0
    available: int | None = None
    free: int | None = None
    used: int | None = None
    active: int | None = None
    inactive: int | None = None
    buffers: int | None = None
    cached: int | None = None
    shared: int | None = None


@dataclass
class CPUInfo(_Record):
    num_physical_cores: int = 0
    num_logical_cores: int = 0
    model: str = ""
    architecture: str = ""
    num_sockets: int = 0


@dataclass
class DiskStats(_Record):
    """One line of /proc/diskstats; the discard (kernel 4.18+) and flush (5.5+) fields may be absent."""

    device_name: str
    major: int = 0
    minor: int = 0
    reads_completed: int = 0
    reads_merged: int = 0
    sectors_read: int = 0
    time_reading_ms: int = 0
    writes_completed: int = 0
    writes_merged: int = 0
    sectors_written: int = 0
    time_writing_ms: int = 0
    ios_in_progress: int = 0
    time_doing_ios_ms: int = 0
    weighted_time_doing_ios_ms: int = 0
    discards_completed: int | None = None
    discards_merged: int | None = None
    sectors_discarded: int | None = None
    time_discarding_ms: int | None = None
    flush_requests_completed: int | None = None
    time_flushing_ms: int | None = None


@dataclass
class NetworkInterface(_Record):
    """One interface of /proc/net/dev."""

    interface_name: str
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    rx_fifo: int = 0
    rx_frame: int = 0
    rx_compressed: int = 0
    rx_multicast: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
    tx_fifo: int = 0
    tx_collisions: int = 0
    tx_carrier: int = 0
    tx_compressed: int = 0


@dataclass
class MountInfo(_Record):
    device: str
    mount_point: str
    fs_type: str = ""
    options: str = ""
    dump_freq: int = 0
    pass_num: int = 0


@dataclass
class CgroupInfo(_Record):
    subsys_name: str
    hierarchy: int = 0
    num_cgroups: int = 0
    enabled: bool = False


@dataclass
class SystemInfo(_Record):
    hostname: str = ""
    kernel_version: str = ""
    version_string: str = ""
    os_release: dict[str, str] = field(default_factory=dict)
    uptime_seconds: float | None = None
    load_average_1min: float | None = None
    load_average_5min: float | None = None
    load_average_15min: float | None = None
    running_processes: int | None = None
    total_processes: int | None = None


@dataclass
class HostInfo(_Record):
    """Everything collected from one host. ``errors`` maps a source (a file, ``ssh``, ``mpi``) to what went
    wrong there; a host that could not be reached at all has no memory/cpu and an ``errors`` entry."""

    hostname: str
    address: str = ""  # the name it was reached by (``--hosts`` entry); "" when collected in an MPI rank
    memory: HostMemory | None = None
    cpu: CPUInfo | None = None
    disks: list[DiskStats] = field(default_factory=list)
    network: list[NetworkInterface] = field(default_factory=list)
    system: SystemInfo | None = None
    mounts: list[MountInfo] = field(default_factory=list)
    cgroups: list[CgroupInfo] = field(default_factory=list)
    vmstat: dict[str, int] = field(default_factory=dict)
    collection_timestamp: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    _nested = {"memory": (HostMemory, False), "cpu": (CPUInfo, False), "disks": (DiskStats, True),
               "network": (NetworkInterface, True), "system": (SystemInfo, False),
               "mounts": (MountInfo, True), "cgroups": (CgroupInfo, True)}

    @property
    def reachable(self) -> bool:
        """True when the host answered (its memory was read)."""
        return self.memory is not None and self.memory.total > 0


@dataclass
class ClusterInfo(_Record):
    """The cluster view stored as ``system_info`` / ``cluster_snapshots[phase]``."""

    hosts: list[HostInfo] = field(default_factory=list)
    num_hosts: int = 0
    total_memory_bytes: int = 0
    min_memory_bytes: int = 0
    max_memory_bytes: int = 0
    total_cores: int = 0
    total_logical_cores: int = 0
    collection_method: str = ""
    collection_timestamp: str = ""
    phase: str | None = None
    host_consistency_issues: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    _nested = {"hosts": (HostInfo, True)}
