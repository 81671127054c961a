"""Single-rank write and read bandwidth of the native checkpoint engine next to fio, same directory, same file
size, same block size, direct I/O on both sides when the directory takes O_DIRECT (else buffered with fsync).

Three rows per round, alternating order to spread drift:
  engine-io   the engine's shard I/O (mlps_checkpointing.shardio.write_shard/read_shard) on one file: open, write
              every block, fsync, close / open, read every block with page-stamp checks, close; wall-clock timed.
  engine-mpi  the whole engine under `mpirun -n 1` (llama3-8b layout scaled to the same total bytes: 2 shard
              files), its own per-checkpoint GB/s (mean of 3 checkpoints).
  fio-psync   fio, ioengine=psync iodepth=1 (the engine's synchronous pattern), end_fsync=1 for writes,
              fallocate=none (the engine writes into a fresh, truncated file without preallocation).
  engine-io-t16  the same with 16 parallel block requests (engine --io-threads 16, OPEN setting).
  fio-libaio  fio, ioengine=libaio iodepth=16: the counterpart of engine-io-t16, and the device's ceiling.
Medians of --repeats rounds. GiB/s throughout.

    python benchmarks/checkpointing_bench.py --dir /var/tmp/ckbench --size-mib 1024 --block-size-mib 16
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from mlps_checkpointing.models import GIB, MODELS
from mlps_checkpointing.shardio import AlignedBuffer, direct_io_supported, read_shard, stamp_base, write_shard


def engine_io(path: str, size: int, block: int, direct: bool, threads: int = 1) -> tuple[float, float]:
    first = AlignedBuffer(block, seed=1)
    wbuf = [first] + [first.clone() for _ in range(threads - 1)]
    rbuf = [AlignedBuffer(block) for _ in range(threads)]
    t0 = time.perf_counter()
    write_shard(path, size, wbuf, stamp_base(0, 0), 0, direct=direct, fsync=True)
    w = size / GIB / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    read_shard(path, size, rbuf, stamp_base(0, 0), 0, direct=direct)
    r = size / GIB / (time.perf_counter() - t0)
    os.unlink(path)
    return w, r


def engine_mpi(folder: str, size: int, block: int, direct: bool) -> tuple[float, float]:
    model = MODELS["llama3-8b"]
    scale = size / ((model.model_gb + model.optimizer_gb) * GIB)
    out = tempfile.mkdtemp(prefix="ckbench-out-")
    argv = ["mpirun", "-n", "1", "--allow-run-as-root", sys.executable, "-m", "mlps_checkpointing.engine",
            "--model", model.name, "--folder", folder, "--output-dir", out, "--scale", repr(scale),
            "--block-size", str(block), "--io-mode", "direct" if direct else "buffered",
            "--num-checkpoints-write", "3", "--num-checkpoints-read", "3", "--verify", "none"]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    with open(os.path.join(out, "summary.json")) as fh:
        metric = json.load(fh)["metric"]
    shutil.rmtree(out)
    shutil.rmtree(folder)
    return metric["save_checkpoint_io_mean_GB_per_second"], metric["load_checkpoint_io_mean_GB_per_second"]


def fio(path: str, size: int, block: int, direct: bool, engine: str, iodepth: int) -> tuple[float, float]:
    rates = []
    for rw in ("write", "read"):
        argv = ["fio", "--name=ck", f"--filename={path}", f"--rw={rw}", f"--bs={block}", f"--size={size}",
                f"--direct={int(direct)}", f"--ioengine={engine}", f"--iodepth={iodepth}", "--output-format=json",
                "--fallocate=none"]  # the engine does not preallocate either
        if rw == "write":
            argv.append("--end_fsync=1")
        proc = subprocess.run(argv, check=True, capture_output=True, text=True)
        job = json.loads(proc.stdout[proc.stdout.index("{"):])["jobs"][0][rw]
        rates.append(job["bw_bytes"] / GIB)
    os.unlink(path)
    return rates[0], rates[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default="/var/tmp/mlps-ckbench", help="a directory on the storage under test")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--block-size-mib", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if not shutil.which("fio"):
        print("fio is not installed (apt-get install fio)", file=sys.stderr)
        return 2
    os.makedirs(a.dir, exist_ok=True)
    size, block = a.size_mib << 20, a.block_size_mib << 20
    direct, why = direct_io_supported(a.dir)
    print(f"dir {a.dir}, file {a.size_mib} MiB, block {a.block_size_mib} MiB, "
          f"{'O_DIRECT' if direct else 'buffered + fsync'} ({why}), {a.repeats} rounds")
    rows = {"engine-io": [], "engine-mpi": [], "fio-psync": [], "engine-io-t16": [], "fio-libaio": []}
    target = os.path.join(a.dir, "ckbench.dat")
    for i in range(a.repeats):
        order = list(rows) if i % 2 == 0 else list(reversed(rows))
        for name in order:
            if name == "engine-io":
                rows[name].append(engine_io(target, size, block, direct))
            elif name == "engine-mpi":
                rows[name].append(engine_mpi(os.path.join(a.dir, "ckpt"), size, block, direct))
            elif name == "engine-io-t16":
                rows[name].append(engine_io(target, size, block, direct, threads=16))
            elif name == "fio-psync":
                rows[name].append(fio(target, size, block, direct, "psync", 1))
            else:
                rows[name].append(fio(target, size, block, direct, "libaio", 16))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(r for _, r in v)) for k, v in rows.items()}
    print(f"{'':14} {'write GiB/s':>12} {'read GiB/s':>12}   (median of {a.repeats}; all rounds below)")
    for name, (w, r) in med.items():
        runs = "  ".join(f"{x:.2f}/{y:.2f}" for x, y in rows[name])
        print(f"{name:14} {w:12.3f} {r:12.3f}   [{runs}]")
    for name, base in (("engine-io", "fio-psync"), ("engine-mpi", "fio-psync"), ("engine-io-t16", "fio-libaio")):
        (w, r), (bw, br) = med[name], med[base]
        print(f"{name} / {base}: write {w / bw:.0%}, read {r / br:.0%}")
    shutil.rmtree(a.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
