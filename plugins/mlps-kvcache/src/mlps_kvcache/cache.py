"""The multi-tier KV cache: placement, waterfall LRU eviction, reads (spec §5.2, §5.3).

New objects go to the fastest tier with room. Making room in a non-terminal tier demotes its least recently
used objects one tier down (recursively, depth <= 10); in the terminal (storage) tier victims are deleted.
Reads never promote. Thresholds: non-terminal target 0.8 x limit, terminal 1.0 x limit, objects above
0.95 x limit refused by non-terminal tiers, drift guard below 0.05 x limit, early bail-out when the tier holds
< 0.2 x limit and the object is > 0.5 x target.

Accounting: ``usage`` is reserved bytes (reserved under the lock before any I/O, released only for bytes that
were added), ``resident`` is bytes of placed objects. Every decrement goes through ``_sub`` which counts any
underflow (there should be none; tests check it under concurrency). No lock is held during I/O.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Sequence

from mlps_kvcache.data import DataGenerator
from mlps_kvcache.metrics import Recorder
from mlps_kvcache.tiers import ObjectMissing, Tier, TierFullError, Timing

TARGET_RATIO = 0.8
LARGE_ENTRY_RATIO = 0.95
DRIFT_GUARD_RATIO = 0.05
BAILOUT_HELD_RATIO = 0.2
BAILOUT_SIZE_RATIO = 0.5
MAX_DEPTH = 10
ZERO = Timing(0.0, 0.0, 0.0)


@dataclass
class Entry:
    key: str
    size: int
    tier: int
    tokens: int
    last_access: float
    access_count: int = 1
    moving: bool = False


class KVCache:
    def __init__(self, tiers: Sequence[Tier], recorder: Recorder, generator: DataGenerator,
                 bytes_per_token: int, max_concurrent_allocs: int = 0, trace=None):
        self.tiers = [t for t in tiers if t.capacity > 0]
        if not self.tiers:
            raise ValueError("at least one tier needs a capacity above 0")
        self.rec, self.gen, self.bpt = recorder, generator, max(1, bytes_per_token)
        n = len(self.tiers)
        self.usage, self.resident = [0] * n, [0] * n
        self.underflows = 0
        self.entries: dict[str, Entry] = {}
        self._busy: set[str] = set()  # keys being written or deleted
        self.lock = threading.Lock()
        self._sem = threading.BoundedSemaphore(max_concurrent_allocs) if max_concurrent_allocs > 0 else None
        self.trace = trace  # trace(operation, size, tier label, key, phase), or None

    # --- accounting helpers (call with the lock held) ---------------------------------------------------
    def _sub(self, arr: list, i: int, size: int) -> None:
        arr[i] -= size
        if arr[i] < 0:
            self.underflows += 1
            arr[i] = 0

    @property
    def terminal(self) -> int:
        return len(self.tiers) - 1

    def tier_index(self, name: str) -> int | None:
        return next((i for i, t in enumerate(self.tiers) if t.name == name), None)

    # --- allocation --------------------------------------------------------------------------------------
    def allocate(self, key: str, tokens: int) -> tuple[Timing, str | None]:
        """Write object ``key`` of ``tokens`` tokens; returns (timing, tier name or None when not written)."""
        with self.lock:
            if key in self.entries or key in self._busy:
                return ZERO, None
            self._busy.add(key)
        try:
            if self._sem is not None:
                with self._sem:
                    return self._allocate(key, tokens)
            return self._allocate(key, tokens)
        finally:
            with self.lock:
                self._busy.discard(key)

    def _allocate(self, key: str, tokens: int) -> tuple[Timing, str | None]:
        size, first = tokens * self.bpt, 0
        while True:
            placed = next(i for i in range(first, len(self.tiers)) if self._ensure_space(i, size, 0))
            tier = self.tiers[placed]
            try:
                timing = tier.write(key, size, lambda off, out: self.gen.fill(key, off, out))
                break
            except TierFullError:
                with self.lock:
                    self._sub(self.usage, placed, size)
                if placed == self.terminal:
                    raise
                first = placed + 1  # e.g. CUDA out of memory: the next tier down takes it
            except BaseException:
                with self.lock:
                    self._sub(self.usage, placed, size)
                raise
        with self.lock:
            self.entries[key] = Entry(key, size, placed, tokens, time.monotonic())
            self.resident[placed] += size
        self.rec.op(tier.name, "write", size, timing)
        self.rec.add("write_operations")
        if self.trace:
            self.trace("Write", size, tier.label, key, "Prefill")
        if tier.name == "storage":
            self.rec.add("storage_tokens_processed", tokens)
        return timing, tier.name

    # --- eviction ----------------------------------------------------------------------------------------
    def _ensure_space(self, i: int, size: int, depth: int) -> bool:
        if depth > MAX_DEPTH:
            return False
        limit, terminal = self.tiers[i].capacity, i == self.terminal
        if terminal and limit == float("inf"):
            with self.lock:
                self.usage[i] += size
            return True
        if not terminal and size > LARGE_ENTRY_RATIO * limit:
            return False
        target = limit if terminal else TARGET_RATIO * limit
        with self.lock:
            max_iter = min(5000, max(1000, len(self.entries) + 100))
        first = True
        for _ in range(max_iter):
            with self.lock:
                if self.usage[i] + size <= target or self.usage[i] < DRIFT_GUARD_RATIO * limit:
                    self.usage[i] += size
                    return True
                if (not terminal and first and self.resident[i] < BAILOUT_HELD_RATIO * limit
                        and size > BAILOUT_SIZE_RATIO * target):
                    return False
                victim = self._lru_victim(i)
                if victim is None:  # nothing evictable: the rest is reserved or already moving
                    if terminal:
                        self.usage[i] += size
                        return True
                    return False
                victim.moving = True
                if terminal:
                    self._busy.add(victim.key)
            first = False
            if terminal:
                self._delete(victim)
            elif not self._demote(victim, depth):
                with self.lock:
                    victim.moving = False
                return False
        if terminal:  # iteration cap reached: the terminal tier takes it anyway (reference behaviour)
            with self.lock:
                self.usage[i] += size
            return True
        return False

    def _lru_victim(self, i: int) -> Entry | None:
        best = None
        for e in self.entries.values():
            if e.tier == i and not e.moving:
                if best is None or (e.last_access, e.access_count) < (best.last_access, best.access_count):
                    best = e
        return best

    def _delete(self, victim: Entry) -> None:
        i = victim.tier
        with self.lock:
            if self.entries.get(victim.key) is victim:
                del self.entries[victim.key]
            self._sub(self.usage, i, victim.size)
            self._sub(self.resident, i, victim.size)
        try:
            self.tiers[i].delete(victim.key)
        finally:
            with self.lock:
                self._busy.discard(victim.key)
        self.rec.add("evictions")

    def _demote(self, victim: Entry, depth: int) -> bool:
        src_i = victim.tier
        dst_i = src_i + 1
        if not self._ensure_space(dst_i, victim.size, depth + 1):
            return False
        src, dst = self.tiers[src_i], self.tiers[dst_i]
        try:
            dst.write(victim.key, victim.size, lambda off, out: src.read_into(victim.key, off, out))
        except BaseException as exc:
            with self.lock:
                self._sub(self.usage, dst_i, victim.size)
            if isinstance(exc, TierFullError) and dst_i != self.terminal:
                return False  # the victim stays where it is
            raise
        with self.lock:
            victim.tier, victim.moving = dst_i, False
            self._sub(self.usage, src_i, victim.size)
            self._sub(self.resident, src_i, victim.size)
            self.resident[dst_i] += victim.size
        src.delete(victim.key)
        # eviction traffic counts in the tier byte counters, but not in latency samples (reference §5.3)
        self.rec.op(src.name, "read", victim.size, None)
        self.rec.op(dst.name, "write", victim.size, None)
        if self.trace:
            self.trace("Read", victim.size, src.label, victim.key, "Evict")
            self.trace("Write", victim.size, dst.label, victim.key, "Evict")
        self.rec.add("evictions")
        self.rec.add(f"offloads_{dst.name}")
        if dst.name == "storage":
            self.rec.add("storage_tokens_processed", victim.tokens)
        return True

    # --- reads -------------------------------------------------------------------------------------------
    def read(self, key: str) -> Timing | None:
        """Read the whole object from wherever it lives; None on a miss. Never promotes."""
        for _ in range(3):  # the object may move down a tier between lookup and I/O: look again
            with self.lock:
                e = self.entries.get(key)
                if e is None:
                    break
                e.last_access, e.access_count = time.monotonic(), e.access_count + 1
                tier, size = self.tiers[e.tier], e.size
            try:
                timing = tier.read(key, size)
            except ObjectMissing:
                continue
            self.rec.op(tier.name, "read", size, timing)
            self.rec.add("cache_hits")
            if self.trace:
                self.trace("Read", size, tier.label, key, "Decode")
            if tier.name == "storage":
                self.rec.add("storage_tokens_processed", size // self.bpt)
            return timing
        self.rec.add("cache_misses")
        return None

    def contains(self, key: str) -> bool:
        with self.lock:
            return key in self.entries

    def residency(self) -> dict:
        with self.lock:
            out = {f"{t.name}_entries": 0 for t in self.tiers}
            for e in self.entries.values():
                out[f"{self.tiers[e.tier].name}_entries"] += 1
            for i, t in enumerate(self.tiers):
                out[f"{t.name}_usage_bytes"] = self.usage[i]
            return out

    def consistent(self) -> bool:
        """At rest, reserved bytes == resident bytes == sum of entry sizes, per tier."""
        with self.lock:
            sums = [0] * len(self.tiers)
            for e in self.entries.values():
                sums[e.tier] += e.size
            return sums == self.usage == self.resident and self.underflows == 0
