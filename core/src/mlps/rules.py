"""The rules engine: issues, checkers and the verifier. The rules themselves live in the plugins.

A checker is a class whose ``check_*`` methods each inspect one thing and return None (pass), one
:class:`Issue`, or an iterable of them. :func:`verify` runs checkers and grades the result: any INVALID
issue makes the verdict INVALID, else any OPEN issue makes it OPEN, else CLOSED. A check that raises becomes an
INVALID issue naming the check; grading never crashes.
"""

from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence


class Validation(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    INVALID = "invalid"

    @property
    def label(self) -> str:
        return self.name


_RANK = {Validation.CLOSED: 0, Validation.OPEN: 1, Validation.INVALID: 2}


@dataclass
class Issue:
    """One finding of a check. ``severity`` is ``error``, ``warning`` or ``info``."""

    validation: Validation
    message: str
    parameter: str | None = None
    expected: Any = None
    actual: Any = None
    severity: str = "error"

    def __post_init__(self):
        self.validation = Validation(self.validation)

    def __str__(self) -> str:
        text = f"[{self.validation.label}] {self.message}"
        extras = []
        if self.parameter:
            extras.append(f"Parameter: {self.parameter}")
        if self.expected is not None and self.actual is not None:
            extras += [f"Expected: {self.expected}", f"Actual: {self.actual}"]
        return text + (f" ({', '.join(extras)})" if extras else "")

    def to_dict(self) -> dict:
        return {"validation": self.validation.value, "message": self.message, "parameter": self.parameter,
                "expected": _plain(self.expected), "actual": _plain(self.actual), "severity": self.severity}

    @classmethod
    def from_dict(cls, data: dict) -> "Issue":
        return cls(validation=Validation(data["validation"]), message=data.get("message", ""),
                   parameter=data.get("parameter"), expected=data.get("expected"), actual=data.get("actual"),
                   severity=data.get("severity", "error"))


def _plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class _Checker:
    """Common part of run and submission checkers: discovery and safe execution of ``check_*`` methods."""

    #: benchmark types this checker grades; None means every benchmark.
    benchmarks: Sequence[str] | None = None

    def checks(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in _check_names(type(self))]

    def run_checks(self) -> list[Issue]:
        issues: list[Issue] = []
        for name, method in self.checks():
            try:
                issues.extend(_as_issues(method()))
            except Exception as exc:  # a broken rule must not break grading
                issues.append(Issue(Validation.INVALID,
                                    f"check {type(self).__name__}.{name} raised {type(exc).__name__}: {exc}",
                                    parameter=name))
        return issues


_CHECK_NAMES: dict[type, tuple[str, ...]] = {}


def _check_names(cls: type) -> tuple[str, ...]:
    """The ``check_*`` methods of a checker class, found once per class (reports grade thousands of runs)."""
    names = _CHECK_NAMES.get(cls)
    if names is None:
        names = tuple(sorted(name for name in dir(cls)
                             if name.startswith("check_") and callable(getattr(cls, name, None))))
        _CHECK_NAMES[cls] = names
    return names


def _as_issues(result) -> Iterator[Issue]:
    if result is None:
        return
    if isinstance(result, Issue):
        yield result
        return
    for item in result:
        if item is None:
            continue
        if not isinstance(item, Issue):
            raise TypeError(f"a check returned {type(item).__name__}, expected Issue or None")
        yield item


class RunChecker(_Checker):
    """Grades one run. ``self.metadata`` is the run's metadata dict (as written by the core)."""

    def __init__(self, metadata: dict):
        self.metadata = metadata

    # helpers every rule needs
    def param(self, dotted: str, default=None):
        """A value of ``parameters`` by dotted key (``dataset.num_files_train``)."""
        node: Any = self.metadata.get("parameters") or {}
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def arg(self, name: str, default=None):
        args = self.metadata.get("args") or {}
        value = args.get(name)
        return default if value is None else value


class SubmissionChecker(_Checker):
    """Grades a group of runs of one workload. ``self.runs`` is a list of metadata dicts."""

    def __init__(self, runs: list[dict]):
        self.runs = list(runs)


@dataclass
class Verdict:
    validation: Validation
    issues: list[Issue] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.validation.label

    def reasons(self, level: Validation | None = None) -> list[str]:
        level = level or self.validation
        return [str(i) for i in self.issues if i.validation == level]


def grade(issues: Iterable[Issue]) -> Validation:
    worst = Validation.CLOSED
    for issue in issues:
        if _RANK[issue.validation] > _RANK[worst]:
            worst = issue.validation
    return worst


def _instantiate(checker, subject, base: type) -> _Checker:
    if isinstance(checker, base):
        return checker
    if inspect.isclass(checker) and issubclass(checker, base):
        return checker(subject)
    raise TypeError(f"{checker!r} is not a {base.__name__}")


def verify(checkers: Iterable, subject, base: type = RunChecker, benchmark: str | None = None) -> Verdict:
    """Run every applicable checker on ``subject`` (a metadata dict, or a list of them) and grade."""
    issues: list[Issue] = []
    for checker in checkers:
        try:
            instance = _instantiate(checker, subject, base)
            if benchmark and instance.benchmarks is not None and benchmark not in instance.benchmarks:
                continue
            issues.extend(instance.run_checks())
        except Exception as exc:
            name = getattr(checker, "__name__", type(checker).__name__)
            issues.append(Issue(Validation.INVALID, f"checker {name} failed: {type(exc).__name__}: {exc}"))
    return Verdict(grade(issues), issues)
