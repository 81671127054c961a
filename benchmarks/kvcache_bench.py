"""Storage-tier bandwidth of the kvcache engine vs fio, side by side, and peak RSS vs the printed estimate.

Part 1 (I/O path): N threads each write K objects of S bytes through the engine's StorageTier (data
generation, O_DIRECT 4 MiB pwrite, fsync per object: exactly what a prefill write does), then read them back
whole (O_DIRECT 4 MiB preadv: what a decode read does). fio does the same on the same directory: numjobs=N,
K files of S bytes per job written/read one after another (file_service_type=sequential), bs=4M, psync,
direct=1 when the engine uses O_DIRECT, fsync on close, no preallocation. Repetitions alternate engine and
fio, alternating which goes first; the medians of 5 are printed with their ratio.

Part 2 (whole engine, storage-bound): a worker run with GPU and CPU tiers at 0; its storage read/write
bandwidth, and its peak RSS (ru_maxrss) against the estimate the engine prints and checks before starting.

    .venv/bin/python benchmarks/kvcache_bench.py [--dir DIR] [--object-mib 256] [--threads 4] [--objects 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlps_kvcache.data import DataGenerator
from mlps_kvcache.tiers import StorageTier

MIB = 1 << 20
GIB = 1 << 30


HOST_SHARE: dict = {"write": [], "read": []}  # host time / total time of each engine operation


def engine_io(directory: Path, size: int, threads: int, objects: int) -> tuple[float, float, bool]:
    """(write GiB/s, read GiB/s, O_DIRECT used) of the engine's storage tier."""
    gen = DataGenerator(42)
    tier = StorageTier(directory, float("inf"), check=gen.check)

    def phase(op):
        def work(t):
            for k in range(objects):
                key = f"bench_{t}_{k}"
                if op == "write":
                    timing = tier.write(key, size, lambda off, out, key=key: gen.fill(key, off, out))
                else:
                    timing = tier.read(key, size)
                HOST_SHARE[op].append(timing.host / timing.total)
        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        start = time.perf_counter()
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        return threads * objects * size / GIB / (time.perf_counter() - start)

    write = phase("write")
    read = phase("read")
    assert tier.integrity_failures == 0
    for t in range(threads):
        for k in range(objects):
            tier.delete(f"bench_{t}_{k}")
    return write, read, tier.direct


def fio_io(directory: Path, size: int, threads: int, objects: int, direct: bool) -> tuple[float, float]:
    common = ["fio", "--name=kv", f"--directory={directory}", "--bs=4M", f"--size={size * objects}",
              f"--nrfiles={objects}", "--file_service_type=sequential", f"--numjobs={threads}",
              f"--direct={int(direct)}", "--ioengine=psync", "--fallocate=none", "--group_reporting",
              "--output-format=json"]

    def run(rw, extra=()):
        out = subprocess.run([*common, f"--rw={rw}", *extra], capture_output=True, text=True, check=True).stdout
        job = json.loads(out[out.index("{"):])["jobs"][0][rw if rw == "read" else "write"]
        return job["io_bytes"] / GIB / (job["runtime"] / 1000.0)

    write = run("write", ["--fsync_on_close=1"])
    read = run("read")
    for f in directory.glob("kv.*"):
        f.unlink()
    return write, read


def whole_engine(directory: Path, users: int, duration: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="kvbench-out-"))
    try:
        cmd = [sys.executable, "-m", "mlps_kvcache.worker", "--out-dir", str(out), "--cache-dir", str(directory),
               "--model", "llama3.1-8b", "--num-users", str(users), "--duration", str(duration),
               "--gpu-mem-gb", "0", "--cpu-mem-gb", "0", "--generation-mode", "none"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads((out / "kvcache_rank0.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="directory on the storage to test [a temp dir]")
    ap.add_argument("--object-mib", type=int, default=256, help="object size (256 MiB = 2,048 llama3.1-8b tokens)")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--objects", type=int, default=4, help="objects per thread")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--duration", type=int, default=20)
    args = ap.parse_args()
    if shutil.which("fio") is None:
        print("fio is not installed (apt-get install fio)", file=sys.stderr)
        return 2
    base = args.dir or Path(tempfile.mkdtemp(prefix="kvbench-", dir="/var/tmp"))
    work = base / "kvbench"
    work.mkdir(parents=True, exist_ok=True)
    size = args.object_mib * MIB
    print(f"dir {work}; objects {args.object_mib} MiB x {args.objects} per thread x {args.threads} threads; "
          f"{args.reps} alternating repetitions")
    rows = {"engine_write": [], "engine_read": [], "fio_write": [], "fio_read": []}
    direct = True
    try:
        for rep in range(args.reps):
            if rep % 2:  # alternate which tool goes first, so drift on a shared disk hits both alike
                fw, fr = fio_io(work, size, args.threads, args.objects, direct)
                w, r, direct = engine_io(work, size, args.threads, args.objects)
            else:
                w, r, direct = engine_io(work, size, args.threads, args.objects)
                fw, fr = fio_io(work, size, args.threads, args.objects, direct)
            for key, value in zip(rows, (w, r, fw, fr)):
                rows[key].append(value)
            print(f"  rep {rep + 1}: engine write {w:.3f} read {r:.3f} GiB/s | fio write {fw:.3f} read {fr:.3f} GiB/s")
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"O_DIRECT: {direct}; engine host share of operation time (data generation, open/close, check): "
              f"write {statistics.median(HOST_SHARE['write']):.1%}, read {statistics.median(HOST_SHARE['read']):.1%}")
        print(f"median write GiB/s: engine {med['engine_write']:.3f}  fio {med['fio_write']:.3f}  "
              f"ratio {med['engine_write'] / med['fio_write']:.1%}")
        print(f"median read  GiB/s: engine {med['engine_read']:.3f}  fio {med['fio_read']:.3f}  "
              f"ratio {med['engine_read'] / med['fio_read']:.1%}")
        result = whole_engine(work, args.users, args.duration)
        cs, mem = result["summary"]["cache_stats"], result["memory"]
        print(f"whole engine (llama3.1-8b, {args.users} users, {args.duration} s, GPU/CPU tiers 0): "
              f"storage read {cs['tier_storage_read_bandwidth_gbps']:.3f} GiB/s, write "
              f"{cs['tier_storage_write_bandwidth_gbps']:.3f} GiB/s, {result['requests_completed']} requests, "
              f"device read P95 {cs['storage_read_device_p95_ms']:.0f} ms")
        print(f"peak RSS {mem['peak_rss_bytes'] / MIB:.0f} MiB vs estimate {mem['peak_rss_estimate_bytes'] / MIB:.0f} MiB"
              f" ({'within' if mem['peak_rss_bytes'] <= mem['peak_rss_estimate_bytes'] else 'ABOVE'})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
