"""The native checkpoint engine: ``mpirun -n N python -m mlps_checkpointing.engine ...``, one rank per accelerator.

Each rank writes its own shard files of every checkpoint (sized by the model's ZeRO/TP/PP layout), fsyncs them,
then the read phase reads them back. Page cache: O_DIRECT with aligned buffers where the filesystem takes it,
otherwise buffered writes, fsync, then ``posix_fadvise(DONTNEED)`` so reads come from storage. A checkpoint's
duration runs from a barrier before the first byte to the collective after the last rank finished; its rate is
all ranks' bytes / duration in GiB/s (DLIO's ``GB``). Rank 0 writes ``summary.json`` with DLIO's metric names
and ``checkpointing_ranks.json`` (per-file sizes, fsync and digests).

Errors are collective: a rank's failure is shared at the next synchronisation point and every rank exits 2 with
one message; a rank killed outright makes mpirun abort the job.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import time
from datetime import datetime, timezone

from mlps_checkpointing.models import ALIGNMENT, GIB, checkpoint_dir_name, get_model, rank_shards

MANIFEST = "mlps_checkpoints.json"
SEED = 0x6D6C7073
SUMMARY_MARKER = "MLPS_CHECKPOINT_SUMMARY "
FAULT_ENV = "MLPS_CHECKPOINTING_FAULT"  # test hook: "kill:rank=R:after_bytes=B" SIGKILLs rank R mid-write


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m mlps_checkpointing.engine", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--folder", required=True, help="checkpoint folder (already <checkpoint-folder>/<model>)")
    p.add_argument("--output-dir", required=True, help="where rank 0 writes summary.json")
    p.add_argument("--num-checkpoints-write", type=int, default=10)
    p.add_argument("--num-checkpoints-read", type=int, default=10)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--block-size", type=int, default=16 << 20)
    p.add_argument("--io-mode", choices=("auto", "direct", "buffered"), default="auto")
    p.add_argument("--io-threads", type=int, default=1,
                   help="parallel block requests per rank (1 = one synchronous stream, like torch.save)")
    p.add_argument("--no-fsync", dest="fsync", action="store_false")
    p.add_argument("--time-between-checkpoints", type=float, default=0.0)
    p.add_argument("--verify", choices=("none", "last", "all"), default="last",
                   help="checkpoints whose full content is blake2b-verified after the timed reads")
    return p.parse_args(argv)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Engine:
    def __init__(self, args, comm):
        self.args, self.comm = args, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.model = get_model(args.model)
        self.shards = rank_shards(self.model, self.size, self.rank, args.scale)
        self.first_pages = []
        page = 0
        for shard in self.shards:
            self.first_pages.append(page)
            page += shard.nbytes // ALIGNMENT
        self.folder = os.path.abspath(args.folder)
        self.records: list[dict] = []
        self.fault = _parse_fault(os.environ.get(FAULT_ENV), self.rank)
        self.bytes_written_total = 0

    # -- collective helpers ------------------------------------------------------------------------------
    def agree(self, error: str | None) -> None:
        """Synchronise; if any rank failed, every rank raises the first failure (lowest rank) and stops."""
        errors = self.comm.allgather(error)
        failed = [(r, e) for r, e in enumerate(errors) if e]
        if failed:
            rank, message = failed[0]
            raise SystemExit(f"rank {rank}: {message}" + (f" (and {len(failed) - 1} more ranks failed)"
                                                          if len(failed) > 1 else ""))

    def total(self, *values):
        return [self.comm.allreduce(v) for v in values]

    def pause(self) -> None:
        """DLIO's time_between_checkpoints: emulated compute before each save and load, outside the timing."""
        if self.args.time_between_checkpoints > 0:
            time.sleep(self.args.time_between_checkpoints)

    def log(self, message: str) -> None:
        if self.rank == 0:
            print(message, flush=True)

    # -- setup ---------------------------------------------------------------------------------------------
    def setup(self) -> tuple[bool, str, list[int]]:
        """Rank 0 checks the folder, free space and O_DIRECT; returns (direct, reason, checkpoints to read)."""
        decision = None
        if self.rank == 0:
            try:
                decision = self._rank0_setup()
            except (OSError, ValueError) as exc:
                decision = {"error": str(exc)}
        decision = self.comm.bcast(decision, root=0)
        if decision.get("error"):  # every rank holds the same decision: no need for agree()
            raise SystemExit(decision["error"])
        return decision["direct"], decision["reason"], decision["read_from"]

    def _rank0_setup(self) -> dict:
        a = self.args
        try:
            os.makedirs(self.folder, exist_ok=True)
            probe = os.path.join(self.folder, f".mlps_write_probe_{os.getpid()}")
            with open(probe, "wb") as fh:
                fh.write(b"x")
            os.unlink(probe)
        except OSError as exc:
            return {"error": f"checkpoint folder {self.folder} is not writable: {exc.strerror or exc}"}
        one_checkpoint = self.checkpoint_bytes()
        if a.num_checkpoints_write:
            # the old manifest no longer describes what is on disk once we start overwriting checkpoints
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.folder, MANIFEST))
            existing = sum(max(_size(os.path.join(self.folder, checkpoint_dir_name(k), f.name)), 0)
                           for k in range(a.num_checkpoints_write) for r in range(self.size)
                           for f in rank_shards(self.model, self.size, r, a.scale))
            needed = one_checkpoint * a.num_checkpoints_write - existing
            free = shutil.disk_usage(self.folder).free
            if needed > free:
                return {"error": f"not enough free space in {self.folder}: {a.num_checkpoints_write} checkpoints "
                                 f"need {needed} bytes ({needed / GIB:.3f} GiB), {free} bytes "
                                 f"({free / GIB:.3f} GiB) are free, short by {needed - free} bytes"}
        if a.io_mode == "buffered":
            direct, reason = False, "buffered I/O requested"
        else:
            from mlps_checkpointing.shardio import direct_io_supported
            direct, reason = direct_io_supported(self.folder)
            if a.io_mode == "direct" and not direct:
                return {"error": f"--io-mode direct: {reason} in {self.folder}"}
        read_from = list(range(a.num_checkpoints_write))
        if a.num_checkpoints_read and not a.num_checkpoints_write:
            read_from = self._checkpoints_on_disk()
            if isinstance(read_from, str):
                return {"error": read_from}
        return {"direct": direct, "reason": reason, "read_from": read_from}

    def checkpoint_bytes(self) -> int:
        return sum(f.nbytes for r in range(self.size) for f in rank_shards(self.model, self.size, r, self.args.scale))

    def _checkpoints_on_disk(self):
        """For a read-only invocation: the checkpoints a previous write invocation left, or why none can be read."""
        path = os.path.join(self.folder, MANIFEST)
        try:
            with open(path) as fh:
                manifest = json.load(fh)
        except FileNotFoundError:
            return (f"no checkpoint to read in {self.folder}: {MANIFEST} is missing, so no write invocation "
                    f"finished there; run with --num-checkpoints-write first")
        except (OSError, ValueError) as exc:
            return f"cannot read {path}: {exc}"
        want = {"model": self.model.name, "num_processes": self.size, "scale": self.args.scale}
        have = {k: manifest.get(k) for k in want}
        if have != want:
            return f"checkpoints in {self.folder} were written as {have}, this read asks for {want}"
        written = manifest.get("checkpoints") or []
        for k in written:
            for r in range(self.size):
                for f in rank_shards(self.model, self.size, r, self.args.scale):
                    p = os.path.join(self.folder, checkpoint_dir_name(k), f.name)
                    if _size(p) != f.nbytes:
                        return f"checkpoint {k + 1} is incomplete: {p} is missing or not {f.nbytes} bytes"
        return written or f"no checkpoint to read in {self.folder}: the manifest lists none"

    # -- phases --------------------------------------------------------------------------------------------
    def write_phase(self, buf, direct: bool) -> list[dict]:
        from mlps_checkpointing.shardio import ShardError, stamp_base, write_shard
        stats = []
        for k in range(self.args.num_checkpoints_write):
            cdir = os.path.join(self.folder, checkpoint_dir_name(k))
            if self.rank == 0:
                os.makedirs(cdir, exist_ok=True)
            self.pause()
            self.comm.Barrier()
            t0 = time.perf_counter()
            error, nbytes, fsyncs = None, 0, 0
            try:
                for shard, first in zip(self.shards, self.first_pages):
                    res = write_shard(os.path.join(cdir, shard.name), shard.nbytes, buf, stamp_base(self.rank, k),
                                      first, direct=direct, fsync=self.args.fsync, on_bytes=self._fault_tick)
                    nbytes += res.nbytes
                    fsyncs += res.fsynced
                    self.records.append({"phase": "write", "checkpoint": k, "file": res.path, "bytes": res.nbytes,
                                         "fsync": res.fsynced, "cache_dropped": res.cache_dropped})
            except (OSError, ShardError) as exc:
                error = f"writing checkpoint {k + 1}: {exc}"
            self.agree(error)
            duration = time.perf_counter() - t0
            total, files, total_fsyncs = self.total(nbytes, len(self.shards), fsyncs)
            stats.append({"checkpoint": k, "bytes": total, "seconds": duration, "GB_per_second": total / GIB / duration})
            self.log(f"write checkpoint {k + 1}/{self.args.num_checkpoints_write}: {total} bytes in {duration:.4f} s "
                     f"= {total / GIB / duration:.3f} GB/s; fsync {total_fsyncs}/{files} files")
        if self.rank == 0 and stats:
            self._write_manifest()
        return stats

    def read_phase(self, buf, direct: bool, read_from: list[int]) -> list[dict]:
        from mlps_checkpointing.shardio import ShardError, read_shard, stamp_base
        stats = []
        for i in range(self.args.num_checkpoints_read):
            k = read_from[i % len(read_from)]
            cdir = os.path.join(self.folder, checkpoint_dir_name(k))
            self.pause()
            self.comm.Barrier()
            t0 = time.perf_counter()
            error, nbytes = None, 0
            try:
                for shard, first in zip(self.shards, self.first_pages):
                    res = read_shard(os.path.join(cdir, shard.name), shard.nbytes, buf, stamp_base(self.rank, k),
                                     first, direct=direct)
                    nbytes += res.nbytes
                    self.records.append({"phase": "read", "checkpoint": k, "file": res.path, "bytes": res.nbytes,
                                         "cache_dropped": res.cache_dropped})
            except (OSError, ShardError) as exc:
                error = f"reading checkpoint {k + 1}: {exc}"
            self.agree(error)
            duration = time.perf_counter() - t0
            (total,) = self.total(nbytes)
            stats.append({"checkpoint": k, "bytes": total, "seconds": duration, "GB_per_second": total / GIB / duration})
            self.log(f"read checkpoint {k + 1} ({i + 1}/{self.args.num_checkpoints_read}): {total} bytes in "
                     f"{duration:.4f} s = {total / GIB / duration:.3f} GB/s; page stamps ok")
        return stats

    def verify(self, wbuf, rbuf, direct: bool, checkpoints: list[int]) -> dict:
        """Untimed: blake2b of the bytes written (regenerated) vs of the bytes read back from storage."""
        from mlps_checkpointing.shardio import ShardError, expected_digest, read_digest, stamp_base
        error, files, mismatches = None, [], 0
        try:
            for k in checkpoints:
                for shard, first in zip(self.shards, self.first_pages):
                    path = os.path.join(self.folder, checkpoint_dir_name(k), shard.name)
                    stamp = stamp_base(self.rank, k)
                    written = expected_digest(shard.nbytes, wbuf, stamp, first)
                    read = read_digest(path, shard.nbytes, rbuf, stamp, first, direct=direct)
                    mismatches += written != read
                    files.append({"checkpoint": k, "file": path, "written_blake2b": written, "read_blake2b": read,
                                  "match": written == read})
        except (OSError, ShardError) as exc:
            error = f"verifying: {exc}"
        self.agree(error)
        total_files, total_mismatches = self.total(len(files), mismatches)
        self.log(f"verify: blake2b of {total_files} files, written vs read: "
                 f"{'all equal' if not total_mismatches else f'{total_mismatches} DIFFER'}")
        return {"files": files, "files_verified": total_files, "mismatches": total_mismatches}

    def _write_manifest(self) -> None:
        manifest = {"model": self.model.name, "num_processes": self.size, "scale": self.args.scale,
                    "block_size": self.args.block_size, "checkpoints": list(range(self.args.num_checkpoints_write)),
                    "written_at": _now()}
        tmp = os.path.join(self.folder, MANIFEST + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(manifest, fh, indent=2)
        os.replace(tmp, os.path.join(self.folder, MANIFEST))

    def _fault_tick(self, nbytes: int) -> None:
        self.bytes_written_total += nbytes
        if self.fault is not None and self.bytes_written_total >= self.fault:
            print(f"rank {self.rank}: fault injection ({FAULT_ENV}), killing myself mid-write", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def _parse_fault(spec: str | None, rank: int):
    if not spec:
        return None
    fields = dict(part.split("=", 1) for part in spec.split(":")[1:] if "=" in part)
    if spec.startswith("kill") and int(fields.get("rank", -1)) == rank:
        return int(fields.get("after_bytes", 0))
    return None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def _phase_metrics(prefix: str, stats: list[dict]) -> dict:
    rates = [s["GB_per_second"] for s in stats]
    secs = [s["seconds"] for s in stats]
    return {f"{prefix}_checkpoint_io_GB_per_second": rates,
            f"{prefix}_checkpoint_duration_seconds": secs,
            f"{prefix}_checkpoint_io_mean_GB_per_second": statistics.fmean(rates),
            f"{prefix}_checkpoint_io_stdev_GB_per_second": statistics.pstdev(rates),
            f"{prefix}_checkpoint_duration_mean_seconds": statistics.fmean(secs),
            f"{prefix}_checkpoint_duration_stdev_seconds": statistics.pstdev(secs)}


def run(args) -> int:
    from mpi4py import MPI
    from mlps_checkpointing.shardio import AlignedBuffer

    comm = MPI.COMM_WORLD
    engine = Engine(args, comm)
    start = _now()
    direct, reason, read_from = engine.setup()
    engine.log(f"mlps checkpoint engine: {engine.model.name}, {engine.size} ranks, scale {args.scale}, "
               f"{'O_DIRECT' if direct else 'buffered + fsync + fadvise(DONTNEED)'} ({reason}), "
               f"fsync {'on' if args.fsync else 'OFF'}, folder {engine.folder}")
    wbuf = AlignedBuffer(args.block_size, seed=SEED + engine.rank)
    rbuf = AlignedBuffer(args.block_size)
    wbufs = [wbuf] + [wbuf.clone() for _ in range(args.io_threads - 1)]
    rbufs = [rbuf] + [AlignedBuffer(args.block_size) for _ in range(args.io_threads - 1)]
    write_stats = engine.write_phase(wbufs, direct)
    write_end = _now()
    read_stats = engine.read_phase(rbufs, direct, read_from) if args.num_checkpoints_read else []
    verified = []
    if args.verify != "none":
        touched = sorted({s["checkpoint"] for s in (read_stats or write_stats)})
        verified = touched if args.verify == "all" else touched[-1:]
    verification = engine.verify(wbuf, rbuf, direct, verified) if verified else {"files": [], "files_verified": 0,
                                                                                 "mismatches": 0}
    gathered = comm.gather({"rank": engine.rank, "host": socket.gethostname(), "records": engine.records,
                            "verification": verification["files"]}, root=0)
    if engine.rank == 0:
        metric = {"checkpoint_size_GB": engine.checkpoint_bytes() / GIB}
        if write_stats:
            metric.update(_phase_metrics("save", write_stats))
        if read_stats:
            metric.update(_phase_metrics("load", read_stats))
        summary = {"start": start, "write_end": write_end, "end": _now(), "engine": "mlps-native",
                   "workload": engine.model.workload, "num_accelerators": engine.size,
                   "num_hosts": len({g["host"] for g in gathered}), "hostname": socket.gethostname(),
                   "checkpoint_folder": engine.folder, "num_checkpoints_write": len(write_stats),
                   "num_checkpoints_read": len(read_stats), "scale": args.scale, "block_size": args.block_size,
                   "io_threads": args.io_threads,
                   "io": {"page_cache": "o_direct" if direct else "fadvise_dontneed", "o_direct": direct,
                          "reason": reason, "fsync": args.fsync},
                   "verification": {"mode": args.verify, "algorithm": "blake2b-128", "checkpoints": verified,
                                    "files_verified": verification["files_verified"],
                                    "mismatches": verification["mismatches"],
                                    "match": verification["mismatches"] == 0 and verification["files_verified"] > 0},
                   "metric": metric}
        os.makedirs(args.output_dir, exist_ok=True)
        with open(os.path.join(args.output_dir, "checkpointing_ranks.json"), "w") as fh:
            json.dump(gathered, fh, indent=1)
        with open(os.path.join(args.output_dir, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=2)
        # also on stdout, for a launch where rank 0's host does not share the results directory
        print(SUMMARY_MARKER + json.dumps(summary), flush=True)
    comm.Barrier()
    return 0 if verification["mismatches"] == 0 else 3


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.block_size % ALIGNMENT or args.io_threads < 1:
        print(f"error: --block-size must be a multiple of {ALIGNMENT} and --io-threads at least 1", file=sys.stderr)
        return 2
    try:
        return run(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            from mpi4py import MPI
            if MPI.COMM_WORLD.Get_rank() == 0:  # every rank knows the failure; one line is enough
                print(f"error: {exc.code}", file=sys.stderr, flush=True)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
