"""Method selection, aggregation, consistency and the cluster checker."""

from __future__ import annotations

import copy
import shutil

import pytest

from mlps import Host, Run
from mlps.rules import Validation, verify
from mlps_collectors import cluster as C
from mlps_collectors.host import build_host, collect_local
from mlps_collectors.records import CPUInfo, HostInfo, HostMemory, SystemInfo
from mlps_collectors.rules import ClusterRunChecker

GIB = 1024**3


def node(name, mem_gib=64, cores=32, kernel="6.1.0", os_id="debian", version="12"):
    """A host record as a 64-node cluster would report it (such clusters cannot exist here)."""
    return HostInfo(hostname=name, address=name, memory=HostMemory(total=int(mem_gib * GIB)),
                    cpu=CPUInfo(num_physical_cores=cores, num_logical_cores=cores * 2),
                    system=SystemInfo(hostname=name, kernel_version=kernel,
                                      os_release={"ID": os_id, "VERSION_ID": version}))


def make_run(hosts=("127.0.0.1",), **options) -> Run:
    base = {"exec_type": "mpi", "mpi_bin": "mpirun", "allow_run_as_root": True, "oversubscribe": True,
            "mpi_params": (), "cluster_collection_timeout": 60, "skip_cluster_collection": False}
    base.update(options)
    return Run(benchmark="bench", command="run", options=base, hosts=[Host(h) for h in hosts])


def test_aggregate_totals_and_dedup():
    a, b = node("a", 64, 32), node("b", 96, 32)
    info = C.aggregate([a, b, copy.deepcopy(a), HostInfo(hostname="c", address="c", errors={"ssh": "refused"})],
                       "ssh", phase="start")
    assert info.num_hosts == 3 and [h.hostname for h in info.hosts] == ["a", "b", "c"]
    assert info.total_memory_bytes == 160 * GIB and info.min_memory_bytes == 64 * GIB
    assert info.max_memory_bytes == 96 * GIB and info.total_cores == 64 and info.total_logical_cores == 128
    assert info.errors == ["c: refused"] and info.host_consistency_issues == [] and info.phase == "start"


def test_consistency_ratio_kernel_and_os():
    assert C.consistency_issues([node("a", 64), node("b", 96)]) == []  # 1.5x exactly is fine
    issues = C.consistency_issues([node("a", 64, 16), node("b", 128, 32, kernel="5.15"), node("c", 64, 16, os_id="rhel", version="9")])
    text = " | ".join(issues)
    assert "memory differs by 2.00x" in text and "core counts differ by 2.00x" in text
    assert "different kernel versions" in text and "different operating systems" in text
    assert C.consistency_issues([node("solo")]) == []


def test_all_local_hosts_are_collected_directly():
    info = C.collect_cluster(make_run(("127.0.0.1", "localhost")), "start")
    assert info.collection_method == "local" and info.num_hosts == 1 and info.errors == []


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
def test_mpi_method_when_remote_and_mpi_works():
    info = C.collect_cluster(make_run(("127.0.0.1",)), "start", force_remote=True)
    assert info.collection_method == "mpi" and info.num_hosts == 1 and info.hosts[0].reachable


def test_mpi_failure_falls_back_to_ssh_and_names_the_failure(ssh_config_options):
    run = make_run(("127.0.0.1",), mpi_bin="/nonexistent/mpirun")  # the launcher cannot start
    info = C.collect_cluster(run, "start", force_remote=True, ssh_options=ssh_config_options)
    assert info.collection_method == "ssh" and info.hosts[0].reachable
    assert any("cannot run /nonexistent/mpirun" in e for e in info.errors)


def test_exec_type_local_uses_ssh(ssh_config_options):
    info = C.collect_cluster(make_run(("mlps-loopback",), exec_type="local"), "end", ssh_options=ssh_config_options)
    assert info.collection_method == "ssh" and info.hosts[0].address == "mlps-loopback" and info.phase == "end"


def test_nothing_reachable_falls_back_to_args(unused_port):
    run = make_run(("127.0.0.1", "127.0.0.2"), exec_type="local", client_host_memory_in_gb=128)
    info = C.collect_cluster(run, "start", force_remote=True, ssh_options=["-p", str(unused_port)])
    assert info.collection_method == "args" and info.total_memory_bytes == 256 * GIB
    assert [h.hostname for h in info.hosts] == ["127.0.0.1", "127.0.0.2"]
    assert len([e for e in info.errors if "Connection refused" in e]) == 2


def test_nothing_reachable_without_args_records_every_error(unused_port):
    run = make_run(("127.0.0.1",), exec_type="local")
    info = C.collect_cluster(run, "start", force_remote=True, ssh_options=["-p", str(unused_port)])
    assert info.collection_method == "ssh" and info.total_memory_bytes == 0 and "Connection refused" in info.errors[0]


def grade(cluster_dict):
    return verify([ClusterRunChecker], {"system_info": cluster_dict})


def test_checker_consistent_cluster_is_closed():
    verdict = grade(C.aggregate([node("a"), node("b")], "mpi").to_dict())
    assert verdict.validation == Validation.CLOSED and verdict.issues == []


def test_checker_inconsistent_nodes_open_warning():
    verdict = grade(C.aggregate([node("a", 64), node("b", 256)], "ssh").to_dict())
    assert verdict.validation == Validation.OPEN
    assert all(i.severity == "warning" for i in verdict.issues) and "Cluster consistency" in verdict.issues[0].message


def test_checker_small_memory_invalid():
    verdict = grade(C.aggregate([node("tiny", 1)], "mpi").to_dict())
    assert verdict.validation == Validation.INVALID and "tiny" in verdict.issues[0].message


def test_checker_args_fallback_is_informational():
    verdict = grade(C.aggregate(C.hosts_from_args(["a", "b"], 64), "args").to_dict())
    assert verdict.validation == Validation.CLOSED
    assert [i.severity for i in verdict.issues] == ["info"] and "fell back" in verdict.issues[0].message


def test_checker_unreachable_host_open_and_no_info_passes():
    verdict = grade(C.aggregate([node("a"), HostInfo(hostname="b", address="b", errors={"ssh": "x"})], "ssh").to_dict())
    assert verdict.validation == Validation.OPEN and "b" in verdict.issues[0].message
    assert verify([ClusterRunChecker], {"system_info": None}).issues == []  # the pre-run gate
    snapshots = {"cluster_snapshots": {"start": C.aggregate([node("tiny", 1)], "mpi").to_dict()}}
    assert verify([ClusterRunChecker], snapshots).validation == Validation.INVALID


def test_checker_on_this_machine():
    verdict = grade(C.aggregate([collect_local()], "local").to_dict())
    assert verdict.validation == Validation.CLOSED


def test_garbled_host_is_still_aggregated(captured_texts):
    texts = dict(captured_texts)
    texts["/proc/cpuinfo"] = "garbage\n"
    info = C.aggregate([build_host(texts)], "local")
    assert info.num_hosts == 1 and info.total_cores == 0 and info.total_memory_bytes > 0
