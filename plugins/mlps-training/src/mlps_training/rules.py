"""MLPerf Storage training rules: the run checker (gate and post-run grading) and the submission checker."""

from __future__ import annotations

import difflib

from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation

from mlps_training import datasize
from mlps_training.workloads import models

BENCHMARK = "training"

#: Overrides a CLOSED submission may make (reference CLOSED_ALLOWED).
CLOSED_ALLOWED = frozenset({
    "dataset.num_files_train", "dataset.num_subfolders_train", "dataset.data_folder", "reader.read_threads",
    "reader.computation_threads", "reader.transfer_size", "reader.odirect", "reader.prefetch_size",
    "checkpoint.checkpoint_folder", "storage.storage_type", "storage.storage_root",
    "storage.storage_options.prefetch_window",
})
#: Overrides that make a submission OPEN.
OPEN_ALLOWED = frozenset({"framework", "dataset.format", "dataset.num_samples_per_file", "reader.data_loader"})
#: Parameters mlps itself sets; never counted as user changes.
TOOL_INJECTED = frozenset({
    "dataset.skip_listing", "dataset.listing_validation_interval", "dataset.num_files_generated",
    "dataset.data_folder", "storage.storage_type", "storage.storage_root", "dataset.total_disk_bytes",
})
REQUIRED_RUNS = 5


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def minimum_files(metadata: dict) -> int | None:
    """The datasize minimum for a run's metadata, or None when the inputs are missing."""
    params = metadata.get("parameters") or {}
    dataset, reader = params.get("dataset") or {}, params.get("reader") or {}
    args = metadata.get("args") or {}
    memory, accelerators = args.get("client_host_memory_in_gb"), metadata.get("num_processes")
    if not dataset or memory is None or not accelerators:
        return None
    hosts = args.get("num_client_hosts") or len(metadata.get("hosts") or []) or 1
    size = datasize.compute(dataset, int(reader.get("batch_size") or 1), int(accelerators), float(memory),
                            int(hosts), datasize.collected_memory_bytes(metadata.get("system_info")))
    return size.num_files_train


class TrainingRunChecker(RunChecker):
    benchmarks = (BENCHMARK,)

    def check_benchmark_type(self):
        kind = self.metadata.get("benchmark_type")
        if kind != BENCHMARK:
            return Issue(Validation.INVALID, f"not a training run (benchmark type {kind!r})",
                         parameter="benchmark_type", expected=BENCHMARK, actual=kind)
        return None

    def check_model_recognized(self):
        model = self.metadata.get("model")
        if model not in models():
            return Issue(Validation.INVALID, f"unknown training model {model!r}", parameter="model",
                         expected=list(models()), actual=model)
        return Issue(Validation.CLOSED, f"model {model} is a known training workload", severity="info")

    def check_num_files_train(self):
        if self.metadata.get("command") != "run":
            return None
        configured = self.param("dataset.num_files_train")
        if configured is None:
            return Issue(Validation.INVALID, "the run does not record dataset.num_files_train",
                         parameter="dataset.num_files_train")
        needed = minimum_files(self.metadata)
        if needed is None:
            return None  # loaded from disk without memory/accelerator inputs: nothing to recompute
        if int(configured) < needed:
            return Issue(Validation.INVALID, "Insufficient number of training files",
                         parameter="dataset.num_files_train", expected=f">= {needed}", actual=int(configured))
        return Issue(Validation.CLOSED, "enough training files for the datasize rule",
                     parameter="dataset.num_files_train", expected=f">= {needed}", actual=int(configured),
                     severity="info")

    def check_allowed_params(self):
        issues = []
        for key, value in (self.metadata.get("override_parameters") or {}).items():
            if key.startswith("workflow."):
                continue
            if key in TOOL_INJECTED:
                issues.append(Issue(Validation.CLOSED, f"Tool-injected parameter: {key}", parameter=key,
                                    severity="info"))
            elif key in CLOSED_ALLOWED:
                issues.append(Issue(Validation.CLOSED, f"Closed parameter override allowed: {key} = {value}",
                                    parameter=key, severity="info"))
            elif key in OPEN_ALLOWED:
                issues.append(Issue(Validation.OPEN, f"Open parameter override allowed: {key} = {value}",
                                    parameter=key))
            else:
                near = difflib.get_close_matches(key, sorted(CLOSED_ALLOWED | OPEN_ALLOWED), n=1, cutoff=0.85)
                hint = f" (did you mean {near[0]}?)" if near else ""
                issues.append(Issue(Validation.INVALID, f"Disallowed parameter override: {key} = {value}{hint}",
                                    parameter=key, actual=value))
        return issues

    def check_odirect_supported_model(self):
        if _truthy(self.param("reader.odirect", False)) and self.metadata.get("model") != "unet3d":
            return Issue(Validation.INVALID, "reader.odirect is only supported for unet3d",
                         parameter="reader.odirect", expected="unet3d", actual=self.metadata.get("model"))
        return None

    def check_accelerator_utilization(self):
        metrics = self.metadata.get("metrics") or {}
        if self.metadata.get("command") != "run" or "train_au_mean_percentage" not in metrics:
            return None  # before the run (the gate) there is nothing to grade yet
        threshold = float(self.param("metric.au", 0.9)) * 100
        au = metrics.get("train_au_mean_percentage")
        if au is None or float(au) < threshold or metrics.get("train_au_meet_expectation") != "success":
            return Issue(Validation.INVALID, "accelerator utilization below the workload threshold",
                         parameter="train_au_mean_percentage", expected=f">= {threshold:g}", actual=au)
        return Issue(Validation.CLOSED, "accelerator utilization meets the threshold",
                     parameter="train_au_mean_percentage", expected=f">= {threshold:g}", actual=au,
                     severity="info")


class TrainingSubmissionChecker(SubmissionChecker):
    benchmarks = (BENCHMARK,)

    def _runs(self):
        return [r for r in self.runs if r.get("command") == "run"]

    def check_num_runs(self):
        count = len(self._runs())
        if count < REQUIRED_RUNS:
            return Issue(Validation.INVALID, f"Training submission requires {REQUIRED_RUNS} runs",
                         parameter="num_runs", expected=REQUIRED_RUNS, actual=count)
        return Issue(Validation.CLOSED, f"{count} training runs", parameter="num_runs", severity="info")

    def check_consistent_workload(self):
        runs = self._runs()
        combos = sorted({(str(r.get("model")), str(r.get("accelerator"))) for r in runs})
        if len(combos) > 1:
            return Issue(Validation.INVALID, "runs of one result must share model and accelerator",
                         parameter="model/accelerator", expected="one pair",
                         actual=[f"{m}+{a}" for m, a in combos])
        return None
