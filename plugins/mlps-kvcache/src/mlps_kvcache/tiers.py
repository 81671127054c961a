"""The three cache tiers: GPU (torch CUDA), CPU (RAM) and storage (one file per object).

Every operation returns ``Timing(total, device, host)`` in seconds. I/O is chunked (``CHUNK`` bytes) through
per-thread buffers, so an in-flight write or read holds one chunk, never a whole object; only objects that live
in the CPU or GPU tier occupy memory, bounded by those tiers' capacities.

Storage: O_DIRECT with page-aligned buffers when the filesystem accepts it (probed at start); otherwise
buffered I/O with fsync after writes and ``posix_fadvise(DONTNEED)`` before reads, and the fallback is recorded.
Host time is data generation, open/close and checks; device time is the pwrite+fsync or pread system calls.
Writes overlap the generation of the next chunk with the write of the current one (two buffers per thread).
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mlps_kvcache.sizing import CHUNK, MAX_WORKERS

ALIGN = 4096
Fill = Callable[[int, np.ndarray], None]  # fill(offset, out): write object bytes [offset, offset+len(out))


@dataclass
class Timing:
    total: float
    device: float
    host: float


class TierFullError(Exception):
    """The backing store refused the bytes (ENOSPC, CUDA out of memory)."""


class Aborted(Exception):
    """The run is stopping: an operation in flight gives up between chunks (its partial file is removed)."""


class ObjectMissing(Exception):
    """The object vanished between lookup and I/O (evicted concurrently): counted as a miss."""


class _Buffers(threading.local):
    """Two page-aligned chunk buffers per thread (mmap memory is page aligned, as O_DIRECT needs): a writer
    fills one while the other is being written."""

    def get(self, which: int = 0) -> np.ndarray:
        arrs = getattr(self, "arrs", None)
        if arrs is None:
            self.mms = [mmap.mmap(-1, CHUNK), mmap.mmap(-1, CHUNK)]
            arrs = self.arrs = [np.frombuffer(mm, dtype=np.uint8) for mm in self.mms]
        return arrs[which]


_BUFFERS = _Buffers()
_IO_POOL = None
_IO_POOL_LOCK = threading.Lock()


def _io_pool():
    """Threads that issue storage writes while their caller generates the next chunk (one in flight per writer,
    so the pool never needs more threads than there are concurrent writers)."""
    global _IO_POOL
    with _IO_POOL_LOCK:
        if _IO_POOL is None:
            from concurrent.futures import ThreadPoolExecutor
            _IO_POOL = ThreadPoolExecutor(max_workers=MAX_WORKERS + 16, thread_name_prefix="kvcache-io")
        return _IO_POOL


def _timed_pwrite(fd: int, view: memoryview, offset: int) -> float:
    t0 = time.perf_counter()
    _pwrite_all(fd, view, offset)
    return time.perf_counter() - t0


class Tier:
    name = "tier"
    label = "Tier-?"

    def __init__(self, capacity: float):
        self.capacity = capacity

    def write(self, key: str, size: int, fill: Fill) -> Timing:
        raise NotImplementedError

    def read(self, key: str, size: int) -> Timing:
        raise NotImplementedError

    def read_into(self, key: str, offset: int, out: np.ndarray) -> None:
        """Copy bytes of a resident object into ``out`` (the source side of a demotion)."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "capacity_bytes": None if self.capacity == float("inf") else int(self.capacity)}


class CPUTier(Tier):
    name, label = "cpu", "Tier-1"

    def __init__(self, capacity: float):
        super().__init__(capacity)
        self._objects: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def write(self, key, size, fill):
        t0 = time.perf_counter()
        arr = np.empty(size, dtype=np.uint8)
        for off in range(0, size, CHUNK):
            fill(off, arr[off:off + CHUNK])
        with self._lock:
            self._objects[key] = arr
        dt = time.perf_counter() - t0
        return Timing(dt, dt, dt)

    def _get(self, key):
        with self._lock:
            arr = self._objects.get(key)
        if arr is None:
            raise ObjectMissing(key)
        return arr

    def read(self, key, size):
        t0 = time.perf_counter()
        arr, buf = self._get(key), _BUFFERS.get()
        for off in range(0, arr.shape[0], CHUNK):  # a full copy of the object, one chunk at a time
            piece = arr[off:off + CHUNK]
            buf[:piece.shape[0]] = piece
        dt = time.perf_counter() - t0
        return Timing(dt, dt, dt)

    def read_into(self, key, offset, out):
        arr = self._get(key)
        out[:] = arr[offset:offset + out.shape[0]]

    def delete(self, key):
        with self._lock:
            self._objects.pop(key, None)


