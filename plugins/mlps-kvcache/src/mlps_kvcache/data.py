"""Deterministic, dedup-proof object bytes, generated cheaply and in chunks.

The bytes of an object depend only on (key, seed): block ``b`` (4 KiB) of an object is a 4 KiB window of a
seeded random pool, starting at an offset derived from the key's hash, with its first 16 bytes overwritten by
``(entry_seed, b)`` as two little-endian uint64. Two full blocks can only be equal when they have the same
entry seed (same key, up to a 64-bit hash collision) and the same index, so there are no duplicate 4 KiB
blocks within an object or across objects; a storage system's dedup cannot shrink the traffic.

Generation is chunked (any chunk starting on a 4 KiB boundary gives the same bytes as a whole-object fill), so
writers never hold a whole object in memory. The reference stamps by XOR instead of overwrite (spec §5.4);
the guarantee is the same, ours is cheaper and exact.
"""

from __future__ import annotations

import hashlib

import numpy as np

BLOCK = 4096
_WORDS_PER_BLOCK = BLOCK // 8
from mlps_kvcache.sizing import POOL_BYTES as DEFAULT_POOL_BYTES  # the pool is kept twice: 32 MiB resident
_MASK64 = (1 << 64) - 1


def entry_seed(key: str, seed: int) -> int:
    """The per-object seed: the first 8 bytes (little-endian) of SHA-256(key) XOR the global seed."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "little") ^ (int(seed) & _MASK64)) & _MASK64


class DataGenerator:
    """Fills buffers with the bytes of object ``key`` at a given offset."""

    def __init__(self, seed: int = 0, pool_bytes: int = DEFAULT_POOL_BYTES):
        if pool_bytes % BLOCK or pool_bytes <= 0:
            raise ValueError("pool_bytes must be a positive multiple of 4096")
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        pool = rng.integers(0, 1 << 63, size=pool_bytes // 8, dtype=np.int64).view(np.uint8)
        # The pool twice in a row: any window of up to pool_bytes is one contiguous slice (no wrap handling).
        self._pool2 = np.concatenate([pool, pool])
        self.pool_bytes = pool_bytes

    def fill(self, key: str, offset: int, out) -> None:
        """Write bytes ``[offset, offset + len(out))`` of object ``key`` into ``out`` (a writable buffer)."""
        if offset % BLOCK:
            raise ValueError("offset must be a multiple of 4096")
        dst = np.frombuffer(out, dtype=np.uint8) if not isinstance(out, np.ndarray) else out
        n = dst.shape[0]
        es = entry_seed(key, self.seed)
        base = (es % (self.pool_bytes // BLOCK)) * BLOCK
        first_block = offset // BLOCK
        done = 0
        while done < n:
            start = (base + offset + done) % self.pool_bytes
            step = min(n - done, self.pool_bytes)
            dst[done:done + step] = self._pool2[start:start + step]
            done += step
        self._stamp(dst, es, first_block)

    @staticmethod
    def _stamp(dst: np.ndarray, es: int, first_block: int) -> None:
        n = dst.shape[0]
        full = n // BLOCK
        if full:
            words = dst[:full * BLOCK].view(np.uint64).reshape(full, _WORDS_PER_BLOCK)
            words[:, 0] = np.uint64(es)
            words[:, 1] = np.arange(first_block, first_block + full, dtype=np.uint64)
        tail = n - full * BLOCK
        if tail >= 16:  # a partial last block gets the same stamp where it fits
            t = dst[full * BLOCK:full * BLOCK + 16].view(np.uint64)
            t[0] = np.uint64(es)
            t[1] = np.uint64(first_block + full)

    def check(self, key: str, offset: int, buf) -> bool:
        """Cheap integrity check of data read back: the stamp of the first block of ``buf`` is right."""
        view = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
        if view.shape[0] < 16 or offset % BLOCK:
            return True
        words = view[:16].view(np.uint64)
        return int(words[0]) == entry_seed(key, self.seed) and int(words[1]) == offset // BLOCK

    def object_bytes(self, key: str, size: int) -> bytes:
        """The whole object as bytes (tests and small objects only)."""
        out = np.empty(size, dtype=np.uint8)
        self.fill(key, 0, out)
        return out.tobytes()
