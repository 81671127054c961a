"""The ``training`` benchmark: MLPerf Storage training workloads emulated by DLIO.

Commands: ``datasize`` (minimum dataset, pure arithmetic), ``datagen`` (DLIO generate-only), ``run`` (DLIO
training under mpirun) and ``configview`` (prints the resolved DLIO config and command line). This module stays
import-light: DLIO and YAML work happens in the modules the hooks call.
"""

from __future__ import annotations

from pathlib import Path

from mlps import Benchmark, Command, Option, hookimpl

from mlps_training import workloads

NAME = "training"

_MODEL = Option(("--model", "-m"), choices=workloads.models(), required=True,
                help="Training workload model.")
_ACCEL = Option(("--accelerator-type", "-at"), choices=workloads.accelerators(),
                help=f"Simulated accelerator. Supported pairs: {workloads.pairs_text()}.")
_MEMORY = Option(("--client-host-memory-in-gb", "-cm"), type=float,
                 help="Memory of one client host in GiB (sizes the dataset: 5x total memory).")
_HOSTS = Option(("--num-client-hosts", "-nc"), type=int, help="Number of client hosts [default: number of --hosts].")
_DATA_DIR = Option(("--data-dir", "-dd"), type=Path, help="Dataset root; the model's data lives in <data-dir>/<model>.")
_DLIO_BIN = Option(("--dlio-bin-path", "-dp"), type=Path,
                   help="Directory holding dlio_benchmark (or the binary) [default: beside this Python, then PATH].")
_CKPT = Option(("--checkpoint-folder", "-cf"), type=Path, help="Where DLIO writes checkpoints (<folder>/<model>).")

BENCHMARK = Benchmark(name=NAME, commands=(
    Command("datasize", help="Compute the minimum training dataset (no DLIO needed).",
            options=(_MODEL, _ACCEL, _MEMORY, Option(("--max-accelerators", "-ma"), type=int,
                     help="Largest number of simulated accelerators you will run."), _HOSTS, _DATA_DIR, _DLIO_BIN)),
    Command("datagen", help="Generate the dataset with DLIO (one rank per process).", uses_mpi=True,
            options=(_MODEL, _ACCEL, Option(("--num-processes", "-np"), type=int, help="DLIO ranks generating data."),
                     _DATA_DIR, _DLIO_BIN)),
    Command("run", help="Run the DLIO training emulation.", uses_mpi=True,
            options=(_MODEL, _ACCEL, Option(("--num-accelerators", "-na"), type=int,
                     help="Simulated accelerators (one DLIO rank each)."), _MEMORY, _HOSTS, _DATA_DIR, _CKPT,
                     _DLIO_BIN)),
    Command("configview", help="Print the resolved DLIO configuration and command line; runs nothing.",
            creates_results=False,
            options=(_MODEL, _ACCEL, Option(("--num-accelerators", "-na"), type=int,
                     help="Simulated accelerators."), _MEMORY, _HOSTS, _DATA_DIR, _CKPT, _DLIO_BIN)),
), help="MLPerf Storage training workloads (DLIO): unet3d, resnet50, cosmoflow, retinanet.")


@hookimpl
def mlps_register_benchmarks(register):
    register(BENCHMARK)


@hookimpl
def mlps_prepare_run(run):
    from mlps_training import runplan

    runplan.prepare(run)


@hookimpl
def mlps_build_commands(run):
    from mlps_training import runplan

    return runplan.build(run)


@hookimpl
def mlps_requirements(run):
    if run.benchmark != NAME or run.command not in ("datagen", "run"):
        return None  # datasize and configview need no DLIO
    from mlps_training import dlio

    return [dlio.requirement(run.extra_metadata["dlio"]["binary"])]  # the core checks the MPI launcher itself


@hookimpl
def mlps_parse_results(run):
    if run.command != "run":
        return None
    from mlps_training import results

    return results.parse_training(run.run_dir)


@hookimpl
def mlps_run_checkers(benchmark):
    if benchmark != NAME:
        return None
    from mlps_training.rules import TrainingRunChecker

    return [TrainingRunChecker]


@hookimpl
def mlps_submission_checkers(benchmark):
    if benchmark != NAME:
        return None
    from mlps_training.rules import TrainingSubmissionChecker

    return [TrainingSubmissionChecker]


@hookimpl
def mlps_headline_metrics(benchmark, metadata):
    if benchmark != NAME or metadata.get("command") != "run":
        return None
    metrics = metadata.get("metrics") or {}
    return {"AU (%)": metrics.get("train_au_mean_percentage"),
            "samples/s": metrics.get("train_throughput_mean_samples_per_second"),
            "I/O (MiB/s)": metrics.get("train_io_mean_MB_per_second")}