def cuda_status() -> tuple[bool, str]:
    """Whether a CUDA device is usable through torch, and why not."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    try:
        if not torch.cuda.is_available():
            return False, f"torch {torch.__version__} sees no CUDA device"
        return True, f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}"
    except Exception as exc:  # driver problems surface here
        return False, f"CUDA unusable: {exc}"


class GPUTier(Tier):
    """Objects as uint8 CUDA tensors; transfers go through a pinned per-thread staging chunk."""

    name, label = "gpu", "Tier-0"

    def __init__(self, capacity: float, device: int = 0):
        import torch

        super().__init__(capacity)
        self._torch = torch
        self._device = torch.device("cuda", device)
        self._objects: dict = {}
        self._lock = threading.Lock()
        self._staging = threading.local()

    def _pinned(self):
        st = getattr(self._staging, "buf", None)
        if st is None:
            st = self._staging.buf = self._torch.empty(CHUNK, dtype=self._torch.uint8, pin_memory=True)
        return st

    def write(self, key, size, fill):
        torch = self._torch
        t0 = time.perf_counter()
        try:
            dev = torch.empty(size, dtype=torch.uint8, device=self._device)
        except torch.cuda.OutOfMemoryError as exc:
            raise TierFullError(f"GPU out of memory for {size} bytes") from exc
        staging = self._pinned()
        host = staging.numpy()
        for off in range(0, size, CHUNK):
            n = min(CHUNK, size - off)
            fill(off, host[:n])
            dev[off:off + n].copy_(staging[:n], non_blocking=True)
            torch.cuda.synchronize(self._device)  # staging is reused by the next chunk
        with self._lock:
            self._objects[key] = dev
        dt = time.perf_counter() - t0
        return Timing(dt, dt, dt)

    def _get(self, key):
        with self._lock:
            dev = self._objects.get(key)
        if dev is None:
            raise ObjectMissing(key)
        return dev

    def read(self, key, size):
        t0 = time.perf_counter()
        dev, staging = self._get(key), self._pinned()
        for off in range(0, dev.shape[0], CHUNK):
            n = min(CHUNK, dev.shape[0] - off)
            staging[:n].copy_(dev[off:off + n], non_blocking=True)
            self._torch.cuda.synchronize(self._device)
        dt = time.perf_counter() - t0
        return Timing(dt, dt, dt)

    def read_into(self, key, offset, out):
        dev = self._get(key)
        out[:] = dev[offset:offset + out.shape[0]].cpu().numpy()

    def delete(self, key):
        with self._lock:
            self._objects.pop(key, None)

    def describe(self):
        return {**super().describe(), "device": str(self._device),
                "device_name": self._torch.cuda.get_device_name(self._device)}


class NullTier(Tier):
    """Trace mode: keeps the accounting of a tier, moves no bytes, takes no time."""

    direct, direct_reason, integrity_failures = False, "trace mode: no I/O", 0

    def __init__(self, name: str, label: str, capacity: float):
        super().__init__(capacity)
        self.name, self.label = name, label
        self.abort = threading.Event()

    def write(self, key, size, fill):
        return Timing(0.0, 0.0, 0.0)

    def read(self, key, size):
        return Timing(0.0, 0.0, 0.0)

    def read_into(self, key, offset, out):
        out[:] = 0

    def delete(self, key):
        pass

    def describe(self):
        return {**super().describe(), "trace_only": True}


_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.-]")


def probe_direct_io(directory: Path) -> tuple[bool, str]:
    """Try one aligned O_DIRECT write in ``directory``; returns (usable, reason)."""
    if not hasattr(os, "O_DIRECT"):
        return False, "this platform has no O_DIRECT"
    probe = directory / ".mlps_kvcache_odirect_probe"
    buf = mmap.mmap(-1, ALIGN)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
        try:
            os.write(fd, buf)
        finally:
            os.close(fd)
        return True, "O_DIRECT accepted"
    except OSError as exc:
        return False, f"O_DIRECT refused by the filesystem ({errno.errorcode.get(exc.errno, exc.errno)})"
    finally:
        buf.close()
        try:
            probe.unlink()
        except OSError:
            pass


class StorageTier(Tier):
    """One file per object in the cache directory."""

    name, label = "storage", "Tier-2"

    def __init__(self, directory: Path, capacity: float, direct: bool | None = None,
                 check: Callable[[str, int, np.ndarray], bool] | None = None):
        super().__init__(capacity)
        self.directory = Path(directory)
        usable, reason = probe_direct_io(self.directory)
        if direct is False:
            usable, reason = False, "buffered I/O requested"
        self.direct, self.direct_reason = usable, reason
        self._check = check
        self.integrity_failures = 0
        self.abort = threading.Event()  # set when the run stops: in-flight objects are dropped, not finished

    def path(self, key: str) -> Path:
        return self.directory / (_SAFE_KEY.sub("_", key) + ".kv")

    def _flags(self, base: int) -> int:
        return base | (os.O_DIRECT if self.direct else 0)

    def write(self, key, size, fill):
        """Generation of chunk i+1 overlaps the write of chunk i: ``total`` is the wall time, ``host`` the
        generation/open/close time and ``device`` the write+fsync system-call time (they overlap, so
        host + device can exceed total)."""
        host = device = 0.0
        t0 = time.perf_counter()
        path = self.path(key)
        fd = os.open(path, self._flags(os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 0o600)
        pending = None
        try:
            host += time.perf_counter() - t0
            for i, off in enumerate(range(0, size, CHUNK)):
                if self.abort.is_set():
                    raise Aborted(key)
                buf = _BUFFERS.get(i % 2)  # the write that used this buffer (chunk i-2) has completed
                n = min(CHUNK, size - off)
                t1 = time.perf_counter()
                fill(off, buf[:n])
                length = n
                if self.direct and n % ALIGN:  # O_DIRECT needs whole blocks: pad, truncate afterwards
                    length = n + ALIGN - n % ALIGN
                    buf[n:length] = 0
                host += time.perf_counter() - t1
                if pending is not None:
                    device += pending.result()
                pending = _io_pool().submit(_timed_pwrite, fd, memoryview(buf)[:length], off)
            if pending is not None:
                device, pending = device + pending.result(), None
            t4 = time.perf_counter()
            if self.direct and size % ALIGN:
                os.ftruncate(fd, size)
            os.fsync(fd)
            device += time.perf_counter() - t4
        except BaseException as exc:
            if pending is not None:
                pending.exception()  # never close the fd under a write still in flight
            os.close(fd)
            _unlink(path)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise TierFullError(f"no space left in {self.directory}") from exc
            raise
        t5 = time.perf_counter()
        os.close(fd)
        host += time.perf_counter() - t5
        return Timing(time.perf_counter() - t0, device, host)

    def read(self, key, size):
        host = device = 0.0
        t0 = time.perf_counter()
        try:
            fd = os.open(self.path(key), self._flags(os.O_RDONLY))
        except FileNotFoundError:
            raise ObjectMissing(key) from None
        buf = _BUFFERS.get()
        try:
            if not self.direct:  # drop clean cached pages so the read goes to the device
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            host += time.perf_counter() - t0
            for off in range(0, size, CHUNK):
                if self.abort.is_set():
                    raise Aborted(key)
                n = min(CHUNK, size - off)
                length = n + (-n % ALIGN) if self.direct else n
                t1 = time.perf_counter()
                got = os.preadv(fd, [memoryview(buf)[:length]], off)
                t2 = time.perf_counter()
                device += t2 - t1
                if off == 0 and self._check is not None and got >= 16 and not self._check(key, 0, buf[:got]):
                    self.integrity_failures += 1
                host += time.perf_counter() - t2
        finally:
            t3 = time.perf_counter()
            os.close(fd)
            host += time.perf_counter() - t3
        return Timing(host + device, device, host)

    def read_into(self, key, offset, out):
        with open(self.path(key), "rb") as fh:
            fh.seek(offset)
            fh.readinto(memoryview(out))

    def delete(self, key):
        _unlink(self.path(key))

    def describe(self):
        return {**super().describe(), "directory": str(self.directory), "direct_io": self.direct,
                "direct_io_reason": self.direct_reason}


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
