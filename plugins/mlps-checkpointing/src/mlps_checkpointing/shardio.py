"""File I/O of one rank's checkpoint shards: aligned buffers, O_DIRECT or buffered+fsync+DONTNEED, page stamps.

Data layout: each rank fills one block-sized buffer with random bytes once. Before each block is written, the
first 8 bytes of every 4 KiB page are overwritten with a stamp ``rank<<44 | checkpoint<<32 | page`` (page counts
across the rank's files of that checkpoint), so no two pages on disk are equal (no dedupe) and every read can
check cheaply that it got the right page. Full-content blake2b digests are computed outside the timed loops.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
from dataclasses import dataclass

import numpy as np

from mlps_checkpointing.models import ALIGNMENT

PAGE_WORDS = ALIGNMENT // 8
O_DIRECT = getattr(os, "O_DIRECT", 0)


class ShardError(Exception):
    """A shard could not be written or read back as planned (message says which file and why)."""


class AlignedBuffer:
    """A page-aligned (mmap) block buffer with a uint64 page view for stamping."""

    def __init__(self, nbytes: int, seed: int | None = None):
        if nbytes <= 0 or nbytes % ALIGNMENT:
            raise ValueError(f"block size must be a positive multiple of {ALIGNMENT}, got {nbytes}")
        self.nbytes = nbytes
        self.map = mmap.mmap(-1, nbytes)
        self.view = memoryview(self.map)
        self.words = np.frombuffer(self.map, dtype=np.uint64).reshape(-1, PAGE_WORDS)
        if seed is not None:
            self.words[:] = np.random.default_rng(seed).integers(0, 2 ** 63, size=self.words.shape,
                                                                  dtype=np.uint64)

    def clone(self) -> "AlignedBuffer":
        """Another aligned buffer with the same content (one per parallel request)."""
        other = AlignedBuffer(self.nbytes)
        other.view[:] = self.view
        return other

    def stamp(self, base: int, first_page: int, npages: int) -> None:
        self.words[:npages, 0] = np.arange(base + first_page, base + first_page + npages, dtype=np.uint64)

    def close(self) -> None:
        # numpy's view keeps an export of the mmap alive; drop ours and let the mapping go with the object.
        self.words = None
        self.view.release()


def stamp_base(rank: int, checkpoint: int) -> int:
    return (rank << 44) | (checkpoint << 32)


def direct_io_supported(folder: str) -> tuple[bool, str]:
    """Try an aligned O_DIRECT write in ``folder``; (supported, reason). tmpfs and some FUSE mounts refuse it."""
    if not O_DIRECT:
        return False, "O_DIRECT is not available on this platform"
    path = os.path.join(folder, f".mlps_odirect_probe_{os.getpid()}")
    buf = AlignedBuffer(ALIGNMENT)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | O_DIRECT, 0o644)
        try:
            os.pwrite(fd, buf.view, 0)
        finally:
            os.close(fd)
        return True, "aligned O_DIRECT write succeeded"
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
            return False, f"O_DIRECT refused by the filesystem ({exc.strerror})"
        raise
    finally:
        buf.close()
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


@dataclass
class ShardResult:
    path: str
    nbytes: int
    fsynced: bool = False
    cache_dropped: bool = False


def _buffers(buf) -> list:
    return list(buf) if isinstance(buf, (list, tuple)) else [buf]


def _each_block(nbytes: int, bufs: list, work) -> None:
    """Call ``work(buf, offset, length)`` for every block: in order with one buffer; with T buffers, T threads
    each take every T-th block with their own buffer (T requests in flight, like fio's iodepth)."""
    block = bufs[0].nbytes
    blocks = [(o, min(block, nbytes - o)) for o in range(0, nbytes, block)]
    if len(bufs) == 1:
        for offset, length in blocks:
            work(bufs[0], offset, length)
        return
    from concurrent.futures import ThreadPoolExecutor

    def lane(t: int) -> None:
        for offset, length in blocks[t::len(bufs)]:
            work(bufs[t], offset, length)

    with ThreadPoolExecutor(max_workers=len(bufs)) as pool:
        for future in [pool.submit(lane, t) for t in range(len(bufs))]:
            future.result()  # re-raises the first failure


def write_shard(path: str, nbytes: int, buf, stamp: int, first_page: int, *, direct: bool,
                fsync: bool, on_bytes=None) -> ShardResult:
    """Write ``nbytes`` (aligned) of stamped blocks; fsync; drop the file's cached pages when not direct.
    ``buf`` is one AlignedBuffer, or a list of equal ones for that many parallel requests."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (O_DIRECT if direct else 0)
    fd = os.open(path, flags, 0o644)
    result = ShardResult(path, 0)

    def write_block(b: AlignedBuffer, offset: int, length: int) -> None:
        b.stamp(stamp, first_page + offset // ALIGNMENT, length // ALIGNMENT)
        written = os.pwrite(fd, b.view[:length], offset)
        if written != length:
            raise ShardError(f"short write to {path}: {written} of {length} bytes at offset {offset}")
        if on_bytes is not None:
            on_bytes(length)

    try:
        _each_block(nbytes, _buffers(buf), write_block)
        result.nbytes = nbytes
        if fsync:
            os.fsync(fd)
            result.fsynced = True
        if not direct:
            # After fsync the pages are clean, so DONTNEED really evicts them: the reads must come from storage.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            result.cache_dropped = True
    finally:
        os.close(fd)
    return result


def read_shard(path: str, nbytes: int, buf, stamp: int, first_page: int, *, direct: bool,
               hasher=None) -> ShardResult:
    """Read a shard back, checking every page stamp; optionally feed the bytes (in order) to ``hasher``."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise ShardError(f"checkpoint file {path} does not exist") from None
    if size != nbytes:
        raise ShardError(f"checkpoint file {path} has {size} bytes, the plan says {nbytes}")
    bufs = _buffers(buf)[:1] if hasher is not None else _buffers(buf)
    fd = os.open(path, os.O_RDONLY | (O_DIRECT if direct else 0))
    result = ShardResult(path, 0)

    def read_block(b: AlignedBuffer, offset: int, length: int) -> None:
        got = os.preadv(fd, [b.view[:length]], offset)
        if got != length:
            raise ShardError(f"short read from {path}: {got} of {length} bytes at offset {offset}")
        npages, first = length // ALIGNMENT, first_page + offset // ALIGNMENT
        expected = np.arange(stamp + first, stamp + first + npages, dtype=np.uint64)
        stamps = b.words[:npages, 0]
        if not np.array_equal(stamps, expected):
            bad = int(np.flatnonzero(stamps != expected)[0])
            raise ShardError(f"{path}: page at offset {offset + bad * ALIGNMENT} holds stamp "
                             f"{int(stamps[bad]):#x}, expected {int(expected[bad]):#x} (stale or foreign data)")
        if hasher is not None:
            hasher.update(b.view[:length])

    try:
        if not direct:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            result.cache_dropped = True
        _each_block(nbytes, bufs, read_block)
        result.nbytes = nbytes
    finally:
        os.close(fd)
    return result


def expected_digest(nbytes: int, buf: AlignedBuffer, stamp: int, first_page: int) -> str:
    """blake2b of exactly the bytes ``write_shard`` writes for these arguments (regenerated, untimed)."""
    h = hashlib.blake2b(digest_size=16)
    offset = 0
    while offset < nbytes:
        length = min(buf.nbytes, nbytes - offset)
        buf.stamp(stamp, first_page + offset // ALIGNMENT, length // ALIGNMENT)
        h.update(buf.view[:length])
        offset += length
    return h.hexdigest()


def read_digest(path: str, nbytes: int, buf: AlignedBuffer, stamp: int, first_page: int, *, direct: bool) -> str:
    h = hashlib.blake2b(digest_size=16)
    read_shard(path, nbytes, buf, stamp, first_page, direct=direct, hasher=h)
    return h.hexdigest()
