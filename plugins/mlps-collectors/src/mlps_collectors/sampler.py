"""Time-series sampling during a run: every host is sampled every ``interval`` seconds in the background.

This machine's names are read directly by one thread; every other host gets one long-lived SSH session
running a fixed sampling loop (one connection per host per run, not one per sample). Sampling stops at
``max_samples`` per host, or within one interval of :meth:`stop`: the local thread waits on an event, never a
plain sleep, and the SSH sessions are terminated.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from mlps_collectors.host import now_iso
from mlps_collectors.ssh import is_local


class TimeseriesSampler:
    def __init__(self, hosts: Sequence[str], interval: float = 10.0, max_samples: int = 3600, *,
                 connect_timeout: int = 10, force_ssh: bool = False, ssh_options: Sequence[str] = ()):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.hosts = list(dict.fromkeys(hosts)) or ["127.0.0.1"]
        self.interval = float(interval)
        self.max_samples = int(max_samples)
        self.connect_timeout = int(connect_timeout)  # for each remote host's one ssh session
        self.force_ssh = force_ssh
        self.ssh_options = list(ssh_options)
        self.samples_by_host: dict[str, list[dict]] = {h: [] for h in self.hosts}
        self.start_time: str | None = None
        self.end_time: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams: list = []
        self._lock = threading.Lock()
        self.local_hosts = [h for h in self.hosts if not force_ssh and is_local(h)]
        self.remote_hosts = [h for h in self.hosts if h not in self.local_hosts]

    @property
    def collection_method(self) -> str:
        return "ssh" if self.remote_hosts else "local"

    def start(self) -> "TimeseriesSampler":
        from mlps_collectors.ssh import RemoteSampleStream

        self.start_time = now_iso()
        for host in self.remote_hosts:
            stream = RemoteSampleStream(host, self.interval, self.max_samples,
                                        lambda sample, host=host: self._add(host, sample),
                                        connect_timeout=self.connect_timeout, ssh_options=self.ssh_options)
            self._streams.append(stream.start())
        if self.local_hosts:
            self._thread = threading.Thread(target=self._loop, name="mlps-timeseries", daemon=True)
            self._thread.start()
        return self

    def _add(self, host: str, sample: dict) -> None:
        with self._lock:
            if len(self.samples_by_host[host]) < self.max_samples:
                self.samples_by_host[host].append(sample)

    def _loop(self) -> None:
        from mlps_collectors.host import SAMPLE_SOURCES, build_sample, read_local

        for _ in range(self.max_samples):
            began = time.monotonic()
            sample = build_sample(*read_local(SAMPLE_SOURCES))  # read once: the local names are one machine
            for host in self.local_hosts:
                self._add(host, dict(sample))
            if self._stop.wait(max(0.0, self.interval - (time.monotonic() - began))):
                break

    def stop(self) -> None:
        """Stop sampling; returns within about one interval (a local sample in progress finishes first)."""
        self._stop.set()
        for stream in self._streams:
            stream.stop()
        if self._thread is not None:
            self._thread.join()
        self.end_time = now_iso()

    @property
    def num_samples(self) -> int:
        return sum(len(s) for s in self.samples_by_host.values())

    def hosts_collected(self) -> list[str]:
        """Hosts with at least one sample that carries data (not only an error)."""
        return [h for h, samples in self.samples_by_host.items()
                if any("meminfo" in s or "loadavg" in s for s in samples)]

    def to_dict(self) -> dict:
        with self._lock:
            return {"collection_interval_seconds": self.interval, "start_time": self.start_time,
                    "end_time": self.end_time, "num_samples": self.num_samples,
                    "max_samples_per_host": self.max_samples,
                    "samples_by_host": {h: list(s) for h, s in self.samples_by_host.items()},
                    "collection_method": self.collection_method, "hosts_requested": list(self.hosts),
                    "hosts_collected": self.hosts_collected()}

    def write(self, path: Path) -> Path:
        """Write the samples as JSON, atomically."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.to_dict(), handle)
        os.replace(tmp, path)
        return path
