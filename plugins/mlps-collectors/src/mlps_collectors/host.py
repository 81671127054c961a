"""Build a :class:`HostInfo` from raw file texts, wherever they were read (locally, over SSH, in an MPI rank).

A collector only gathers ``{path: text}`` (plus ``{path: error}`` for what it could not read); this module
turns that into a record. Every failure lands in ``HostInfo.errors`` under the file's path; nothing raises.
"""

from __future__ import annotations

import datetime
import os
import socket

from mlps_collectors import parsers
from mlps_collectors.records import HostInfo, SystemInfo

HOSTNAME = "/proc/sys/kernel/hostname"
MEMINFO = "/proc/meminfo"
CPUINFO = "/proc/cpuinfo"
DISKSTATS = "/proc/diskstats"
NET_DEV = "/proc/net/dev"
VERSION = "/proc/version"
LOADAVG = "/proc/loadavg"
UPTIME = "/proc/uptime"
OS_RELEASE = "/etc/os-release"
VMSTAT = "/proc/vmstat"
MOUNTS = "/proc/mounts"
CGROUPS = "/proc/cgroups"
ARCH = "uname-m"  # not a file: the machine architecture (``uname -m``), which /proc/cpuinfo lacks on x86

#: everything a snapshot reads, and the subset a time-series sample reads
SNAPSHOT_SOURCES = (HOSTNAME, MEMINFO, CPUINFO, DISKSTATS, NET_DEV, VERSION, LOADAVG, UPTIME, OS_RELEASE,
                    VMSTAT, MOUNTS, CGROUPS, ARCH)
SAMPLE_SOURCES = (HOSTNAME, DISKSTATS, VMSTAT, LOADAVG, MEMINFO, NET_DEV)
#: sources whose absence says nothing about the host's health (cgroup v2-only kernels lack /proc/cgroups)
OPTIONAL_SOURCES = frozenset({CGROUPS, MOUNTS})


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_local(sources=SNAPSHOT_SOURCES, root: str = "") -> tuple[dict[str, str], dict[str, str]]:
    """Read ``sources`` on this machine: ``(texts, errors)``. ``root`` prefixes paths (tests point it at a
    directory of captured files)."""
    texts: dict[str, str] = {}
    errors: dict[str, str] = {}
    for source in sources:
        if source == ARCH:
            texts[ARCH] = os.uname().machine
            continue
        try:
            with open(root + source, encoding="utf-8", errors="replace") as handle:
                texts[source] = handle.read()
        except OSError as exc:
            errors[source] = f"unreadable: {exc.strerror or exc}"
    return texts, errors


def _parse(errors: dict[str, str], source: str, texts: dict[str, str], parser):
    """Run ``parser`` on one source's text; record a missing source or a parse failure under its path."""
    if source not in texts:
        if source not in errors:
            errors[source] = "not collected"
        return None
    problems: list[str] = []
    try:
        value = parser(texts[source], problems)
    except ValueError as exc:
        errors[source] = f"malformed: {exc}"
        return None
    if problems:
        errors[source] = f"skipped {len(problems)} malformed line(s); first {problems[0]}"
    return value


def build_host(texts: dict[str, str], read_errors: dict[str, str] | None = None,
               hostname: str | None = None) -> HostInfo:
    """A host record from raw texts; whatever is missing or malformed becomes an ``errors`` entry."""
    errors = dict(read_errors or {})
    name = hostname or texts.get(HOSTNAME, "").strip() or "unknown"
    host = HostInfo(hostname=name, collection_timestamp=now_iso())
    meminfo = _parse(errors, MEMINFO, texts, parsers.parse_meminfo)
    if meminfo is not None:
        try:
            host.memory = parsers.host_memory(meminfo)
        except ValueError as exc:
            errors[MEMINFO] = f"malformed: {exc}"
    processors = _parse(errors, CPUINFO, texts, parsers.parse_cpuinfo)
    if processors:
        host.cpu = parsers.cpu_summary(processors, texts.get(ARCH, "").strip())
    host.disks = _parse(errors, DISKSTATS, texts, parsers.parse_diskstats) or []
    host.network = _parse(errors, NET_DEV, texts, parsers.parse_net_dev) or []
    host.vmstat = _parse(errors, VMSTAT, texts, parsers.parse_vmstat) or {}
    host.mounts = _parse(errors, MOUNTS, texts, parsers.parse_mounts) or []
    host.cgroups = _parse(errors, CGROUPS, texts, parsers.parse_cgroups) or []
    system = SystemInfo(hostname=name)
    version = _parse(errors, VERSION, texts, parsers.parse_version)
    if version:
        system.kernel_version, system.version_string = version
    system.os_release = _parse(errors, OS_RELEASE, texts, parsers.parse_os_release) or {}
    system.uptime_seconds = _parse(errors, UPTIME, texts, parsers.parse_uptime)
    for key, value in (_parse(errors, LOADAVG, texts, parsers.parse_loadavg) or {}).items():
        setattr(system, key, value)
    host.system = system
    errors.pop(ARCH, None)
    host.errors = errors
    return host


def collect_local(root: str = "") -> HostInfo:
    """This machine's host record."""
    texts, errors = read_local(SNAPSHOT_SOURCES, root)
    return build_host(texts, errors)


def build_sample(texts: dict[str, str], read_errors: dict[str, str] | None = None,
                 hostname: str | None = None) -> dict:
    """One time-series sample (JSON-native): diskstats, vmstat, loadavg, meminfo, net/dev; failures under
    ``errors``; None fields are left out."""
    errors = dict(read_errors or {})
    sample = {"timestamp": now_iso(), "hostname": hostname or texts.get(HOSTNAME, "").strip() or "unknown"}
    disks = _parse(errors, DISKSTATS, texts, parsers.parse_diskstats)
    net = _parse(errors, NET_DEV, texts, parsers.parse_net_dev)
    fields = {"diskstats": [d.to_dict() for d in disks] if disks else None,
              "vmstat": _parse(errors, VMSTAT, texts, parsers.parse_vmstat),
              "loadavg": _parse(errors, LOADAVG, texts, parsers.parse_loadavg),
              "meminfo": _parse(errors, MEMINFO, texts, parsers.parse_meminfo),
              "netdev": [n.to_dict() for n in net] if net else None}
    sample.update({k: v for k, v in fields.items() if v is not None})
    if errors:
        sample["errors"] = errors
    return sample


def local_hostnames() -> set[str]:
    """Names that mean this machine: collected directly, never over SSH."""
    names = {"localhost", "127.0.0.1", "::1", "localhost.localdomain", "ip6-localhost"}
    try:
        hostname = socket.gethostname()
        names |= {hostname, hostname.split(".")[0]}
    except OSError:
        pass
    return {n.lower() for n in names if n}
