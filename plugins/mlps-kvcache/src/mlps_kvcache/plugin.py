"""mlps hooks for the KV-cache benchmark: ``mlps kvcache datasize`` and ``mlps kvcache run``.

Launching: one rank on the local host runs as a plain ``python -m mlps_kvcache.worker`` subprocess unless
``--exec-type mpi`` was asked for explicitly; ranks never communicate, so a single rank needs no launcher (and the
default job then works without MPI, also as root). More ranks, or other hosts, always go through the core's
``run.mpi_prefix()`` line. Heavy modules (numpy, torch) load only in the worker.
"""

import json
import logging
import os
import sys
from pathlib import Path

from mlps import (Benchmark, Command, ConfigurationError, DependencyError, ExecutionError, FileSystemError,
                  Option, Requirement, Step, hookimpl)

MODEL_CHOICES = ("tiny-1b", "mistral-7b", "llama2-7b", "llama3.1-8b", "llama3.1-70b-instruct", "deepseek-v3",
                 "qwen3-32b", "gpt-oss-120b", "gpt-oss-20b")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
log = logging.getLogger("mlps.kvcache")

MODEL = Option(("--model", "-m"), choices=MODEL_CHOICES, default="llama3.1-8b",
               help="Model whose KV cache is simulated.")
NUM_USERS = Option(("--num-users", "-nu"), type=int, default=4, min=1, help="Simulated users per rank.")
GPU_MEM = Option(("--gpu-mem-gb",), type=float, default=0.0, min=0,
                 help="GPU tier GiB per rank (needs CUDA; 0 = off).")
CPU_MEM = Option(("--cpu-mem-gb",), type=float, default=1.0, min=0, help="CPU (RAM) tier GiB per rank (0 = off).")
TENSOR_PARALLEL = Option(("--tensor-parallel",), type=int, default=1, min=1, help="Each rank holds 1/TP of every object.")
CACHE_DIR = Option(("--cache-dir",), type=Path, help="Storage tier directory (rank_<r>/ made inside) "
                                                    "[default: a temporary directory, removed afterwards].")
NUM_PROCESSES = Option(("--num-processes", "-np"), type=int, default=1, min=1, help="Ranks (clients) in total.")

RUN_OPTIONS = (
    MODEL, NUM_USERS,
    Option(("--duration", "-d"), type=float, default=30.0, min=1, help="Measured seconds per trial."),
    GPU_MEM, CPU_MEM,
    Option(("--generation-mode",), choices=("none", "fast", "realistic"), default="none",
           help="Simulated decode time per token: 0, 2 or 30 ms."),
    Option(("--performance-profile",), choices=("latency", "throughput"), default="latency",
           help="Which SLA figures the per-QoS report carries."),
    Option(("--disable-multi-turn",), type=bool, help="No conversations: every request is independent."),
    Option(("--disable-prefix-caching",), type=bool, help="No system-prompt prefix probes."),
    Option(("--enable-rag",), type=bool, help="Add RAG documents and chunk reads."),
    Option(("--rag-num-docs",), type=int, default=10, min=1, help="RAG documents per rank."),
    Option(("--max-concurrent-allocs",), type=int, default=0, min=0,
           help="Concurrent object writes per rank (0 = one per worker)."),
    Option(("--storage-capacity-gb",), type=float, default=0.0, min=0,
           help="Storage tier GiB per rank (0 = 95% of the free space)."),
    TENSOR_PARALLEL,
    Option(("--max-requests",), type=int, default=0, min=0, help="Stop a trial after this many requests (0 = off)."),
    CACHE_DIR, NUM_PROCESSES,
    Option(("--seed",), type=int, default=42, help="Seed base; rank r uses seed + r."),
    Option(("--trials",), type=int, default=1, min=1, help="Trials per option (CLOSED: 3)."),
    Option(("--inter-option-delay",), type=float, default=0.0, min=0, help="Seconds between options (CLOSED: 20)."),
    Option(("--settle-delay",), type=float, default=0.0, min=0,
           help="Seconds of idle before and after each trial (CLOSED: 90)."),
    Option(("--buffered-io",), type=bool, help="Storage tier without O_DIRECT (recorded)."),
    Option(("--io-trace",), type=bool, help="Trace mode: no I/O; every cache operation logged to a CSV per rank."),
)
BENCHMARK = Benchmark(name="kvcache", help="KV-cache offload benchmark: GPU -> CPU -> storage tiers.", commands=(
    Command("datasize", help="Memory and storage a run needs, from the engine's bytes/token table.",
            options=(MODEL, NUM_USERS, GPU_MEM, CPU_MEM, TENSOR_PARALLEL, CACHE_DIR, NUM_PROCESSES)),
    Command("run", help="Run the benchmark (no options: a ~30 s local job in a temporary directory).", uses_mpi=True,
            options=RUN_OPTIONS),
))


@hookimpl
def mlps_register_benchmarks(register):
    register(BENCHMARK)


def _local_only(run) -> bool:
    return all(h.name in LOCAL_HOSTS for h in run.hosts)


