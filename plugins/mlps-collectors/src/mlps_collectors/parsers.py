"""Pure parsers for the /proc and /etc files the collectors read. They take text and return values.

Each parser skips lines it cannot understand and, when given a ``problems`` list, appends a short note per
skipped line, so a garbled file still yields what it has. A file that yields nothing usable raises
``ValueError``; the host builder turns that into an error entry on the host record.
"""

from __future__ import annotations

from mlps_collectors.records import CgroupInfo, CPUInfo, DiskStats, HostMemory, MountInfo, NetworkInterface

_DISK_BASE = ("reads_completed", "reads_merged", "sectors_read", "time_reading_ms", "writes_completed",
              "writes_merged", "sectors_written", "time_writing_ms", "ios_in_progress", "time_doing_ios_ms",
              "weighted_time_doing_ios_ms")
_DISK_DISCARD = ("discards_completed", "discards_merged", "sectors_discarded", "time_discarding_ms")
_DISK_FLUSH = ("flush_requests_completed", "time_flushing_ms")
_NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo", "rx_frame", "rx_compressed",
               "rx_multicast", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo", "tx_collisions",
               "tx_carrier", "tx_compressed")


def _note(problems: list | None, lineno: int, line: str, why: str) -> None:
    if problems is not None:
        problems.append(f"line {lineno}: {why}: {line.strip()[:60]!r}")


def parse_meminfo(text: str, problems: list | None = None) -> dict[str, int]:
    """``{field: value}``; values with a ``kB`` unit are converted to bytes."""
    values: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not key.strip() or not parts or not parts[0].isdigit():
            _note(problems, lineno, line, "not 'Key: number [kB]'")
            continue
        number = int(parts[0])
        values[key.strip()] = number * 1024 if len(parts) > 1 and parts[1].lower() == "kb" else number
    if not values:
        raise ValueError("no 'Key: value' lines")
    return values


def host_memory(meminfo: dict[str, int]) -> HostMemory:
    """The memory summary of a parsed meminfo (bytes)."""
    if "MemTotal" not in meminfo:
        raise ValueError("MemTotal missing")
    total, free = meminfo["MemTotal"], meminfo.get("MemFree")
    buffers, cached = meminfo.get("Buffers"), meminfo.get("Cached")
    used = total - free - (buffers or 0) - (cached or 0) if free is not None else None
    return HostMemory(total=total, available=meminfo.get("MemAvailable"), free=free, used=used,
                      active=meminfo.get("Active"), inactive=meminfo.get("Inactive"), buffers=buffers,
                      cached=cached, shared=meminfo.get("Shmem"))


