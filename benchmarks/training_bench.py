"""Orchestration overhead of `mlps training run` over DLIO itself (figures printed, not asserted).

Generates a tiny unet3d-shaped dataset once with DLIO, then alternates, N times:
  A. `mlps training run ...` (only the training plugin loaded), wall time of the whole command;
  B. the exact DLIO command line that A printed under --what-if, run directly (same mpirun, same overrides),
     wall time.
The headline figure is measured inside each A run, so it is immune to DLIO's own run-to-run noise:
overhead = A's wall time - the wall time of the DLIO process (mpirun included) that mlps's executor recorded in
the metadata (`command_output_files[0].duration`). A - B (paired) is printed as a cross-check; on a loaded
machine it is dominated by DLIO's variance. mlps's start-up + prepare + rules gate + build is also timed alone
as `--what-if`. A's time is also compared with DLIO's own
start-to-end time from summary.json, which leaves out DLIO's import and MPI start-up (most of a tiny run).

Usage: python benchmarks/training_bench.py [N=3] [RANKS=2]   (needs DLIO 2.0.0 and mpirun; run as root OK)
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
DATASET = ["dataset.num_files_train=16", "dataset.record_length=65536", "dataset.record_length_stdev=0",
           "dataset.record_length_resize=65536"]
TRAINING = ["reader.batch_size=1", "train.epochs=2", "train.computation_time=0.01", "reader.read_threads=1"]


def env() -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLPS_")}
    base["MLPS_LOAD_PLUGINS"] = "training"
    return base


def timed(argv: list[str], cwd=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(), cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed


def mlps_args(command: str, root: Path, ranks: int, *extra: str) -> list[str]:
    common = [str(BIN / "mlps"), "training", command, "-m", "unet3d", "--data-dir", str(root / "data"),
              "--results-dir", str(root / "results"), "--allow-run-as-root", "--oversubscribe", "-aip"]
    if command == "datagen":
        return common + ["--num-processes", str(ranks), "--params", *DATASET]
    return common + ["-at", "h100", "-na", str(ranks), "-cm", "0.0001", *extra, "--params", *DATASET, *TRAINING]


def direct_line(root: Path, ranks: int, run_dir: Path) -> list[str]:
    """The DLIO line mlps would run, from --what-if, pointed at a fresh hydra dir."""
    out = subprocess.run(mlps_args("run", root, ranks, "--what-if"), capture_output=True, text=True, env=env(),
                         check=True).stdout
    argv = shlex.split(next(line for line in out.splitlines() if "dlio_benchmark" in line))
    return [f"++hydra.run.dir={run_dir}" if a.startswith("++hydra.run.dir=") else a for a in argv]


def dlio_seconds(summary: Path) -> float:
    from mlps_training.results import dlio_runtime_seconds

    return dlio_runtime_seconds(json.loads(summary.read_text()))


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ranks = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with tempfile.TemporaryDirectory(prefix="training_bench_") as tmp:
        root = Path(tmp)
        timed(mlps_args("datagen", root, ranks))
        mlps_wall, direct_wall, mlps_minus_dlio, what_if, in_run = [], [], [], [], []
        for i in range(n):
            what_if.append(timed(mlps_args("run", root, ranks, "--what-if")))
            mlps_wall.append(timed(mlps_args("run", root, ranks)))
            leaf = sorted((root / "results" / "training" / "unet3d" / "run").iterdir())[-1]
            mlps_minus_dlio.append(mlps_wall[-1] - dlio_seconds(leaf / "summary.json"))
            meta = json.loads(next(leaf.glob("training_*_metadata.json")).read_text())
            in_run.append(mlps_wall[-1] - meta["command_output_files"][0]["duration"])
            run_dir = root / f"direct_{i}"
            run_dir.mkdir()
            direct_wall.append(timed(direct_line(root, ranks, run_dir), cwd=run_dir))
    diffs = [a - b for a, b in zip(mlps_wall, direct_wall)]
    med = statistics.median
    print(f"training run, {ranks} ranks, 16 files x 64 KiB, 2 epochs; {n} alternating repeats (medians)")
    print(f"  mlps training run wall:            {med(mlps_wall):7.2f} s   {['%.2f' % x for x in mlps_wall]}")
    print(f"  direct mpirun dlio_benchmark wall: {med(direct_wall):7.2f} s   {['%.2f' % x for x in direct_wall]}")
    print(f"  overhead = mlps wall - DLIO process wall (same run): {med(in_run):5.2f} s   "
          f"{['%.2f' % x for x in in_run]}")
    print(f"  mlps wall - direct wall (paired):     {med(diffs):7.2f} s   {['%.2f' % x for x in diffs]}")
    print(f"  mlps training run --what-if wall:  {med(what_if):7.2f} s   (start-up, prepare, rules gate, build)")
    print(f"  mlps wall - DLIO summary start..end: {med(mlps_minus_dlio):5.2f} s   (includes DLIO/TensorFlow import "
          f"and MPI start-up, which the direct run pays too)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
