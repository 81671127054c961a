"""The collectors plugin: cluster snapshots, time-series sampling and cluster rules for every benchmark's run.

Import-light by design: only stdlib and ``mlps`` here; the collectors, mpi4py and psutil load when a hook
needs them.
"""

from __future__ import annotations

import logging
import threading

from mlps import DependencyError, Option, Requirement, hookimpl

log = logging.getLogger("mlps.collectors")

OPTIONS = (
    Option(("--skip-cluster-collection",), type=bool, default=False,
           help="Do not collect cluster information (hosts, memory, CPUs, disks, OS) before and after the run."),
    Option(("--cluster-collection-timeout",), type=int, default=60, min=1,
           help="Seconds allowed for each cluster collection (MPI or SSH)."),
    Option(("--timeseries-interval",), type=float, default=10.0, min=0.01,
           help="Seconds between time-series samples of every host."),
    Option(("--skip-timeseries",), type=bool, default=False,
           help="Do not sample host statistics during the run."),
    Option(("--max-timeseries-samples",), type=int, default=3600, min=1,
           help="At most this many time-series samples per host."),
)

# sampler per live run, keyed by id(run): the Run record stays free of our private state
_SAMPLERS: dict[int, object] = {}
_SAMPLERS_LOCK = threading.Lock()


@hookimpl
def mlps_command_options(benchmark, command):
    return list(OPTIONS) if command == "run" else None


def _enabled(run, flag: str) -> bool:
    # our options exist only on `run` commands; elsewhere the collectors stay out of the way
    return flag in run.options and not run.option(flag)


@hookimpl
def mlps_collect_cluster_info(run, phase):
    if not _enabled(run, "skip_cluster_collection"):
        return None
    from mlps_collectors.cluster import aggregate, collect_cluster

    try:
        info = collect_cluster(run, phase)
    except Exception as exc:  # collection must never stop a run; the failure is recorded instead
        log.warning("cluster collection (%s) failed: %s: %s", phase, type(exc).__name__, exc)
        info = aggregate([], "none", phase=phase, errors=[f"collection failed: {type(exc).__name__}: {exc}"])
    for error in info.errors:
        log.warning("cluster collection (%s): %s", phase, error)
    missing = [h.address or h.hostname for h in info.hosts if not h.reachable]
    if phase == "start" and run.mode == "closed" and (missing or not info.hosts):
        # a CLOSED submission is graded on the cluster record; without it the run cannot count
        raise DependencyError(f"no cluster information from {', '.join(missing) or 'any host'} "
                              f"({info.errors[0] if info.errors else 'nothing collected'})",
                              suggestion="fix SSH/MPI access to the hosts, pass --client-host-memory-in-gb "
                                         "where the benchmark has it, or run with --open")
    return info.to_dict()


@hookimpl
def mlps_timeseries_start(run):
    if not _enabled(run, "skip_timeseries"):
        return
    from mlps_collectors.cluster import host_names
    from mlps_collectors.sampler import TimeseriesSampler

    from mlps_collectors.ssh import connect_timeout_for

    sampler = TimeseriesSampler(host_names(run), interval=float(run.option("timeseries_interval", 10.0)),
                                max_samples=int(run.option("max_timeseries_samples", 3600)),
                                connect_timeout=connect_timeout_for(float(run.option("cluster_collection_timeout", 60))))
    with _SAMPLERS_LOCK:
        previous = _SAMPLERS.pop(id(run), None)
        _SAMPLERS[id(run)] = sampler
    if previous is not None:
        previous.stop()
    sampler.start()


@hookimpl
def mlps_timeseries_stop(run):
    with _SAMPLERS_LOCK:
        sampler = _SAMPLERS.pop(id(run), None)
    if sampler is None:
        return None
    sampler.stop()
    path = sampler.write(run.path(f"{run.benchmark}_timeseries.json"))
    return {"file": path.name, "num_samples": sampler.num_samples, "interval_seconds": sampler.interval,
            "hosts_collected": sampler.hosts_collected()}


@hookimpl
def mlps_run_checkers(benchmark):
    from mlps_collectors.rules import ClusterRunChecker

    return [ClusterRunChecker]


@hookimpl
def mlps_requirements(run):
    """MPI collection of remote hosts needs a launcher and mpi4py; local-only runs need neither."""
    if not _enabled(run, "skip_cluster_collection") or run.option("exec_type", "mpi") != "mpi":
        return None
    from mlps_collectors.cluster import all_local, host_names

    if all_local(host_names(run)):
        return None
    openmpi = {"apt": "openmpi-bin libopenmpi-dev", "dnf": "openmpi openmpi-devel"}
    from mlps_collectors.mpi_collect import mpi4py_problem

    problem = mpi4py_problem()
    if problem and "No module named 'mpi4py'" not in problem:  # installed but broken: say how to fix MPI
        raise DependencyError(f"mpi4py cannot load an MPI library ({problem})",
                              suggestion="install Open MPI: apt-get install -y openmpi-bin libopenmpi-dev "
                                         "(dnf install -y openmpi openmpi-devel), then pip install --force-reinstall "
                                         "mpi4py; or pass --exec-type local or --skip-cluster-collection")
    return [
        Requirement("mpi", run.option("mpi_bin", "mpirun"), install=openmpi, reason="cluster collection over MPI",
                    hint="install Open MPI, or pass --skip-cluster-collection"),
        Requirement("module", "mpi4py", install={"pip": "mpi4py", **openmpi}, reason="cluster collection over MPI",
                    hint="mpi4py needs an MPI library: install Open MPI (apt-get install openmpi-bin "
                         "libopenmpi-dev), then pip install mpi4py"),
    ]
