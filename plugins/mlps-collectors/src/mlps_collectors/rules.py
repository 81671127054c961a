"""The cluster checker: grades what the collectors recorded, for every benchmark.

It reads ``metadata["system_info"]`` (the start snapshot), falling back to ``cluster_snapshots["start"]``.
A run with no cluster information (the pre-run gate, ``--skip-cluster-collection``) passes untouched.
"""

from __future__ import annotations

from mlps.rules import Issue, RunChecker, Validation

#: a client host with less memory than this cannot hold a benchmark's working set; the run is INVALID
MIN_HOST_MEMORY_BYTES = 2 * 1024**3


class ClusterRunChecker(RunChecker):
    benchmarks = None  # every benchmark
    min_host_memory_bytes = MIN_HOST_MEMORY_BYTES

    def _cluster(self) -> dict | None:
        info = self.metadata.get("system_info")
        if not isinstance(info, dict):
            info = (self.metadata.get("cluster_snapshots") or {}).get("start")
        return info if isinstance(info, dict) and "hosts" in info else None

    def _hosts(self):
        from mlps_collectors.records import HostInfo

        cluster = self._cluster()
        return [HostInfo.from_dict(h) for h in (cluster or {}).get("hosts") or []]

    def check_node_consistency(self):
        """Nodes differing in memory or cores by more than 1.5x, or in kernel or OS -> OPEN (warning)."""
        from mlps_collectors.cluster import consistency_issues

        cluster = self._cluster()
        if cluster is None:
            return None
        messages = list(dict.fromkeys(list(cluster.get("host_consistency_issues") or [])
                                      + consistency_issues(self._hosts())))
        return [Issue(Validation.OPEN, f"Cluster consistency: {m}", parameter="system_info.hosts",
                      severity="warning") for m in messages]

    def check_host_memory_minimum(self):
        """Any host below the minimum memory -> INVALID."""
        issues = []
        for host in self._hosts():
            if host.memory is not None and 0 < host.memory.total < self.min_host_memory_bytes:
                issues.append(Issue(Validation.INVALID, f"host {host.hostname} has too little memory",
                                    parameter="system_info.hosts.memory.total",
                                    expected=f">= {self.min_host_memory_bytes / 1024**3:.1f} GiB",
                                    actual=f"{host.memory.total / 1024**3:.2f} GiB"))
        return issues

    def check_collection_method(self):
        """Memory taken from --client-host-memory-in-gb instead of the hosts: informational."""
        cluster = self._cluster()
        if cluster is None or cluster.get("collection_method") != "args":
            return None
        return Issue(Validation.CLOSED, "cluster information fell back to the command-line arguments "
                     "(--client-host-memory-in-gb); nothing was collected from the hosts",
                     parameter="collection_method", actual="args", severity="info")

    def check_unreachable_hosts(self):
        """Hosts that gave no data (collection failed) -> OPEN (warning): the cluster record is incomplete."""
        cluster = self._cluster()
        if cluster is None or cluster.get("collection_method") == "args":
            return None
        missing = [h.address or h.hostname for h in self._hosts() if not h.reachable]
        if not missing:
            return None
        return Issue(Validation.OPEN, f"no cluster information from {len(missing)} host(s): {', '.join(missing)}",
                     parameter="system_info.hosts", severity="warning")
