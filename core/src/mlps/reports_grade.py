"""Grading for reports: every run with the plugins' run checkers, every workload group with their submission
checkers, and the headline metrics each row shows.

Checkers come from the rules hooks of a pluggy plugin manager (``pm.hook.mlps_run_checkers(benchmark=...)``
returns one list per plugin; None answers are skipped). The core adds one rule of its own: a run that did not
finish successfully is INVALID. Nothing here knows any benchmark's rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation, Verdict, grade, verify

GROUP_KEYS = ("benchmark", "model", "accelerator", "command")
#: Words that make a metric a good headline when no plugin picks one.
_HEADLINE_HINTS = ("throughput", "bandwidth", "per_second", "_gbps", "qps", "mb_per", "gb_per", "latency",
                   "au_", "duration")
MAX_GENERIC_METRICS = 5


@dataclass
class Row:
    """One line of the report: a run (``kind="run"``) or a workload group (``kind="group"``)."""

    kind: str
    benchmark: str
    model: str
    accelerator: str
    command: str
    verdict: Validation
    issues: list[Issue] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    run_datetime: str = ""
    path: str = ""
    runs: int = 1

    @property
    def reasons(self) -> list[str]:
        """Why the row is not better than it is: the issues at the verdict's level (none for CLOSED)."""
        if self.verdict == Validation.CLOSED:
            return []
        return [_reason(i) for i in self.issues if i.validation == self.verdict]

    @property
    def label(self) -> str:
        if self.kind == "run":
            return f"{self.benchmark}/{self.model}/{self.command}/{self.run_datetime}"
        return f"{self.benchmark}/{self.model}/{self.accelerator or '-'}/{self.command} ({self.runs} runs)"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "benchmark": self.benchmark, "model": self.model,
                "accelerator": self.accelerator, "command": self.command, "run_datetime": self.run_datetime,
                "path": self.path, "runs": self.runs, "verdict": self.verdict.name, "reasons": self.reasons,
                "issues": [i.to_dict() for i in self.issues], "metrics": self.metrics}


@dataclass
class Report:
    results_dir: str
    runs: list[Row] = field(default_factory=list)
    groups: list[Row] = field(default_factory=list)
    problems: list = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def counts(self, rows: list[Row]) -> dict[str, int]:
        counts = {v.name: 0 for v in (Validation.CLOSED, Validation.OPEN, Validation.INVALID)}
        for row in rows:
            counts[row.verdict.name] += 1
        return counts


def _reason(issue: Issue) -> str:
    text = issue.message
    if issue.parameter:
        text += f" [{issue.parameter}]"
    if issue.expected is not None and issue.actual is not None:
        text += f" (expected {issue.expected}, actual {issue.actual})"
    return text


class CheckerSource:
    """The rules hooks of a plugin manager, asked once per benchmark type and remembered."""

    def __init__(self, pm):
        self.pm = pm
        self._cache: dict[tuple[str, str], list] = {}

    def _collect(self, hook_name: str, benchmark: str) -> list:
        key = (hook_name, benchmark)
        if key not in self._cache:
            self._cache[key] = collect_checkers(self.pm, hook_name, benchmark)
        return self._cache[key]

    def run_checkers(self, benchmark: str) -> list:
        return self._collect("mlps_run_checkers", benchmark)

    def submission_checkers(self, benchmark: str) -> list:
        return self._collect("mlps_submission_checkers", benchmark)

    def headline(self, benchmark: str, metadata: dict) -> dict:
        if self.pm is not None:
            try:
                picked = self.pm.hook.mlps_headline_metrics(benchmark=benchmark, metadata=metadata)
            except Exception:  # a plugin bug must not lose the report; the generic pick still shows metrics
                picked = None
            if isinstance(picked, dict):
                return dict(picked)
        return generic_headline(metadata)


def collect_checkers(pm, hook_name: str, benchmark: str) -> list:
    """Flatten the per-plugin answers of a rules hook (lists, single checkers or None) into one list.

    A plugin whose hook raises contributes a checker that reports the failure as an INVALID issue, so a
    broken plugin cannot make a run look CLOSED.
    """
    if pm is None:
        return []
    hook = getattr(pm.hook, hook_name)
    try:
        answers = hook(benchmark=benchmark)
    except Exception as exc:
        return [_failed_hook_checker(hook_name, exc)]
    checkers: list = []
    for answer in answers:
        if answer is None:
            continue
        if isinstance(answer, (list, tuple)):
            checkers.extend(c for c in answer if c is not None)
        else:
            checkers.append(answer)
    return checkers


