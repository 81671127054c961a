"""Checker discovery and grading through the rules hooks, with throwaway checkers; the pre-run gate messages."""

from __future__ import annotations

import pytest

from core2_tree import bare_pm  # noqa: F401 - a fixture
from mlps import hookimpl
from mlps.errors import ValidationError
from mlps.reports_grade import CheckerSource, collect_checkers, generic_headline, grade_run
from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation, Verdict, verify
from mlps.rules_format import decide, enforce, format_verdict


class FilesChecker(RunChecker):
    benchmarks = ("training",)
    calls: list[str] = []

    def check_files(self):
        FilesChecker.calls.append("check_files")
        n = self.param("dataset.num_files_train", 0)
        if n < 100:
            return Issue(Validation.INVALID, "too few training files", parameter="dataset.num_files_train",
                         expected=">= 100", actual=n)
        return None

    def check_framework(self):
        FilesChecker.calls.append("check_framework")
        if self.param("framework") not in (None, "pytorch"):
            yield Issue(Validation.OPEN, "framework override", parameter="framework", expected="pytorch",
                        actual=self.param("framework"))

    def helper_not_a_check(self):  # must not be discovered
        FilesChecker.calls.append("helper")
        return Issue(Validation.INVALID, "should never run")


class CrashingChecker(RunChecker):
    def check_explodes(self):
        raise ZeroDivisionError("boom")


class CountChecker(SubmissionChecker):
    def check_count(self):
        if len(self.runs) < 2:
            return Issue(Validation.INVALID, "needs 2 runs", parameter="runs", expected=2, actual=len(self.runs))


class RulesPlugin:
    @hookimpl
    def mlps_run_checkers(self, benchmark):
        return [FilesChecker, CrashingChecker] if benchmark == "training" else None

    @hookimpl
    def mlps_submission_checkers(self, benchmark):
        return [CountChecker] if benchmark == "training" else None


class OtherPlugin:
    @hookimpl
    def mlps_run_checkers(self, benchmark):
        return None


def _meta(files=500, framework=None, exit_status="success"):
    params = {"dataset": {"num_files_train": files}}
    if framework:
        params["framework"] = framework
    return {"benchmark_type": "training", "model": "unet3d", "command": "run", "run_datetime": "20260101_000000",
            "parameters": params, "exit_status": exit_status, "metrics": {"x_throughput": 3.5, "count": 2,
                                                                         "flag": True, "name": "a"}}


def test_only_check_methods_are_discovered():
    FilesChecker.calls.clear()
    verdict = verify([FilesChecker], _meta())
    assert verdict.validation == Validation.CLOSED
    assert sorted(FilesChecker.calls) == ["check_files", "check_framework"]


def test_worst_issue_wins():
    assert verify([FilesChecker], _meta(framework="tensorflow")).validation == Validation.OPEN
    verdict = verify([FilesChecker], _meta(files=5, framework="tensorflow"))
    assert verdict.validation == Validation.INVALID
    assert {i.validation for i in verdict.issues} == {Validation.INVALID, Validation.OPEN}


def test_crashing_check_becomes_invalid_issue_naming_it():
    verdict = verify([CrashingChecker], _meta())
    assert verdict.validation == Validation.INVALID
    (issue,) = verdict.issues
    assert "CrashingChecker.check_explodes" in issue.message and "ZeroDivisionError" in issue.message


def test_hook_answers_are_flattened_and_none_skipped(bare_pm):
    bare_pm.register(RulesPlugin())
    bare_pm.register(OtherPlugin())
    assert collect_checkers(bare_pm, "mlps_run_checkers", "training") == [FilesChecker, CrashingChecker]
    assert collect_checkers(bare_pm, "mlps_run_checkers", "kvcache") == []
    assert collect_checkers(bare_pm, "mlps_submission_checkers", "training") == [CountChecker]


def test_grade_run_through_plugin_manager(bare_pm):
    bare_pm.register(RulesPlugin())
    verdict = grade_run(_meta(), CheckerSource(bare_pm))
    assert verdict.validation == Validation.INVALID  # the crashing check
    assert [i.parameter for i in verdict.issues] == ["check_explodes"]


def test_failed_run_is_invalid_even_without_checkers(bare_pm):
    verdict = grade_run(_meta(exit_status="failed"), CheckerSource(bare_pm))
    assert verdict.validation == Validation.INVALID
    assert verdict.issues[0].parameter == "exit_status" and verdict.issues[0].actual == "failed"


def test_hook_that_raises_makes_runs_invalid(bare_pm):
    class Broken:
        @hookimpl
        def mlps_run_checkers(self, benchmark):
            raise RuntimeError("plugin bug")

    bare_pm.register(Broken())
    verdict = grade_run(_meta(), CheckerSource(bare_pm))
    assert verdict.validation == Validation.INVALID
    assert "plugin bug" in verdict.issues[0].message


def test_headline_hook_and_generic_fallback(bare_pm):
    source = CheckerSource(bare_pm)
    assert source.headline("training", _meta()) == {"x_throughput": 3.5, "count": 2}

    class Headlines:
        @hookimpl
        def mlps_headline_metrics(self, benchmark, metadata):
            return {"files": metadata["parameters"]["dataset"]["num_files_train"]}

    bare_pm.register(Headlines())
    assert CheckerSource(bare_pm).headline("training", _meta()) == {"files": 500}
    assert generic_headline({"metrics": "not a dict"}) == {}


def test_gate_messages_and_policy():
    invalid = verify([FilesChecker], _meta(files=5, framework="tensorflow"))
    text = format_verdict(invalid)
    assert "dataset.num_files_train: too few training files (expected >= 100, actual 5)" in text
    assert "fix these and re-run" in text and "framework: framework override" in text
    open_verdict = verify([FilesChecker], _meta(framework="tensorflow"))
    assert "keep this run out of CLOSED" in format_verdict(open_verdict)

    assert decide(open_verdict, "closed").proceed is False
    assert decide(open_verdict, "open").proceed is True
    assert decide(invalid, "open").proceed is False
    assert decide(invalid, "open", allow_invalid_params=True).level == "warning"
    no_mode = decide(invalid, None)
    assert no_mode.proceed and "not submittable" in no_mode.message
    assert decide(Verdict(Validation.CLOSED), "closed").level == "info"
    with pytest.raises(ValidationError) as err:
        enforce(open_verdict, "closed")
    assert err.value.code == "E302" and "--open" in err.value.suggestion
    with pytest.raises(ValidationError) as err:
        enforce(invalid, "open")
    assert err.value.exit_code == 7 and "--allow-invalid-params" in err.value.suggestion
