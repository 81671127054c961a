"""Trace mode (reference §6.7): every logical cache operation as one CSV row, no real I/O.

Header ``Timestamp,Operation,Object_Size_Bytes,Tier,Key,Phase``; timestamp = Unix epoch with 6 decimals;
Operation ``Write|Read``; Tier ``Tier-0|Tier-1|Tier-2``; Phase ``Prefill`` (object writes), ``Decode`` (reads)
or ``Evict`` (a demotion: a Read on the source tier and a Write on the destination). Meant for replay by fio
and similar tools; zstd compression of the reference is not offered.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

HEADER = "Timestamp,Operation,Object_Size_Bytes,Tier,Key,Phase\n"


class TraceWriter:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = open(self.path, "w", encoding="utf-8", buffering=1 << 20)
        self._fh.write(HEADER)
        self._lock = threading.Lock()
        self.rows = 0

    def __call__(self, operation: str, size: int, tier_label: str, key: str, phase: str) -> None:
        line = f"{time.time():.6f},{operation},{size},{tier_label},{key},{phase}\n"
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line)
                self.rows += 1

    def close(self) -> None:
        with self._lock:
            self._fh.close()
