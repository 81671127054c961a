"""Checkpointing rules: the run checker (one run's metadata) and the submission checker (the run invocations of
one workload). Rule ids in the messages follow the MLPerf Storage Rules (4.3.x, 4.6.x, 4.7.1).
"""

from __future__ import annotations

import datetime as _dt

from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation

from mlps_checkpointing.models import ACCELERATOR_MEMORY_GB, MODELS, SUBMITTABLE_ACCELERATORS

BENCHMARK = "checkpointing"
REQUIRED_CHECKPOINTS = 10
MAX_INTER_PHASE_GAP_SECONDS = 30
#: The one override CLOSED allows (4.6.3).
CLOSED_OVERRIDES = ("checkpoint.checkpoint_folder",)
#: Overrides that only change how the engine does I/O or paces itself: allowed, but OPEN.
OPEN_OVERRIDES = ("checkpoint.time_between_checkpoints", "checkpoint.block_size", "checkpoint.io_mode",
                  "checkpoint.io_threads")


def _counts(meta: dict) -> tuple[int, int]:
    ckpt = (meta.get("parameters") or {}).get("checkpoint") or {}
    args = meta.get("args") or {}
    write = ckpt.get("num_checkpoints_write", args.get("num_checkpoints_write"))
    read = ckpt.get("num_checkpoints_read", args.get("num_checkpoints_read"))
    return int(write or 0), int(read or 0)


class CheckpointingRunChecker(RunChecker):
    benchmarks = (BENCHMARK,)

    @property
    def model(self):
        return MODELS.get(self.metadata.get("model") or self.arg("model"))

    def check_benchmark_type(self):
        kind = self.metadata.get("benchmark_type")
        if kind != BENCHMARK:
            return Issue(Validation.INVALID, "not a checkpointing run", parameter="benchmark_type",
                         expected=BENCHMARK, actual=kind)

    def check_model(self):
        name = self.metadata.get("model") or self.arg("model")
        if name not in MODELS:
            return Issue(Validation.INVALID, "model is not one of the checkpointing models (4.3.3)",
                         parameter="model", expected=list(MODELS), actual=name)

    def check_num_processes(self):
        model, n = self.model, self.metadata.get("num_processes")
        if model is None:
            return None
        if n == model.closed_processes:
            return Issue(Validation.CLOSED, "process count is the closed configuration's (4.6.1)",
                         parameter="num_processes", expected=model.closed_processes, actual=n, severity="info")
        if isinstance(n, int) and n > 0 and n % model.gpus_per_dp == 0:
            return Issue(Validation.OPEN, f"{n} processes is a multiple of the {model.gpus_per_dp} ranks of one "
                         "data-parallel instance: OPEN only (4.6.4); re-run with --open",
                         parameter="num_processes", expected=model.closed_processes, actual=n)
        return Issue(Validation.INVALID, f"process count must be {model.closed_processes} (CLOSED) or a multiple "
                     f"of {model.gpus_per_dp} (OPEN)", parameter="num_processes",
                     expected=f"{model.closed_processes} or k*{model.gpus_per_dp}", actual=n)

    def check_accelerator_memory(self):
        accelerator = self.metadata.get("accelerator") or self.arg("accelerator_type")
        model, n = self.model, self.metadata.get("num_processes")
        if not accelerator or model is None or not n:
            return None
        memory = ACCELERATOR_MEMORY_GB.get(accelerator)
        if memory is None:
            return Issue(Validation.INVALID, "unknown accelerator type (4.3.4)", parameter="accelerator_type",
                         expected=list(ACCELERATOR_MEMORY_GB), actual=accelerator)
        if self.metadata.get("mode") in ("closed", "open") and accelerator not in SUBMITTABLE_ACCELERATORS:
            return Issue(Validation.INVALID, f"accelerator {accelerator} is accepted for planning (no --closed/--open) "
                         "only", parameter="accelerator_type", expected=list(SUBMITTABLE_ACCELERATORS),
                         actual=accelerator)
        if n * memory < model.rules_checkpoint_size_gb:
            return Issue(Validation.INVALID, f"{n} x {accelerator} ({memory} GB each) cannot hold a "
                         f"{model.rules_checkpoint_size_gb} GB checkpoint (4.3.4)", parameter="num_processes",
                         expected=f">= {model.rules_checkpoint_size_gb} GB", actual=f"{n * memory} GB")

    def check_overrides(self):
        for key, value in (self.metadata.get("override_parameters") or {}).items():
            if key in CLOSED_OVERRIDES:
                yield Issue(Validation.CLOSED, "allowed override", parameter=key, actual=value, severity="info")
            elif key in OPEN_OVERRIDES:
                yield Issue(Validation.OPEN, f"override {key}={value} is allowed in OPEN only (4.6.3)", parameter=key)
            elif key == "checkpoint.fsync":
                continue  # graded by check_fsync
            else:
                yield Issue(Validation.INVALID, f"disallowed parameter override: {key} = {value}", parameter=key,
                            expected=list(CLOSED_OVERRIDES + OPEN_OVERRIDES))

    def check_fsync(self):
        fsync = self.param("checkpoint.fsync")
        if fsync is not True:
            return Issue(Validation.INVALID, "checkpoint writes must be fsynced (4.3.2)", parameter="checkpoint.fsync",
                         expected=True, actual=fsync)

    def check_scale(self):
        scale = self.param("checkpoint.scale", 1.0)
        if scale != 1.0:
            return Issue(Validation.OPEN, f"checkpoint scaled by {scale}: OPEN only", parameter="checkpoint.scale",
                         expected=1.0, actual=scale)

    def check_checkpoint_counts(self):
        write, read = _counts(self.metadata)
        if write == 0 and read == 0:
            return Issue(Validation.INVALID, "nothing to do: no checkpoint written or read",
                         parameter="num_checkpoints_write")
        if write not in (0, REQUIRED_CHECKPOINTS) or read not in (0, REQUIRED_CHECKPOINTS):
            return Issue(Validation.OPEN, f"CLOSED writes and reads {REQUIRED_CHECKPOINTS} or 0 checkpoints",
                         parameter="num_checkpoints_write", expected=f"{REQUIRED_CHECKPOINTS} or 0",
                         actual=f"write {write}, read {read}")

    def check_engine(self):
        engine = self.param("engine")
        if engine not in (None, "native", "dlio"):
            return Issue(Validation.INVALID, "unknown checkpoint engine", parameter="engine", actual=engine)

    def check_page_cache_risk(self):
        if self.param("datasize.page_cache_risk"):
            return Issue(Validation.CLOSED, "checkpoint data per host is within 3x host memory: caches must be "
                         "bypassed or flushed (4.3.1)", parameter="client_host_memory_in_gb", severity="warning")


