"""Time ``reportgen`` on a generated results tree (default 10,000 runs); prints the median of several rounds.

Usage: python benchmarks/reportgen_bench.py [--runs 10000] [--rounds 3]

The tree follows the core's layout (<benchmark>/<model>/<command>/<ts>/<benchmark>_<ts>_metadata.json) with
realistic metadata (nested parameters, a dozen metrics, args). Grading uses a plugin manager with two run
checkers and one submission checker per benchmark, so the figure includes checker discovery and execution,
headline metrics, results.json/results.csv writing and the text rendering. Target: <= 10 s for 10,000 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pluggy

import mlps.hookspecs
from mlps import hookimpl
from mlps.reports import generate_report
from mlps.reports_output import format_text
from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation

BENCHMARKS = {"training": ["unet3d", "retinanet"], "checkpointing": ["llama3-8b", "llama3-70b"],
              "kvcache": ["llama3.1-8b"], "vectordb": ["milvus_DISKANN"]}


class ParamChecker(RunChecker):
    def check_files(self):
        if self.param("dataset.num_files_train", 0) < 1000:
            return Issue(Validation.INVALID, "too few files", parameter="dataset.num_files_train",
                         expected=">= 1000", actual=self.param("dataset.num_files_train"))

    def check_overrides(self):
        for key in self.metadata.get("override_parameters") or {}:
            if key.startswith("framework"):
                yield Issue(Validation.OPEN, "framework override", parameter=key)


class AcceleratorChecker(RunChecker):
    def check_accelerator(self):
        if self.metadata.get("accelerator") not in ("b200", "mi355"):
            return Issue(Validation.OPEN, "accelerator not closed", parameter="accelerator")


class CountChecker(SubmissionChecker):
    def check_count(self):
        if len(self.runs) < 5:
            return Issue(Validation.INVALID, "needs 5 runs", expected=5, actual=len(self.runs))


class BenchRules:
    @hookimpl
    def mlps_register_benchmarks(self, register):
        class Record:
            benchmark_type = None

            def __init__(self, name):
                self.name = name

        for name in BENCHMARKS:
            register(Record(name))

    @hookimpl
    def mlps_run_checkers(self, benchmark):
        return [ParamChecker, AcceleratorChecker]

    @hookimpl
    def mlps_submission_checkers(self, benchmark):
        return [CountChecker]


def build_tree(root: Path, runs: int) -> None:
    combos = [(b, m, c, a) for b, models in BENCHMARKS.items() for m in models
              for c in ("run", "datagen") for a in ("b200", "h100")]
    for i in range(runs):
        benchmark, model, command, accel = combos[i % len(combos)]
        day, rest = divmod(i, 86400)
        ts = f"2026{1 + day // 28:02d}{1 + day % 28:02d}_{rest // 3600:02d}{rest // 60 % 60:02d}{rest % 60:02d}"
        leaf = root / benchmark / model / command / ts
        leaf.mkdir(parents=True)
        metadata = {
            "benchmark_type": benchmark, "model": model, "command": command, "run_datetime": ts,
            "num_processes": 8, "accelerator": accel, "exit_status": "success" if i % 50 else "failed",
            "parameters": {"dataset": {"num_files_train": 500 + (i % 3) * 1000, "num_subfolders_train": 0,
                                       "record_length_bytes": 146600628, "format": "npz"},
                           "reader": {"batch_size": 7, "read_threads": 4}, "workflow": {"train": True}},
            "override_parameters": {"dataset.num_files_train": str(500 + (i % 3) * 1000)},
            "metrics": {f"metric_{k}": k * 1.5 + i for k in range(10)} | {"train_io_mean_MB_per_second": 900.0},
            "verification": "CLOSED", "verification_issues": [],
            "args": {f"arg_{k}": f"value_{k}" for k in range(20)}, "runtime": 12.5,
        }
        (leaf / f"{benchmark}_{ts}_metadata.json").write_text(json.dumps(metadata))
        (leaf / f"{benchmark}_run.stdout.log").write_text("log\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    pm = pluggy.PluginManager("mlps")
    pm.add_hookspecs(mlps.hookspecs)
    pm.register(BenchRules())
    tmp = Path(tempfile.mkdtemp(prefix="mlps-reportgen-bench-"))
    try:
        start = time.perf_counter()
        build_tree(tmp, args.runs)
        print(f"built {args.runs} runs in {time.perf_counter() - start:.1f} s under {tmp}")
        times = []
        for round_number in range(args.rounds):
            os.sync()
            start = time.perf_counter()
            report = generate_report(tmp, pm, progress=False)
            text = format_text(report)
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            print(f"round {round_number + 1}: {elapsed:.2f} s ({len(report.runs)} runs, {len(report.groups)} groups, "
                  f"{len(report.problems)} problems, {len(text) // 1024} KiB of text)")
        median = statistics.median(times)
        print(f"median of {args.rounds}: {median:.2f} s for {args.runs} runs "
              f"({args.runs / median:.0f} runs/s); target <= 10 s: {'met' if median <= 10 else 'MISSED'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