def parse_cpuinfo(text: str, problems: list | None = None) -> list[dict[str, str]]:
    """One dict per processor block (blocks are separated by blank lines)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines() + [""], 1):
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            _note(problems, lineno, line, "not 'key : value'")
            continue
        current[key.strip()] = value.strip()
    processors = [b for b in blocks if "processor" in b]
    if not processors:
        raise ValueError("no 'processor' entries")
    return processors


def cpu_summary(processors: list[dict[str, str]], architecture: str = "") -> CPUInfo:
    """Cores and sockets: physical cores are distinct (physical id, core id) pairs; without those fields
    (many ARM kernels, some VMs) every logical CPU counts as a core."""
    sockets = {p.get("physical id") for p in processors if "physical id" in p}
    cores = {(p.get("physical id"), p["core id"]) for p in processors if "core id" in p}
    first = processors[0]
    model = first.get("model name") or first.get("Processor") or first.get("cpu model") or first.get("cpu") or ""
    return CPUInfo(num_physical_cores=len(cores) or len(processors), num_logical_cores=len(processors),
                   model=model, architecture=architecture, num_sockets=len(sockets) or 1)


def parse_diskstats(text: str, problems: list | None = None) -> list[DiskStats]:
    """Lines of 14 columns (11 counters), 18 (+discards, kernel 4.18) or 20 (+flushes, kernel 5.5)."""
    disks = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 14 or not all(p.isdigit() for p in parts[:2] + parts[3:]):
            _note(problems, lineno, line, "not 'major minor name counters...'")
            continue
        counters = [int(p) for p in parts[3:]]
        names = _DISK_BASE + (_DISK_DISCARD if len(counters) >= 15 else ()) + (_DISK_FLUSH if len(counters) >= 17 else ())
        disks.append(DiskStats(device_name=parts[2], major=int(parts[0]), minor=int(parts[1]),
                               **dict(zip(names, counters))))
    if not disks:
        raise ValueError("no device lines")
    return disks


def parse_net_dev(text: str, problems: list | None = None) -> list[NetworkInterface]:
    """``/proc/net/dev``: two header lines, then ``iface: 16 counters``."""
    interfaces = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if "|" in line or not line.strip():
            continue  # the two header lines
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not name.strip() or len(parts) < 16 or not all(p.isdigit() for p in parts[:16]):
            _note(problems, lineno, line, "not 'iface: 16 counters'")
            continue
        interfaces.append(NetworkInterface(interface_name=name.strip(),
                                           **dict(zip(_NET_FIELDS, (int(p) for p in parts[:16])))))
    if not interfaces:
        raise ValueError("no interface lines")
    return interfaces


def parse_version(text: str, problems: list | None = None) -> tuple[str, str]:
    """``(kernel release, full version string)`` from ``Linux version 6.1.0-18-amd64 (...) ...``."""
    full = text.strip()
    parts = full.split()
    if len(parts) < 3 or parts[1] != "version":
        raise ValueError("not 'Linux version <release> ...'")
    return parts[2], full


def parse_loadavg(text: str, problems: list | None = None) -> dict[str, float | int]:
    """``1.67 0.72 0.30 2/98 7193`` -> load averages and running/total processes."""
    parts = text.split()
    try:
        running, total = parts[3].split("/")
        return {"load_average_1min": float(parts[0]), "load_average_5min": float(parts[1]),
                "load_average_15min": float(parts[2]), "running_processes": int(running),
                "total_processes": int(total)}
    except (IndexError, ValueError) as exc:
        raise ValueError(f"not 'l1 l5 l15 running/total pid': {text.strip()[:60]!r}") from exc


def parse_uptime(text: str, problems: list | None = None) -> float:
    parts = text.split()
    try:
        return float(parts[0])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"not 'seconds idle': {text.strip()[:60]!r}") from exc


def parse_os_release(text: str, problems: list | None = None) -> dict[str, str]:
    """``KEY=value`` lines, quotes stripped. An empty file gives an error (nothing to identify the OS)."""
    values: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.replace("_", "").isalnum():
            _note(problems, lineno, line, "not KEY=value")
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    if not values:
        raise ValueError("no KEY=value lines")
    return values


def parse_vmstat(text: str, problems: list | None = None) -> dict[str, int]:
    values: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            _note(problems, lineno, line, "not 'name number'")
            continue
        values[parts[0]] = int(parts[1])
    if not values:
        raise ValueError("no 'name number' lines")
    return values


def _unescape_mount(field: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash in paths as octal escapes (\040 ...)
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mounts(text: str, problems: list | None = None) -> list[MountInfo]:
    mounts = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6 or not parts[4].isdigit() or not parts[5].isdigit():
            _note(problems, lineno, line, "not 'device mountpoint type options dump pass'")
            continue
        mounts.append(MountInfo(device=_unescape_mount(parts[0]), mount_point=_unescape_mount(parts[1]),
                                fs_type=parts[2], options=parts[3], dump_freq=int(parts[4]), pass_num=int(parts[5])))
    if not mounts:
        raise ValueError("no mount lines")
    return mounts


def parse_cgroups(text: str, problems: list | None = None) -> list[CgroupInfo]:
    groups = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
            _note(problems, lineno, line, "not 'subsys hierarchy num_cgroups enabled'")
            continue
        groups.append(CgroupInfo(subsys_name=parts[0], hierarchy=int(parts[1]), num_cgroups=int(parts[2]),
                                 enabled=parts[3] == "1"))
    if not groups and any(line.strip() and not line.startswith("#") for line in text.splitlines()):
        raise ValueError("no subsystem lines")
    return groups  # an empty table (header only) is legitimate on cgroup-v2-only kernels
