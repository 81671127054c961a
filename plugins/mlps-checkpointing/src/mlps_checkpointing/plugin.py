"""mlps hooks for the checkpointing benchmark: ``mlps checkpointing datasize|run``.

Import-light: stdlib and mlps only here (the engine's numpy/mpi4py load in the engine's own process).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mlps import (Benchmark, Command, ConfigurationError, DependencyError, ExecutionError, FileSystemError, Option,
                  Requirement, Step, hookimpl)

from mlps_checkpointing.models import ACCELERATOR_MEMORY_GB, GIB, MODELS, datasize_report, plan_bytes
from mlps_checkpointing.rules import CheckpointingRunChecker, CheckpointingSubmissionChecker, REQUIRED_CHECKPOINTS

NAME = "checkpointing"
FOLDER_ENV = "MLPSTORAGE_CHECKPOINT_FOLDER"
MANIFEST = "mlps_checkpoints.json"  # written by the engine after a write phase
SUMMARY_MARKER = "MLPS_CHECKPOINT_SUMMARY "  # the engine's stdout summary line (engine.SUMMARY_MARKER)
DEFAULT_BLOCK_SIZE = 16 << 20

_MODEL = Option(("--model", "-m"), choices=tuple(MODELS), required=True, help="Checkpointed model.")
_NP = Option(("--num-processes", "-np"), type=int, required=True, min=1,
             help="MPI ranks, one per simulated accelerator.")
_MEM = Option(("--client-host-memory-in-gb", "-cm"), type=float, required=True, min=0,
              help="Memory of one client host in GB (page-cache risk, rule 4.3.1).")
_NCW = Option(("--num-checkpoints-write", "-ncw"), type=int, default=REQUIRED_CHECKPOINTS, min=0,
              help="Checkpoints written (CLOSED: 10 or 0).")
_NCR = Option(("--num-checkpoints-read", "-ncr"), type=int, default=REQUIRED_CHECKPOINTS, min=0,
              help="Checkpoints read back after the writes (CLOSED: 10 or 0).")

BENCHMARK = Benchmark(name=NAME, help="LLM checkpoint write and read (llama3-8b ... llama3-1t).", commands=(
    Command("datasize", help="Per-rank and total checkpoint size for a model and process count.",
            options=(_MODEL, _NP, _MEM, _NCW, _NCR)),
    Command("run", help="Write checkpoints, then read them back, one MPI rank per accelerator.", uses_mpi=True,
            options=(_MODEL, _NP, _MEM, _NCW, _NCR,
                     Option(("--checkpoint-folder", "-cf"), type=Path,
                            help=f"Where checkpoints go (data path <folder>/<model>); env {FOLDER_ENV}."),
                     Option(("--accelerator-type", "-at"), choices=tuple(ACCELERATOR_MEMORY_GB),
                            help="Simulated accelerator, for the aggregate memory rule (4.3.4)."),
                     Option(("--engine",), choices=("native", "dlio"), default="native",
                            help="native: mlps's MPI engine. dlio: the reference DLIO command line."),
                     Option(("--scale",), type=float, default=1.0,
                            help="Shrink every shard by this factor (OPEN only; tests use 0.0001)."),
                     Option(("--verify",), choices=("none", "last", "all"), default="last",
                            help="Checkpoints whose content is blake2b-checked after the timed reads (untimed)."),
                     Option(("--dlio-bin-path",), type=Path, help="Directory holding dlio_benchmark."))),
))


@hookimpl
def mlps_register_benchmarks(register):
    register(BENCHMARK)


def _int_param(params, key, default, minimum=0):
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ConfigurationError(f"--params {key}={raw!r} is not a number", parameter=key,
                                 suggestion=f"write --params {key}=<integer>") from None
    if value < minimum:
        raise ConfigurationError(f"--params {key}={raw} is below {minimum}", parameter=key,
                                 suggestion=f"use a value >= {minimum}")
    return value


def _bool_param(params, key, default):
    raw = params.get(key)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"--params {key}={raw!r} is not a boolean", parameter=key,
                             suggestion=f"write --params {key}=True or {key}=False")


def _checkpoint_folder(run) -> Path | None:
    folder = run.params.get("checkpoint.checkpoint_folder") or run.option("checkpoint_folder") \
        or os.environ.get(FOLDER_ENV)
    return Path(folder).expanduser().absolute() if folder else None


def _checkpoint_parameters(run, model) -> dict:
    """The ``checkpoint`` block: reference YAML values, CLI values, then --params."""
    o, params = run.options, run.params
    block_size = _int_param(params, "checkpoint.block_size", DEFAULT_BLOCK_SIZE, minimum=4096)
    if block_size % 4096:
        raise ConfigurationError(f"checkpoint.block_size={block_size} is not a multiple of 4096",
                                 parameter="checkpoint.block_size", suggestion="use e.g. 16777216 (16 MiB)")
    io_mode = params.get("checkpoint.io_mode", "auto")
    if io_mode not in ("auto", "direct", "buffered"):
        raise ConfigurationError(f"checkpoint.io_mode={io_mode!r} is not auto, direct or buffered",
                                 parameter="checkpoint.io_mode", suggestion="use --params checkpoint.io_mode=auto")
    try:
        pause = float(params.get("checkpoint.time_between_checkpoints", 5))
    except ValueError:
        raise ConfigurationError("checkpoint.time_between_checkpoints is not a number",
                                 parameter="checkpoint.time_between_checkpoints",
                                 suggestion="give seconds, e.g. 5") from None
    io_threads = _int_param(params, "checkpoint.io_threads", 1, minimum=1)
    folder = _checkpoint_folder(run)
    return {"checkpoint_folder": str(folder / model.name) if folder else None,
            "num_checkpoints_write": o["num_checkpoints_write"], "num_checkpoints_read": o["num_checkpoints_read"],
            "fsync": _bool_param(params, "checkpoint.fsync", True), "time_between_checkpoints": pause,
            "mode": "subset" if o["num_processes"] < model.closed_processes else "default",
            "scale": float(o.get("scale") or 1.0), "block_size": block_size, "io_mode": io_mode,
            "io_threads": io_threads,
            "verify": o.get("verify") or "last"}


@hookimpl
def mlps_prepare_run(run):
    o = run.options
    model = MODELS[o["model"]]
    n, write, read = o["num_processes"], o["num_checkpoints_write"], o["num_checkpoints_read"]
    if write == 0 and read == 0:
        raise ConfigurationError("--num-checkpoints-write and --num-checkpoints-read are both 0: nothing to do",
                                 parameter="num_checkpoints_write", suggestion="write and read 10 checkpoints")
    if run.mode == "closed" and (write not in (0, REQUIRED_CHECKPOINTS) or read not in (0, REQUIRED_CHECKPOINTS)):
        raise ConfigurationError(f"CLOSED writes and reads {REQUIRED_CHECKPOINTS} or 0 checkpoints, got write "
                                 f"{write}, read {read}", parameter="num_checkpoints_write",
                                 suggestion="use 10 (or 0 for a write-only / read-only invocation), or --open")
    if run.command == "run" and not 0 < float(o.get("scale") or 1.0) <= 1:
        raise ConfigurationError(f"--scale {o.get('scale')} must be in (0, 1]", parameter="scale",
                                 suggestion="use e.g. --scale 0.0001 for a MB-sized test")
    run.model, run.num_processes = model.name, n
    run.accelerator = o.get("accelerator_type")
    report = datasize_report(model, n, len(run.hosts), o.get("client_host_memory_in_gb"), write)
    run.parameters = {
        "framework": "pytorch", "engine": o.get("engine") or "native", "workflow": {"checkpoint": True},
        "model": {"name": model.dlio_model_name, "type": "transformer", "num_layers": model.num_layers,
                  "model_datatype": "fp16", "optimizer_datatype": "fp32",
                  "parallelism": {"tensor": model.tensor_parallelism, "pipeline": model.pipeline_parallelism,
                                  "zero_stage": model.zero_level},
                  "transformer": {"vocab_size": model.vocab_size, "hidden_size": model.hidden_size,
                                  "ffn_hidden_size": model.ffn_hidden_size,
                                  "num_attention_heads": model.num_attention_heads, "num_kv_heads": model.num_kv_heads},
                  "model_GB": model.model_gb, "optimizer_GB": model.optimizer_gb},
        "datasize": report,
    }
    if run.command == "run":
        ckpt = _checkpoint_parameters(run, model)
        if not ckpt["checkpoint_folder"]:
            raise ConfigurationError("no checkpoint folder given", parameter="checkpoint_folder",
                                     suggestion=f"pass --checkpoint-folder DIR (or set {FOLDER_ENV})")
        ckpt["checkpoint_size_GB"] = plan_bytes(model, n, ckpt["scale"]) / GIB
        run.parameters["checkpoint"] = ckpt
        if ckpt["mode"] == "subset":
            run.parameters["model"]["parallelism"]["data"] = model.closed_data_parallelism
    else:
        run.parameters["checkpoint"] = {"num_checkpoints_write": write, "num_checkpoints_read": read,
                                        "fsync": True, "checkpoint_size_GB": report["total_GB"]}
    run.override_parameters = dict(run.params)


def print_datasize(run) -> int:
    report = run.parameters["datasize"]
    ranks = report["per_rank_GB"]
    print(f"{report['model']}: ZeRO {report['zero_level']}, {report['num_processes']} ranks on "
          f"{report['num_hosts']} host(s)")
    for rank, size in enumerate(ranks):
        print(f"  rank {rank:>5}: {size:.4f} GB")
    print(f"total checkpoint size: {report['total_GB']:.4f} GB ({report['checkpoint_GB_per_host']:.4f} GB per host)")
    print(f"space needed for {report['num_checkpoints_write']} checkpoints: {report['required_bytes']} bytes "
          f"({report['required_bytes'] / GIB:.2f} GB)")
    if report.get("page_cache_risk"):
        print(f"warning: {report['checkpoint_GB_per_host']:.1f} GB per host is within 3x the host memory "
              f"({report['host_memory_GB']} GB): reads may be served from page cache unless bypassed (4.3.1)")
    return 0


def _engine_argv(run) -> list[str]:
    ckpt = run.parameters["checkpoint"]
    argv = [sys.executable, "-m", "mlps_checkpointing.engine", "--model", run.model,
            "--folder", ckpt["checkpoint_folder"], "--output-dir", str(run.run_dir),
            "--num-checkpoints-write", str(ckpt["num_checkpoints_write"]),
            "--num-checkpoints-read", str(ckpt["num_checkpoints_read"]),
            "--scale", repr(ckpt["scale"]), "--block-size", str(ckpt["block_size"]), "--io-mode", ckpt["io_mode"],
            "--io-threads", str(ckpt["io_threads"]),
            "--time-between-checkpoints", str(ckpt["time_between_checkpoints"]), "--verify", ckpt["verify"]]
    if not ckpt["fsync"]:
        argv.append("--no-fsync")
    return argv


@hookimpl
def mlps_build_commands(run):
    if run.command == "datasize":
        return [Step(func=print_datasize, name="datasize", description="print per-rank and total checkpoint size")]
    ckpt = run.parameters["checkpoint"]
    if run.parameters["engine"] == "dlio":
        from mlps_checkpointing.dlio import dlio_argv
        folder = str(Path(ckpt["checkpoint_folder"]))
        user = {k: v for k, v in run.params.items() if k != "checkpoint.checkpoint_folder"}
        return [Step(argv=run.mpi_prefix() + dlio_argv(MODELS[run.model], run.num_processes,
                                                       ckpt["num_checkpoints_write"], ckpt["num_checkpoints_read"],
                                                       folder, run.run_dir, user, run.option("dlio_bin_path")),
                     name="run")]
    if run.option("exec_type") == "local":
        if run.num_processes != 1:
            raise ConfigurationError("--exec-type local runs one process; the checkpoint needs one rank per "
                                     "accelerator", parameter="exec_type", suggestion="use --exec-type mpi")
        return [Step(argv=_engine_argv(run), name="run")]
    return [Step(argv=run.mpi_prefix() + _engine_argv(run), name="run")]


@hookimpl
def mlps_requirements(run):
    if run.benchmark != NAME or run.command != "run":
        return None
    ckpt = run.parameters["checkpoint"]
    reqs = [Requirement("writable", ckpt["checkpoint_folder"], reason="checkpoints are written there")]
    if run.option("exec_type") != "local":
        reqs.append(Requirement("mpi", run.option("mpi_bin", "mpirun"), reason="one rank per accelerator"))
    if run.parameters["engine"] == "dlio":
        from mlps_checkpointing.dlio import dlio_binary
        reqs.append(Requirement("executable", dlio_binary(run.option("dlio_bin_path")),
                                install={"pip": "dlio-benchmark"}, hint="or pass --dlio-bin-path DIR"))
    else:
        reqs.append(Requirement("module", "mpi4py", install={"pip": "mpi4py"}))
        needed = int(ckpt["checkpoint_size_GB"] * GIB) * ckpt["num_checkpoints_write"]
        if needed:
            reqs.append(Requirement("disk_space", ckpt["checkpoint_folder"], amount=needed,
                                    reason=f"{ckpt['num_checkpoints_write']} checkpoints"))
    return reqs


def _refuse_dlio_without_checkpoint_workflow(run) -> None:
    """PyPI's dlio-benchmark 2.x has no checkpoint write-then-read workflow (the MLCommons fork is 3.x): say so
    instead of letting DLIO fail on a missing training dataset. Only for the DLIO installed beside this Python."""
    if run.option("dlio_bin_path") or run.option("skip_validation"):
        return
    from importlib import metadata
    try:
        version = metadata.version("dlio-benchmark")
    except metadata.PackageNotFoundError:
        return  # the requirement check reports a missing dlio_benchmark
    if int(version.split(".")[0]) < 3:
        raise DependencyError(f"dlio-benchmark {version} has no checkpoint write-then-read workflow "
                              "(num_checkpoints_write/read)", suggestion="use --engine native (the default), "
                              "or install a DLIO with that workflow and pass --dlio-bin-path")


@hookimpl
def mlps_before_run(run):
    """Refuse runs that cannot work before mpirun starts (the engine checks the folder again itself)."""
    if run.benchmark != NAME or run.command != "run":
        return
    if run.parameters.get("engine") == "dlio":
        _refuse_dlio_without_checkpoint_workflow(run)
        return
    ckpt = run.parameters["checkpoint"]
    manifest = Path(ckpt["checkpoint_folder"]) / MANIFEST
    if ckpt["num_checkpoints_write"] == 0 and not manifest.exists():
        raise FileSystemError(f"no checkpoint to read in {ckpt['checkpoint_folder']}: no write invocation finished "
                              f"there ({MANIFEST} is missing)", path=ckpt["checkpoint_folder"],
                              suggestion="run once with --num-checkpoints-write 10 --num-checkpoints-read 0 first")


def _summary_from_stdout(run) -> dict:
    """The engine's rank 0 also prints its summary as one marked line (its host may not share the results)."""
    log = run.path(f"{NAME}_run.stdout.log")
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    found = [ln.split(SUMMARY_MARKER, 1)[1] for ln in lines if SUMMARY_MARKER in ln]
    if not found:
        raise ExecutionError("the checkpoint run left no summary.json and no summary line on stdout",
                             suggestion=f"see the logs in {run.run_dir}")
    return json.loads(found[-1])