def _use_mpi(run) -> bool:
    explicit_mpi = run.option_sources.get("exec_type", "default") != "default" and run.option("exec_type") == "mpi"
    return run.num_processes > 1 or not _local_only(run) or explicit_mpi


def _storage_record(run) -> dict:
    from mlps_kvcache import sizing

    cache_dir = run.option("cache_dir")
    if cache_dir is None:
        import tempfile
        probe = Path(tempfile.gettempdir())
        record = {"cache_dir": None, "temporary_under": str(probe)}
    else:
        probe = Path(cache_dir).expanduser().resolve()
        record = {"cache_dir": str(probe)}
    record["cache_fs_type"] = sizing.filesystem_type(probe)
    try:
        results = run.results_root or Path(run.option("results_dir"))
        record["same_filesystem_as_results"] = os.stat(probe).st_dev == os.stat(results).st_dev
    except OSError:
        record["same_filesystem_as_results"] = None
    return record


def _check_cache_dir(run) -> None:
    from mlps_kvcache import sizing

    cache_dir = run.option("cache_dir")
    if cache_dir is None:
        if run.mode == "closed":
            raise ConfigurationError("CLOSED runs need --cache-dir on the storage under test", parameter="cache_dir",
                                     suggestion="pass --cache-dir /mnt/nvme/kvcache (not on the results filesystem)")
        return
    path = Path(cache_dir).expanduser()
    problem = sizing.check_cache_dir(path)
    if problem is None:
        try:  # root passes access(); only a real file creation tells a read-only filesystem
            probe = path / f".mlps_kvcache_probe_{os.getpid()}"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            problem = f"cache directory {path} is not writable ({exc.strerror})"
    if problem:
        raise FileSystemError(problem, path=path, suggestion="create it, or point --cache-dir at a writable directory")
    fstype = sizing.filesystem_type(path)
    if run.mode == "closed" and fstype in sizing.TMPFS_TYPES:
        raise FileSystemError(f"cache directory {path} is on {fstype}: memory, not storage", path=path,
                              suggestion="CLOSED runs need the cache on the storage under test; use --open to try tmpfs")


