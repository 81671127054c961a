"""What a run executes: the workload option(s), trials and delays, resolved from the CLI values; stdlib only.

* no mode (neither --closed nor --open): one custom configuration from the flags (defaults: a small local job);
* CLOSED: the three MLPerf options of Table KVCache-1, 3 trials, 90 s settle delay before and after each trial,
  20 s between options; every workload value pinned;
* OPEN: the same three options, with every workload flag the user actually set (command line, config file or
  environment, never a default) overriding the option value, so defaults cannot silently replace the option
  (reference defect §9 #18).
"""

from __future__ import annotations

from mlps_kvcache import models

#: Table KVCache-1 (per client = per rank). Everything else is the engine default.
MLPERF_OPTIONS = {
    "option_1": {"name": "Max Storage Stress", "model": "llama3.1-8b", "num_users": 200, "duration": 300,
                 "gpu_mem_gb": 0.0, "cpu_mem_gb": 0.0, "max_concurrent_allocs": 16, "generation_mode": "none"},
    "option_2": {"name": "Storage Throughput", "model": "llama3.1-8b", "num_users": 100, "duration": 300,
                 "gpu_mem_gb": 0.0, "cpu_mem_gb": 4.0, "max_concurrent_allocs": 16, "generation_mode": "none"},
    "option_3": {"name": "Large Model (70B)", "model": "llama3.1-70b-instruct", "num_users": 70, "duration": 300,
                 "gpu_mem_gb": 0.0, "cpu_mem_gb": 0.0, "max_concurrent_allocs": 4, "generation_mode": "none"},
}
#: Values every option uses unless OPEN overrides them.
OPTION_DEFAULTS = {"performance_profile": "latency", "multi_turn": True, "prefix_caching": True, "rag": False,
                   "rag_num_docs": 10, "storage_capacity_gb": 0.0, "tensor_parallel": 1, "max_requests": 0,
                   "io_trace": False}
CLOSED_RUN = {"seed": 42, "trials": 3, "inter_option_delay": 20.0, "settle_delay": 90.0}

#: CLI dest -> option key (the "disable" flags invert)
WORKLOAD_DESTS = {
    "model": "model", "num_users": "num_users", "duration": "duration", "gpu_mem_gb": "gpu_mem_gb",
    "cpu_mem_gb": "cpu_mem_gb", "max_concurrent_allocs": "max_concurrent_allocs",
    "generation_mode": "generation_mode", "performance_profile": "performance_profile",
    "disable_multi_turn": "multi_turn", "disable_prefix_caching": "prefix_caching", "enable_rag": "rag",
    "rag_num_docs": "rag_num_docs", "storage_capacity_gb": "storage_capacity_gb",
    "tensor_parallel": "tensor_parallel", "max_requests": "max_requests", "io_trace": "io_trace",
}
RUN_DESTS = ("seed", "trials", "inter_option_delay", "settle_delay")


def _value(dest: str, raw):
    if dest.startswith("disable_"):
        return not bool(raw)
    if dest in ("enable_rag", "io_trace"):
        return bool(raw)
    return raw


def custom_option(options: dict) -> dict:
    """The single configuration described by the flags."""
    out = {"name": "custom"}
    for dest, key in WORKLOAD_DESTS.items():
        out[key] = _value(dest, options.get(dest))
    return out


def user_set(dest: str, sources: dict) -> bool:
    return sources.get(dest, "default") != "default"


def resolve(options: dict, sources: dict, mode: str | None) -> dict:
    """The run plan: {"options": {label: workload}, "seed", "trials", "inter_option_delay", "settle_delay"}."""
    if mode is None:
        plan = {"options": {"custom": custom_option(options)}}
        plan.update({k: options.get(k) for k in RUN_DESTS})
        return plan
    opts = {}
    for label, table in MLPERF_OPTIONS.items():
        workload = {**OPTION_DEFAULTS, **table}
        if mode == "open":
            for dest, key in WORKLOAD_DESTS.items():
                if user_set(dest, sources):
                    workload[key] = _value(dest, options.get(dest))
        opts[label] = workload
    plan = {"options": opts}
    for key in RUN_DESTS:
        plan[key] = options.get(key) if (mode == "open" and user_set(key, sources)) else CLOSED_RUN[key]
    if mode == "closed":  # CLOSED keeps whatever the user typed in the record so the rules can refuse it
        plan["requested"] = {dest: options.get(dest) for dest in (*WORKLOAD_DESTS, *RUN_DESTS)
                             if user_set(dest, sources)}
    return plan


def pinned_differences(plan: dict) -> list[tuple[str, object, object]]:
    """(parameter, expected, actual) for every value that differs from the CLOSED definition."""
    diffs = []
    for label, table in MLPERF_OPTIONS.items():
        actual = plan.get("options", {}).get(label)
        if actual is None:
            diffs.append((label, "present", "absent"))
            continue
        for key, expected in {**OPTION_DEFAULTS, **table}.items():
            if key != "name" and actual.get(key) != expected:
                diffs.append((f"{label}.{key}", expected, actual.get(key)))
    for key, expected in CLOSED_RUN.items():
        if plan.get(key) != expected:
            diffs.append((key, expected, plan.get(key)))
    for dest, value in (plan.get("requested") or {}).items():
        diffs.append((f"requested {dest}", "not set in CLOSED", value))
    return diffs


def worker_args(workload: dict) -> list[str]:
    """The worker's command-line arguments for one workload option."""
    args = ["--model", workload["model"], "--num-users", str(workload["num_users"]),
            "--duration", str(workload["duration"]), "--gpu-mem-gb", str(workload["gpu_mem_gb"]),
            "--cpu-mem-gb", str(workload["cpu_mem_gb"]),
            "--storage-capacity-gb", str(workload.get("storage_capacity_gb") or 0.0),
            "--generation-mode", workload["generation_mode"],
            "--performance-profile", workload["performance_profile"],
            "--rag-num-docs", str(workload["rag_num_docs"]),
            "--max-concurrent-allocs", str(workload["max_concurrent_allocs"]),
            "--tensor-parallel", str(workload.get("tensor_parallel") or 1)]
    if workload.get("max_requests"):
        args += ["--max-requests", str(workload["max_requests"])]
    if not workload["multi_turn"]:
        args.append("--disable-multi-turn")
    if not workload["prefix_caching"]:
        args.append("--disable-prefix-caching")
    if workload["rag"]:
        args.append("--enable-rag")
    if workload.get("io_trace"):
        args.append("--io-trace")
    return args


def known_model(name) -> bool:
    return name in models.MODELS