def _failed_hook_checker(hook_name: str, exc: Exception):
    message = f"{hook_name} hook failed: {type(exc).__name__}: {exc}"

    class HookFailure(RunChecker, SubmissionChecker):
        def __init__(self, subject):
            self.metadata = self.runs = subject

        def check_hook(self):
            return Issue(Validation.INVALID, message)

    return HookFailure


@lru_cache(maxsize=4096)
def _headline_rank(key: str) -> tuple[bool, str]:
    return not any(h in key.lower() for h in _HEADLINE_HINTS), key


def generic_headline(metadata: dict) -> dict:
    """A few numeric metrics when no plugin picks headlines: throughput-like names first, then by name."""
    metrics = metadata.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    numeric = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    ranked = sorted(numeric, key=_headline_rank)
    return {k: numeric[k] for k in ranked[:MAX_GENERIC_METRICS]}


def core_run_issues(metadata: dict) -> list[Issue]:
    """The core's own rule: only a run that finished successfully can be graded better than INVALID."""
    status = metadata.get("exit_status")
    if status not in (None, "success", 0):
        return [Issue(Validation.INVALID, "run did not complete successfully", parameter="exit_status",
                      expected="success", actual=status)]
    return []


def grade_run(metadata: dict, source: CheckerSource) -> Verdict:
    benchmark = str(metadata.get("benchmark_type") or "")
    verdict = verify(source.run_checkers(benchmark), metadata, RunChecker, benchmark=benchmark)
    issues = core_run_issues(metadata) + verdict.issues
    return Verdict(grade(issues), issues)


def grade_group(rows: list[Row], metadatas: list[dict], source: CheckerSource) -> Verdict:
    """Submission checkers on the group, plus one issue per level for member runs that are not CLOSED."""
    benchmark = rows[0].benchmark
    verdict = verify(source.submission_checkers(benchmark), metadatas, SubmissionChecker, benchmark=benchmark)
    issues = list(verdict.issues)
    for level in (Validation.INVALID, Validation.OPEN):
        bad = [r.run_datetime for r in rows if r.verdict == level]
        if bad:
            issues.append(Issue(level, f"{len(bad)} of {len(rows)} runs are {level.name}: {', '.join(bad)}",
                                parameter="runs"))
    return Verdict(grade(issues), issues)


def _group_metrics(rows: list[Row]) -> dict:
    """Mean of each numeric headline metric over the group's runs that report it (same labels as the runs)."""
    sums: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                sums.setdefault(key, []).append(float(value))
    return {k: round(sum(v) / len(v), 6) for k, v in sums.items()}


def grade_runs(scan, pm, *, on_run: Callable[[], None] | None = None) -> Report:
    """Grade every run of a :class:`mlps.reports.TreeScan` and every (benchmark, model, accelerator, command)."""
    source = CheckerSource(pm)
    report = Report(results_dir=str(scan.root), problems=list(scan.problems))
    groups: dict[tuple, tuple[list[Row], list[dict]]] = {}
    for record in scan.runs:
        meta = record.metadata
        verdict = grade_run(meta, source)
        row = Row(kind="run", benchmark=record.field("benchmark_type"), model=record.model,
                  accelerator=record.field("accelerator"), command=record.field("command"),
                  verdict=verdict.validation, issues=verdict.issues,
                  metrics=source.headline(record.benchmark, meta), run_datetime=record.field("run_datetime"),
                  path=record.rel_path)
        report.runs.append(row)
        members = groups.setdefault(tuple(getattr(row, k) for k in GROUP_KEYS), ([], []))
        members[0].append(row)
        members[1].append(meta)
        if on_run is not None:
            on_run()
    for key in sorted(groups):
        rows, metadatas = groups[key]
        rows_sorted = sorted(zip(rows, metadatas), key=lambda pair: pair[0].run_datetime)
        rows = [r for r, _ in rows_sorted]
        metadatas = [m for _, m in rows_sorted]
        verdict = grade_group(rows, metadatas, source)
        report.groups.append(Row(kind="group", **dict(zip(GROUP_KEYS, key)), verdict=verdict.validation,
                                 issues=verdict.issues, metrics=_group_metrics(rows), runs=len(rows),
                                 path=str(rows[0].path.rsplit("/", 1)[0]) if "/" in rows[0].path else ""))
    report.runs.sort(key=lambda r: (r.benchmark, r.model, r.accelerator, r.command, r.run_datetime))
    return report
