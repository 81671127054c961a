"""Parsers and records, on files captured from the build machine and on malformed variants of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlps_collectors import host as H
from mlps_collectors import parsers as P
from mlps_collectors.records import ClusterInfo, HostInfo

DATA = Path(__file__).parent / "data"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_meminfo_captured_in_bytes():
    values = P.parse_meminfo(read("meminfo"))
    line = next(l for l in read("meminfo").splitlines() if l.startswith("MemTotal:"))
    assert values["MemTotal"] == int(line.split()[1]) * 1024
    memory = P.host_memory(values)
    assert memory.total == values["MemTotal"] and 0 < memory.available <= memory.total
    assert memory.used == memory.total - memory.free - memory.buffers - memory.cached
    assert memory.shared == values["Shmem"]
    # a count without a unit (HugePages_Total) stays a plain number
    assert values["HugePages_Total"] == int(next(l for l in read("meminfo").splitlines()
                                                 if l.startswith("HugePages_Total")).split()[1])


def test_meminfo_garbage_lines_are_skipped_and_named():
    problems = []
    values = P.parse_meminfo("MemTotal: 1000 kB\n%%% garbage\nMemFree: abc kB\nCached: 10 kB\n", problems)
    assert values == {"MemTotal": 1024000, "Cached": 10240}
    assert len(problems) == 2 and "line 2" in problems[0] and "line 3" in problems[1]
    with pytest.raises(ValueError):
        P.parse_meminfo("nothing useful here\n")
    with pytest.raises(ValueError, match="MemTotal"):
        P.host_memory({"MemFree": 5})


def test_cpuinfo_captured():
    processors = P.parse_cpuinfo(read("cpuinfo"))
    expected = read("cpuinfo").count("processor\t:")
    assert len(processors) == expected
    cpu = P.cpu_summary(processors, "x86_64")
    assert cpu.num_logical_cores == expected and 1 <= cpu.num_physical_cores <= expected
    assert cpu.num_sockets >= 1 and cpu.model and cpu.architecture == "x86_64"


def test_cpuinfo_hyperthreads_and_sockets():
    blocks = []
    for cpu, (phys, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0), (1, 1), (1, 1)]):
        blocks.append(f"processor\t: {cpu}\nmodel name\t: Test CPU\nphysical id\t: {phys}\ncore id\t\t: {core}\n")
    cpu = P.cpu_summary(P.parse_cpuinfo("\n".join(blocks)))
    assert (cpu.num_logical_cores, cpu.num_physical_cores, cpu.num_sockets) == (8, 4, 2)


def test_cpuinfo_without_core_ids_counts_logical_and_errors_on_nonsense():
    arm = "processor\t: 0\nBogoMIPS\t: 50\n\nprocessor\t: 1\nBogoMIPS\t: 50\n\nHardware\t: X\n"
    cpu = P.cpu_summary(P.parse_cpuinfo(arm), "aarch64")
    assert (cpu.num_logical_cores, cpu.num_physical_cores, cpu.num_sockets) == (2, 2, 1)
    with pytest.raises(ValueError):
        P.parse_cpuinfo("model name : nothing\n")


def test_diskstats_captured_and_all_three_layouts():
    disks = P.parse_diskstats(read("diskstats"))
    assert len(disks) == len(read("diskstats").splitlines())
    newest = "   8       0 sda 100 2 300 4 5 6 700 8 0 9 10 11 12 13 14 15 16"
    old = "   8       0 sda 100 2 300 4 5 6 700 8 0 9 10"
    mid = "   8       0 sda 100 2 300 4 5 6 700 8 0 9 10 11 12 13 14"
    d20, d14, d18 = (P.parse_diskstats(t)[0] for t in (newest, old, mid))
    assert (d20.reads_completed, d20.sectors_read, d20.sectors_written, d20.weighted_time_doing_ios_ms) == (100, 300, 700, 10)
    assert (d20.discards_completed, d20.time_discarding_ms, d20.flush_requests_completed, d20.time_flushing_ms) == (11, 14, 15, 16)
    assert d14.discards_completed is None and d14.flush_requests_completed is None
    assert d18.sectors_discarded == 13 and d18.time_flushing_ms is None


def test_diskstats_garbage():
    problems = []
    disks = P.parse_diskstats("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\nbroken line\n8 1 sda1 x 2 3 4 5 6 7 8 9 10 11\n", problems)
    assert [d.device_name for d in disks] == ["sda"] and len(problems) == 2
    with pytest.raises(ValueError):
        P.parse_diskstats("")


def test_net_dev_captured_and_garbage():
    interfaces = P.parse_net_dev(read("net_dev"))
    names = [i.interface_name for i in interfaces]
    assert "lo" in names and len(names) == len(read("net_dev").splitlines()) - 2
    lo = interfaces[names.index("lo")]
    assert lo.rx_bytes == int(read("net_dev").split("lo:")[1].split()[0]) and lo.tx_bytes > 0
    problems = []
    with pytest.raises(ValueError):
        P.parse_net_dev("a|b\nc|d\n eth0: 1 2 3\n", problems)
    assert problems and "16 counters" in problems[0]


def test_version_loadavg_uptime_captured():
    kernel, full = P.parse_version(read("version"))
    assert kernel == read("version").split()[2] and full.startswith("Linux version")
    load = P.parse_loadavg(read("loadavg"))
    assert set(load) == {"load_average_1min", "load_average_5min", "load_average_15min",
                         "running_processes", "total_processes"}
    assert load["total_processes"] >= load["running_processes"] >= 0
    assert P.parse_uptime(read("uptime")) == float(read("uptime").split()[0])
    for parser, bad in ((P.parse_version, "garbage"), (P.parse_loadavg, "1.0 2.0"), (P.parse_uptime, "")):
        with pytest.raises(ValueError):
            parser(bad)


def test_os_release_captured_quotes_stripped_and_empty_is_error():
    release = P.parse_os_release(read("os-release"))
    assert release["ID"] and '"' not in release.get("PRETTY_NAME", "")
    assert P.parse_os_release("# comment\nNAME='X OS'\nbad line\nVERSION_ID=1\n") == {"NAME": "X OS", "VERSION_ID": "1"}
    with pytest.raises(ValueError):
        P.parse_os_release("")


def test_vmstat_mounts_cgroups_captured():
    vmstat = P.parse_vmstat(read("vmstat"))
    assert "pgpgin" in vmstat and all(isinstance(v, int) for v in vmstat.values())
    mounts = P.parse_mounts(read("mounts"))
    assert any(m.mount_point == "/proc" and m.fs_type == "proc" for m in mounts)
    escaped = P.parse_mounts("/dev/sdb1 /mnt/my\\040disk ext4 rw 0 2\n")[0]
    assert escaped.mount_point == "/mnt/my disk" and escaped.pass_num == 2
    groups = P.parse_cgroups(read("cgroups"))
    assert groups and all(g.subsys_name for g in groups)
    assert P.parse_cgroups("#subsys_name\thierarchy\tnum_cgroups\tenabled\n") == []  # cgroup v2 only
    for parser in (P.parse_vmstat, P.parse_mounts, P.parse_cgroups):
        with pytest.raises(ValueError):
            parser("one two three four five six seven\n")


def test_host_from_captured_files_round_trips_losslessly(captured_texts):
    host = H.build_host(captured_texts)
    assert host.errors == {} and host.hostname == "captured-host" and host.reachable
    assert host.system.kernel_version == read("version").split()[2] and host.system.os_release["ID"]
    assert host.disks and host.network and host.mounts and host.vmstat and host.cpu.num_logical_cores
    data = json.loads(json.dumps(host.to_dict()))
    assert HostInfo.from_dict(data) == host and HostInfo.from_dict(data).to_dict() == data
    cluster = ClusterInfo(hosts=[host, HostInfo(hostname="down", errors={"ssh": "refused"})], num_hosts=2,
                          collection_method="ssh", errors=["down: refused"], host_consistency_issues=["x"])
    again = ClusterInfo.from_dict(json.loads(json.dumps(cluster.to_dict())))
    assert again == cluster and isinstance(again.hosts[0].memory, type(host.memory))


def test_malformed_and_unreadable_files_become_error_entries(captured_texts):
    texts = dict(captured_texts)
    texts[H.MEMINFO] = "MemTotal: 2048 kB\n@@@ corrupted\n"
    texts[H.OS_RELEASE] = ""
    texts[H.LOADAVG] = "not a load average"
    del texts[H.CPUINFO]
    host = H.build_host(texts, {H.CPUINFO: "unreadable: Permission denied"})
    assert host.memory.total == 2048 * 1024  # the good line is kept
    assert "skipped 1 malformed line" in host.errors[H.MEMINFO]
    assert host.errors[H.OS_RELEASE].startswith("malformed") and host.system.os_release == {}
    assert host.errors[H.LOADAVG].startswith("malformed") and host.system.load_average_1min is None
    assert host.errors[H.CPUINFO] == "unreadable: Permission denied" and host.cpu is None
    assert host.disks  # untouched files still parse
    assert HostInfo.from_dict(host.to_dict()) == host


def test_read_local_missing_root_reports_each_file(tmp_path):
    texts, errors = H.read_local(H.SNAPSHOT_SOURCES, root=str(tmp_path))
    assert set(texts) == {H.ARCH} and H.MEMINFO in errors and "unreadable" in errors[H.MEMINFO]
    host = H.build_host(texts, errors)
    assert not host.reachable and H.MEMINFO in host.errors


def test_local_collection_of_this_machine():
    host = H.collect_local()
    assert host.reachable and host.cpu.num_logical_cores >= 1 and host.errors.get(H.MEMINFO) is None
    sample = H.build_sample(*H.read_local(H.SAMPLE_SOURCES))
    assert {"timestamp", "hostname", "diskstats", "vmstat", "loadavg", "meminfo", "netdev"} <= set(sample)
    assert "errors" not in sample