@hookimpl
def mlps_parse_results(run):
    if run.command != "run":
        return {"total_GB": run.parameters["datasize"]["total_GB"],
                "per_rank_GB": run.parameters["datasize"]["per_rank_GB"]}
    path = run.path("summary.json")
    try:
        summary = json.loads(path.read_text()) if path.exists() else _summary_from_stdout(run)
        metrics = dict(summary["metric"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ExecutionError(f"unreadable summary.json: {exc}", suggestion=f"inspect {path}") from None
    if run.parameters["checkpoint"]["num_checkpoints_write"] and "save_checkpoint_io_mean_GB_per_second" not in metrics:
        raise ExecutionError("summary.json has no write metrics", suggestion=f"inspect {path}")
    if run.parameters["checkpoint"]["num_checkpoints_read"] and "load_checkpoint_io_mean_GB_per_second" not in metrics:
        raise ExecutionError("summary.json has no read metrics", suggestion=f"inspect {path}")
    io, verification = summary.get("io") or {}, summary.get("verification") or {}
    metrics.update({"start": summary.get("start"), "end": summary.get("end"), "engine": summary.get("engine", "dlio"),
                    "page_cache": io.get("page_cache"), "fsync": io.get("fsync"),
                    "checksum_match": verification.get("match"), "files_verified": verification.get("files_verified")})
    run.extra_metadata["checkpoint_io"] = io
    run.extra_metadata["checkpoint_verification"] = verification
    return metrics


@hookimpl
def mlps_run_checkers(benchmark):
    return [CheckpointingRunChecker] if benchmark == NAME else None


@hookimpl
def mlps_submission_checkers(benchmark):
    return [CheckpointingSubmissionChecker] if benchmark == NAME else None


@hookimpl
def mlps_headline_metrics(benchmark, metadata):
    if benchmark != NAME:
        return None
    m = metadata.get("metrics") or {}
    keys = (("write GB/s", "save_checkpoint_io_mean_GB_per_second"), ("read GB/s", "load_checkpoint_io_mean_GB_per_second"),
            ("write s", "save_checkpoint_duration_mean_seconds"), ("read s", "load_checkpoint_duration_mean_seconds"),
            ("checkpoint GB", "checkpoint_size_GB"))
    return {label: m[key] for label, key in keys if m.get(key) is not None} or None
