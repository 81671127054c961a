"""Run rules for kvcache (spec §7.4 proposed Rules §6; cli doc §3.3).

The preview-era harness checker (GPU/CPU tiers >= 1 GiB, generation mode ``none`` flagged) contradicts the
options it is meant to grade (§9 #16) and is not replicated. Instead:

* INVALID: unknown model, users < 1, duration <= 0, unknown generation mode or profile, storage tier on tmpfs
  in CLOSED;
* OPEN: any value that differs from Table KVCache-1 or the CLOSED run settings (seed 42, 3 trials, delays),
  a model outside the MLPerf list, a custom single configuration, storage tier on tmpfs in OPEN;
* warning only: the cache directory on the same filesystem as the results directory (proposed rule).
"""

from __future__ import annotations

from mlps.rules import Issue, RunChecker, Validation

from mlps_kvcache import models, plan
from mlps_kvcache.sizing import TMPFS_TYPES

GENERATION_MODES = ("none", "fast", "realistic")
PROFILES = ("latency", "throughput")


class KVCacheRunChecker(RunChecker):
    benchmarks = ("kvcache",)

    @property
    def _plan(self) -> dict:
        return self.param("plan", {}) or {}

    @property
    def _mode(self):
        return self.metadata.get("mode")

    def _workloads(self):
        return (self._plan.get("options") or {}).items()

    def check_command(self):
        if self.metadata.get("command") != "run":
            return None
        if not self._plan.get("options"):
            return Issue(Validation.INVALID, "the run records no workload options", parameter="plan.options")
        return None

    def check_models(self):
        for label, w in self._workloads():
            model = w.get("model")
            if model not in models.MODELS:
                yield Issue(Validation.INVALID, f"unknown model {model!r}", parameter=f"{label}.model",
                            expected=sorted(models.MODELS), actual=model)
            elif model not in models.MLPERF_MODELS:
                yield Issue(Validation.OPEN, f"model {model!r} is not one the MLPerf harness accepts",
                            parameter=f"{label}.model", expected=list(models.MLPERF_MODELS), actual=model)

    def check_workload_values(self):
        for label, w in self._workloads():
            if (w.get("num_users") or 0) < 1:
                yield Issue(Validation.INVALID, "at least one user is needed", parameter=f"{label}.num_users",
                            expected=">= 1", actual=w.get("num_users"))
            if (w.get("duration") or 0) <= 0:
                yield Issue(Validation.INVALID, "the duration must be positive", parameter=f"{label}.duration",
                            expected="> 0", actual=w.get("duration"))
            if w.get("generation_mode") not in GENERATION_MODES:
                yield Issue(Validation.INVALID, "unknown generation mode", parameter=f"{label}.generation_mode",
                            expected=list(GENERATION_MODES), actual=w.get("generation_mode"))
            if w.get("performance_profile") not in PROFILES:
                yield Issue(Validation.INVALID, "unknown performance profile",
                            parameter=f"{label}.performance_profile", expected=list(PROFILES),
                            actual=w.get("performance_profile"))

    def check_mlperf_options(self):
        if self.metadata.get("command") != "run":
            return
        if "custom" in dict(self._workloads()):
            yield Issue(Validation.OPEN, "a single custom configuration, not the three MLPerf options "
                                         "(run with --closed or --open for those)", parameter="plan.options",
                        severity="info")
            return
        for parameter, expected, actual in plan.pinned_differences(self._plan):
            yield Issue(Validation.OPEN, "differs from the CLOSED definition (Table KVCache-1 and run settings)",
                        parameter=parameter, expected=expected, actual=actual)

    def check_cache_filesystem(self):
        storage = self.param("storage", {}) or {}
        fstype = storage.get("cache_fs_type")
        if fstype in TMPFS_TYPES:
            level = Validation.INVALID if self._mode == "closed" else Validation.OPEN
            yield Issue(level, f"the storage tier is on {fstype} (memory, not storage)",
                        parameter="storage.cache_dir", actual=storage.get("cache_dir"))
        if storage.get("same_filesystem_as_results"):
            # a proposed rule, not adopted: reported, but it does not change the grade
            yield Issue(Validation.CLOSED, "cache directory and results directory are on the same filesystem "
                                           "(proposed rule: keep them apart)", parameter="storage.cache_dir",
                        actual=storage.get("cache_dir"), severity="warning")