def _check_resources(run, workloads: dict) -> None:
    from mlps_kvcache import sizing

    per_host = -(-run.num_processes // max(1, len(run.hosts)))
    available = sizing.available_memory()
    for label, w in workloads.items():
        estimate = sizing.peak_rss_estimate(w["num_users"], w["cpu_mem_gb"], w["gpu_mem_gb"])
        if available is not None and _local_only(run) and estimate * per_host > available:
            raise ConfigurationError(
                f"{label}: peak memory estimate {estimate * per_host / sizing.GIB:.2f} GiB ({per_host} rank(s) x "
                f"{estimate / sizing.GIB:.2f} GiB) exceeds the {available / sizing.GIB:.2f} GiB available",
                parameter="cpu_mem_gb", suggestion="lower --cpu-mem-gb, --num-users or --num-processes")
        if w["gpu_mem_gb"] > 0:
            from mlps_kvcache.tiers import cuda_status
            ok, why = cuda_status()
            if not ok:
                raise DependencyError(f"a GPU tier was asked for (--gpu-mem-gb {w['gpu_mem_gb']}) but {why}",
                                      suggestion="use --gpu-mem-gb 0, or install a CUDA build of torch on a GPU host")


@hookimpl
def mlps_prepare_run(run):
    from mlps_kvcache import plan

    if run.params:
        raise ConfigurationError("kvcache takes no --params overrides", parameter="params",
                                 actual=sorted(run.params), suggestion="use the kvcache options instead")
    run.num_processes = int(run.option("num_processes", 1))
    if run.command == "datasize":
        run.model = run.option("model")
        run.parameters = {"workload": {k: run.options[k] for k in ("model", "num_users", "gpu_mem_gb", "cpu_mem_gb",
                                                                   "tensor_parallel")}}
        return
    if run.option("exec_type") == "local" and run.num_processes > 1:
        raise ConfigurationError("--num-processes above 1 needs --exec-type mpi", parameter="exec_type",
                                 suggestion="drop --exec-type local")
    resolved = plan.resolve(run.options, run.option_sources, run.mode)
    _check_cache_dir(run)
    _check_resources(run, resolved["options"])
    models = sorted({w["model"] for w in resolved["options"].values()})
    run.model = models[0] if len(models) == 1 else "mlperf_options"
    storage = _storage_record(run)
    if storage["cache_fs_type"] in ("tmpfs", "ramfs"):
        log.warning("the storage tier is on %s (%s): this run measures memory, not storage",
                    storage["cache_fs_type"], storage["cache_dir"] or storage["temporary_under"])
    run.parameters = {"plan": resolved, "storage": storage, "launch": "mpirun" if _use_mpi(run) else "python"}
    run.override_parameters = {}


def _sleep_step(seconds: float, name: str) -> Step:
    def sleep(_run, seconds=seconds):
        import time
        print(f"kvcache: {name}: waiting {seconds:g} s", file=sys.stderr, flush=True)
        time.sleep(seconds)
        return 0
    return Step(func=sleep, name=name, description=f"sleep {seconds:g} s ({name})")


@hookimpl
def mlps_build_commands(run):
    if run.command == "datasize":
        return [Step(func=_datasize_step, name="datasize", description="compute memory and storage needs")]
    from mlps_kvcache import plan

    resolved = run.parameters["plan"]
    prefix = run.mpi_prefix() if _use_mpi(run) else []
    steps, labels = [], list(resolved["options"])
    settle = float(resolved.get("settle_delay") or 0)
    for i, label in enumerate(labels):
        if i and resolved.get("inter_option_delay"):
            steps.append(_sleep_step(float(resolved["inter_option_delay"]), f"inter_option_delay_{i}"))
        for trial in range(int(resolved["trials"])):
            argv = [*prefix, sys.executable, "-m", "mlps_kvcache.worker",
                    "--out-dir", str(run.path(label) / f"trial_{trial}"), "--seed-base", str(resolved["seed"]),
                    "--label", f"{label}/trial_{trial}", "--progress", *plan.worker_args(resolved["options"][label])]
            if run.option("cache_dir") is not None:
                argv += ["--cache-dir", str(Path(run.option("cache_dir")).expanduser().resolve())]
            if run.option("buffered_io"):
                argv.append("--buffered-io")
            if settle:
                steps.append(_sleep_step(settle, f"{label}_trial_{trial}_settle_before"))
            steps.append(Step(argv=argv, name=f"{label}_trial_{trial}"))
            if settle:
                steps.append(_sleep_step(settle, f"{label}_trial_{trial}_settle_after"))
    return steps


def _datasize_step(run) -> int:
    from mlps_kvcache import report, sizing

    w = run.parameters["workload"]
    d = sizing.datasize(w["model"], w["num_users"], run.num_processes, w["cpu_mem_gb"], w["gpu_mem_gb"],
                        hosts=len(run.hosts), tensor_parallel=w["tensor_parallel"])
    cache_dir = run.option("cache_dir")
    if cache_dir is not None and Path(cache_dir).is_dir():
        st = os.statvfs(cache_dir)
        d["cache_dir_free_bytes"] = st.f_bavail * st.f_frsize
    run.path("kvcache_datasize.json").write_text(json.dumps(d, indent=1))
    print(report.datasize_table(d), end="", flush=True)
    if d.get("cache_dir_free_bytes") is not None and d["cache_dir_free_bytes"] < d["storage_needed_bytes"]:
        print(f"warning: {cache_dir} cannot hold every live conversation; a run there evicts more "
              "(its storage tier uses 95% of the free space)", file=sys.stderr)
    return 0


@hookimpl
def mlps_requirements(run):  # broadcast to every plugin: answer for kvcache runs only
    if run.benchmark != "kvcache":
        return None
    reqs = [Requirement("module", "numpy", install={"pip": "numpy"}, reason="the kvcache engine")]
    if run.command == "run" and run.parameters.get("launch") == "mpirun":
        reqs.append(Requirement("mpi", run.option("mpi_bin", "mpirun"),
                                install={"apt": "openmpi-bin", "dnf": "openmpi"}, reason="launching the ranks"))
    return reqs


@hookimpl
def mlps_parse_results(run):
    if run.command == "datasize":
        return json.loads(run.path("kvcache_datasize.json").read_text())
    from mlps_kvcache import aggregate, report

    resolved = run.parameters["plan"]
    summary = aggregate.aggregate_run(run.run_dir, list(resolved["options"]), int(resolved["trials"]),
                                      run.num_processes)
    for label, o in summary["options"].items():
        o["model"] = resolved["options"][label]["model"]
    (run.run_dir / "kvcache_run_summary.json").write_text(json.dumps(summary, indent=1))
    if summary["partial_failure"]:
        missing = [m for o in summary["options"].values() for m in o["missing_files"]]
        raise ExecutionError(f"{len(missing)} rank result file(s) missing, e.g. {missing[0]}",
                             suggestion="see the kvcache_*.stderr.log files in the results directory")
    print(report.summary_table(summary, resolved["options"], run.run_dir), end="", file=sys.stderr, flush=True)
    if len(summary["options"]) == 1:
        return {**next(iter(summary["options"].values())), "summary_file": "kvcache_run_summary.json"}
    return {"options": summary["options"], "summary_file": "kvcache_run_summary.json"}


@hookimpl
def mlps_run_checkers(benchmark):
    if benchmark != "kvcache":
        return None
    from mlps_kvcache.rules import KVCacheRunChecker
    return [KVCacheRunChecker]


@hookimpl
def mlps_headline_metrics(benchmark, metadata):
    if benchmark != "kvcache":
        return None
    m = metadata.get("metrics") or {}
    options = m.get("options") or ({"run": m} if "aggregated_read_bandwidth_gbps" in m else {})
    out = {}
    for label, o in options.items():
        out[f"{label} storage read GiB/s"] = o.get("aggregated_read_bandwidth_gbps")
        out[f"{label} storage write GiB/s"] = o.get("aggregated_write_bandwidth_gbps")
        out[f"{label} device read P95 ms"] = o.get("aggregated_device_read_p95_ms")
    return out or None
