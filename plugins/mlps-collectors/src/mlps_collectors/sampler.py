"""Time-series sampling during a run: a background thread samples every host every ``interval`` seconds.

Local hosts are read directly; other hosts through the same SSH collector (one short connection per host per
sample, in parallel). Sampling stops at ``max_samples`` per host, or within one interval of :meth:`stop`
(the thread waits on an event, never a plain sleep).
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


class TimeseriesSampler:
    def __init__(self, hosts: Sequence[str], interval: float = 10.0, max_samples: int = 3600, *,
                 timeout: float | None = None, force_ssh: bool = False, ssh_options: Sequence[str] = ()):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.hosts = list(dict.fromkeys(hosts)) or ["127.0.0.1"]
        self.interval = float(interval)
        self.max_samples = int(max_samples)
        # an SSH sample must not outlive its interval by much, or samples pile up
        self.timeout = timeout if timeout is not None else max(5.0, 2 * self.interval)
        self.force_ssh = force_ssh
        self.ssh_options = list(ssh_options)
        self.samples_by_host: dict[str, list[dict]] = {h: [] for h in self.hosts}
        self.start_time: str | None = None
        self.end_time: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def collection_method(self) -> str:
        from mlps_collectors.ssh import is_local

        return "ssh" if self.force_ssh or not all(is_local(h) for h in self.hosts) else "local"

    def start(self) -> "TimeseriesSampler":
        self.start_time = now_iso()
        self._thread = threading.Thread(target=self._loop, name="mlps-timeseries", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.sample_once()
            if all(len(s) >= self.max_samples for s in self.samples_by_host.values()):
                break
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def sample_once(self) -> None:
        from mlps_collectors.ssh import collect_ssh

        pending = [h for h in self.hosts if len(self.samples_by_host[h]) < self.max_samples]
        samples = collect_ssh(pending, timeout=self.timeout, force_ssh=self.force_ssh,
                              ssh_options=self.ssh_options, sample=True)
        with self._lock:
            for host, sample in zip(pending, samples):
                self.samples_by_host[host].append(sample)

    def stop(self) -> None:
        """Stop sampling; returns once the thread ended (at most one interval plus one sample's time)."""
        self._stop.set()
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