def _parse_time(value):
    """ISO 8601, 'YYYY-MM-DD HH:MM:SS', 'YYYYMMDD_HHMMSS' or epoch seconds -> aware datetime (naive = local)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    text = str(value).strip()
    for parse in (_dt.datetime.fromisoformat, lambda t: _dt.datetime.strptime(t, "%Y%m%d_%H%M%S")):
        try:
            moment = parse(text)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.astimezone()
    raise ValueError(f"unparseable timestamp {value!r}")


def _write_end(meta: dict):
    snapshots = meta.get("cluster_snapshots") or {}
    final = (snapshots.get("end") or {}).get("timestamp") if isinstance(snapshots.get("end"), dict) else None
    for value in (meta.get("invocation_end_time"), meta.get("final_collection_time"), final,
                  (meta.get("metrics") or {}).get("end")):
        if value is not None:
            return _parse_time(value)
    return None


def _read_start(meta: dict):
    for value in (meta.get("invocation_start_time"), meta.get("run_datetime")):
        if value is not None:
            return _parse_time(value)
    return None


class CheckpointingSubmissionChecker(SubmissionChecker):
    benchmarks = (BENCHMARK,)

    @property
    def run_invocations(self) -> list[dict]:
        return [r for r in self.runs if r.get("command") == "run"
                and (r.get("benchmark_type") or r.get("benchmark")) == BENCHMARK]

    def check_num_runs(self):
        runs = self.run_invocations
        if not runs:
            return  # a group of datasize invocations: nothing to grade (reports group runs by command)
        writes = sum(_counts(r)[0] for r in runs)
        reads = sum(_counts(r)[1] for r in runs)
        for label, total in (("writes", writes), ("reads", reads)):
            ok = total == REQUIRED_CHECKPOINTS
            yield Issue(Validation.CLOSED if ok else Validation.INVALID,
                        f"checkpoint {label} across the submission's run invocations (4.7.1)",
                        parameter=f"num_checkpoints_{label[:-1]}", expected=REQUIRED_CHECKPOINTS, actual=total,
                        severity="info" if ok else "error")

    def check_invocation_structure(self):
        runs = self.run_invocations
        if not runs or any(str(r.get("verification") or "").upper() != "CLOSED" for r in runs):
            return None  # the structure is only graded for an all-CLOSED submission
        if len(runs) == 1:
            if _counts(runs[0]) != (REQUIRED_CHECKPOINTS, REQUIRED_CHECKPOINTS):
                return Issue(Validation.INVALID, "a single invocation must write and read 10 checkpoints",
                             expected=(10, 10), actual=_counts(runs[0]))
            return None
        if len(runs) > 2:
            return Issue(Validation.INVALID, "a checkpointing submission must consist of 1 or 2 invocations",
                         expected="1 or 2", actual=len(runs))
        try:
            runs = sorted(runs, key=lambda r: _read_start(r) or _dt.datetime.min.replace(tzinfo=_dt.timezone.utc))
            write, read = runs
            if (_counts(write), _counts(read)) != ((REQUIRED_CHECKPOINTS, 0), (0, REQUIRED_CHECKPOINTS)):
                return Issue(Validation.INVALID, "two invocations must be a write-only run then a read-only run",
                             expected=[(10, 0), (0, 10)], actual=[_counts(write), _counts(read)])
            end, start = _write_end(write), _read_start(read)
        except ValueError as exc:
            return Issue(Validation.INVALID, f"cannot order the invocations: {exc}")
        if end is None or start is None:
            return Issue(Validation.INVALID, "the write end or the read start time is missing")
        gap = (start - end).total_seconds()
        if gap < 0:
            return Issue(Validation.INVALID, f"the read invocation started {-gap:.1f} s before the write invocation "
                         "ended (overlap or clock skew)", parameter="inter_phase_gap", actual=round(gap, 3))
        if gap > MAX_INTER_PHASE_GAP_SECONDS:
            return Issue(Validation.INVALID, f"the read invocation started {gap:.1f} s after the write ended; at most "
                         f"{MAX_INTER_PHASE_GAP_SECONDS} s are allowed (4.7.1)", parameter="inter_phase_gap",
                         expected=f"<= {MAX_INTER_PHASE_GAP_SECONDS}", actual=round(gap, 3))
        return Issue(Validation.CLOSED, f"read started {gap:.1f} s after the write ended", severity="info")
