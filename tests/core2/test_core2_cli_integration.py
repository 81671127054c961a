"""The utility groups inside the real root CLI (lead's test kit): runs recorded, re-run, graded by plugin rules."""

from __future__ import annotations

import json

from mlps import Benchmark, Command, Option, Step, hookimpl
from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation


class SpeedChecker(RunChecker):
    def check_speed(self):
        speed = (self.metadata.get("parameters") or {}).get("speed")
        if speed != "normal":
            return Issue(Validation.OPEN, "speed is not the closed default", parameter="speed",
                         expected="normal", actual=speed)


class PairChecker(SubmissionChecker):
    def check_pairs(self):
        if len(self.runs) % 2:
            return Issue(Validation.INVALID, "runs come in pairs", parameter="runs", expected="even",
                         actual=len(self.runs))


class ToyPlugin:
    """A throwaway benchmark whose single step runs in-process and writes nothing but metrics."""

    __name__ = "toy-plugin"

    @hookimpl
    def mlps_register_benchmarks(self, register):
        register(Benchmark(name="toy", help="toy", commands=(
            Command("run", help="run", options=(Option(("--speed",), default="normal",
                                                       choices=("normal", "fast")),)),)))

    @hookimpl
    def mlps_prepare_run(self, run):
        run.model = "tiny"
        run.parameters = {"speed": run.options.get("speed") or "normal"}

    @hookimpl
    def mlps_build_commands(self, run):
        return [Step(func=lambda r: 0, name="noop", description="nothing")]

    @hookimpl
    def mlps_parse_results(self, run):
        return {"ops_per_second": 42.0 if run.parameters["speed"] == "normal" else 84.0}

    @hookimpl
    def mlps_run_checkers(self, benchmark):
        return [SpeedChecker] if benchmark == "toy" else None

    @hookimpl
    def mlps_submission_checkers(self, benchmark):
        return [PairChecker] if benchmark == "toy" else None

    @hookimpl
    def mlps_headline_metrics(self, benchmark, metadata):
        if benchmark == "toy":
            return {"ops/s": (metadata.get("metrics") or {}).get("ops_per_second")}


def test_runs_history_rerun_and_report_through_root_cli(mlps_cli, register_plugin, tmp_path):
    register_plugin(ToyPlugin(), "toy-plugin")
    rd = tmp_path / "results"
    assert mlps_cli.invoke(["toy", "run", "-rd", rd, "--skip-validation"]).exit_code == 0
    result = mlps_cli.invoke(["toy", "run", "-rd", rd, "--speed", "fast", "--skip-validation"])
    assert result.exit_code == 0, result.output

    shown = mlps_cli.invoke(["history", "show", "-rd", rd])
    assert shown.exit_code == 0 and shown.stdout.count("toy run") == 2

    rerun = mlps_cli.invoke(["history", "rerun", "-rd", rd, "1"])
    assert rerun.exit_code == 0, rerun.output

    report = mlps_cli.invoke(["reports", "reportgen", "-rd", rd, "--format", "json"])
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    assert data["summary"]["runs"] == {"CLOSED": 2, "OPEN": 1, "INVALID": 0}
    (group,) = data["groups"]
    assert group["verdict"] == "INVALID" and group["runs"] == 3
    assert any("runs come in pairs" in r for r in group["reasons"])
    fast = next(r for r in data["runs"] if r["verdict"] == "OPEN")
    assert fast["metrics"] == {"ops/s": 84.0}
    assert "speed is not the closed default [speed] (expected normal, actual fast)" in fast["reasons"]

    text = mlps_cli.invoke(["reports", "reportgen", "-rd", rd])
    out = text.stdout
    assert out.index("INVALID (1 groups") < out.index("OPEN (0 groups, 1 runs)") < out.index("CLOSED (0 groups")


def test_reportgen_flags_unknown_benchmark_dirs_and_exits_3(mlps_cli, register_plugin, tmp_path):
    register_plugin(ToyPlugin(), "toy-plugin")
    rd = tmp_path / "results"
    assert mlps_cli.invoke(["toy", "run", "-rd", rd, "--skip-validation"]).exit_code == 0
    (rd / "mystery" / "m" / "run").mkdir(parents=True)
    result = mlps_cli.invoke(["reports", "reportgen", "-rd", rd])
    assert result.exit_code == 3
    assert "unknown benchmark directory 'mystery' (known: toy)" in result.stdout
    assert "1 CLOSED, 0 OPEN, 0 INVALID" in result.stdout
    assert "error: 1 problem in the results tree" in result.stderr

    missing = mlps_cli.invoke(["reports", "reportgen", "-rd", tmp_path / "absent"])
    assert missing.exit_code == 3 and "does not exist" in missing.stderr
    unknown = mlps_cli.invoke(["history", "rerun", "-rd", rd, "9"])
    assert unknown.exit_code == 2 and "no history entry with id 9" in unknown.stderr
