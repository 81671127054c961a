"""reportgen on trees built by the tests: valid, mixed and malformed (every problem reported, rest still graded)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlps import hookimpl
from mlps.cli.utility_commands import add_utility_commands
from mlps.errors import FileSystemError
from mlps.reports import generate_report, load_runs, scan_tree, validate_tree
from mlps.rules import Issue, RunChecker, SubmissionChecker, Validation

from core2_tree import bare_pm, write_run  # noqa: F401 - bare_pm is a fixture

MLPS = Path(sys.executable).with_name("mlps")


class AccelChecker(RunChecker):
    def check_accelerator(self):
        acc = self.metadata.get("accelerator")
        if acc == "h100":
            return Issue(Validation.OPEN, "accelerator not in the closed list", parameter="accelerator",
                         expected="b200", actual=acc)
        if acc == "bad":
            return Issue(Validation.INVALID, "unknown accelerator", parameter="accelerator", expected="b200",
                         actual=acc)


class ThreeRuns(SubmissionChecker):
    def check_count(self):
        if len(self.runs) != 3:
            return Issue(Validation.INVALID, "a submission needs 3 runs", parameter="runs", expected=3,
                         actual=len(self.runs))


class Rules:
    @hookimpl
    def mlps_register_benchmarks(self, register):
        class Record:
            name, benchmark_type = "training", None
        register(Record)

    @hookimpl
    def mlps_run_checkers(self, benchmark):
        return [AccelChecker] if benchmark == "training" else None

    @hookimpl
    def mlps_submission_checkers(self, benchmark):
        return [ThreeRuns] if benchmark == "training" else None


@pytest.fixture
def pm(bare_pm):
    bare_pm.register(Rules())
    return bare_pm


def _kinds(problems):
    return sorted(p.kind for p in problems)


def _cli(pm, args):
    root = click.Group("mlps")
    add_utility_commands(root)

    class State:
        pass

    state = State()
    state.pm = pm
    return CliRunner().invoke(root, args, obj=state)


def test_valid_tree_grades_runs_and_groups(tmp_path, pm):
    for ts in ("20260101_100000", "20260101_110000", "20260101_120000"):
        write_run(tmp_path, ts=ts, metrics={"train_throughput_mb_per_second": 10.0, "au": 90})
    write_run(tmp_path, model="retinanet", accelerator="h100", ts="20260102_100000")
    report = generate_report(tmp_path, pm, progress=False)
    assert report.problems == []
    assert report.counts(report.runs) == {"CLOSED": 3, "OPEN": 1, "INVALID": 0}
    groups = {g.model: g for g in report.groups}
    assert groups["unet3d"].verdict == Validation.CLOSED and groups["unet3d"].runs == 3
    assert groups["unet3d"].metrics["train_throughput_mb_per_second"] == 10.0
    retina = groups["retinanet"]
    assert retina.verdict == Validation.INVALID  # one run only, and that run is OPEN
    assert any("needs 3 runs" in r for r in retina.reasons)

    data = json.loads((tmp_path / "results.json").read_text())
    assert data["summary"]["runs"] == {"CLOSED": 3, "OPEN": 1, "INVALID": 0}
    assert len(data["runs"]) == 4 and len(data["groups"]) == 2
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["kind"] for r in rows].count("group") == 2
    open_row = next(r for r in rows if r["kind"] == "run" and r["verdict"] == "OPEN")
    assert "accelerator not in the closed list" in open_row["reasons"] and open_row["accelerator"] == "h100"
    unet_row = next(r for r in rows if r["kind"] == "run" and r["model"] == "unet3d")
    assert unet_row["train_throughput_mb_per_second"] == "10.0" and unet_row["au"] == "90"


def test_mixed_tree_reports_every_problem_and_still_grades_the_rest(tmp_path, pm):
    good = write_run(tmp_path, ts="20260101_100000")
    write_run(tmp_path, ts="20260101_110000", accelerator="bad")
    write_run(tmp_path, ts="20260101_120000", exit_status="failed", metrics={})
    trunc = write_run(tmp_path, ts="20260101_130000")
    meta = next(trunc.glob("*_metadata.json"))
    meta.write_text(meta.read_text()[:40])
    garbage = write_run(tmp_path, model="retinanet", ts="20260101_140000")
    next(garbage.glob("*_metadata.json")).write_bytes(os.urandom(64) + b"\x00\xff")
    empty_keys = write_run(tmp_path, model="retinanet", ts="20260101_150000")
    next(empty_keys.glob("*_metadata.json")).write_text("{}")
    two = write_run(tmp_path, model="retinanet", ts="20260101_160000")
    (two / "copy_metadata.json").write_text("{}")
    (tmp_path / "training" / "unet3d" / "run" / "20260101_170000").mkdir()  # no metadata at all
    misnamed = write_run(tmp_path, ts="20260101_180000")
    misnamed.rename(misnamed.with_name("latest"))
    write_run(tmp_path, benchmark="nosuchbench")
    (tmp_path / "training" / "unet3d" / "datagen").mkdir()  # empty command dir
    os.symlink(tmp_path / "training", tmp_path / "training" / "unet3d" / "loop")  # points back up
    os.symlink("selfloop", tmp_path / "training" / "selfloop")  # a link to itself

    report = generate_report(tmp_path, pm, progress=False)
    kinds = _kinds(report.problems)
    for kind in ("truncated_metadata", "binary_metadata", "incomplete_metadata", "multiple_metadata",
                 "missing_metadata", "non_timestamp_leaf", "unknown_benchmark", "empty_dir", "symlink_loop",
                 "run_failed"):
        assert kind in kinds, kind
    assert kinds.count("symlink_loop") == 2
    for problem in report.problems:
        assert problem.where and problem.what and problem.fix
    incomplete = next(p for p in report.problems if p.kind == "incomplete_metadata")
    assert "benchmark_type, command, run_datetime" in incomplete.what
    # the rest of the tree is still graded: good, bad accelerator, failed, misnamed leaf
    assert len(report.runs) == 4
    by_ts = {r.run_datetime: r for r in report.runs}
    assert by_ts["20260101_100000"].verdict == Validation.CLOSED
    assert by_ts["20260101_110000"].verdict == Validation.INVALID
    assert by_ts["20260101_120000"].verdict == Validation.INVALID
    assert good.exists() and (tmp_path / "results.json").exists()


@pytest.mark.parametrize("make", ["missing", "file"])
def test_bad_results_dir_raises_filesystem_error(tmp_path, make):
    target = tmp_path / "x"
    if make == "file":
        target.write_text("not a dir")
    with pytest.raises(FileSystemError) as err:
        validate_tree(target)
    assert err.value.exit_code == 3 and str(target) in err.value.message and err.value.suggestion


def test_empty_dir_is_one_problem(tmp_path):
    problems = validate_tree(tmp_path)
    assert _kinds(problems) == ["empty_tree"]
    assert load_runs(tmp_path) == []


def test_symlinked_leaf_is_followed_and_dangling_link_reported(tmp_path):
    elsewhere = write_run(tmp_path / "archive", ts="20250101_000000")
    tree = tmp_path / "tree"
    write_run(tree, ts="20260101_000000")
    os.symlink(elsewhere, tree / "training" / "unet3d" / "run" / "20250101_000000")
    os.symlink(tmp_path / "gone", tree / "training" / "unet3d" / "run" / "20240101_000000")
    os.symlink(elsewhere, tree / "training" / "unet3d" / "run" / "20250101_000000_1")  # same leaf twice
    scan = scan_tree(tree, ["training"])
    assert sorted(r.field("run_datetime") for r in scan.runs) == ["20250101_000000", "20260101_000000"]
    assert _kinds(scan.problems) == ["dangling_symlink", "duplicate_dir"]


def test_path_mismatch_and_missing_results(tmp_path):
    leaf = write_run(tmp_path, ts="20260101_100000", metrics={})
    meta = next(leaf.glob("*_metadata.json"))
    data = json.loads(meta.read_text())
    data["model"] = "retinanet"
    meta.write_text(json.dumps(data))
    assert _kinds(validate_tree(tmp_path, ["training"])) == ["no_results", "path_mismatch"]


def test_cli_text_json_csv_and_exit_codes(tmp_path, pm):
    write_run(tmp_path, ts="20260101_100000")
    out = tmp_path / "out"
    result = _cli(pm, ["reports", "reportgen", "--results-dir", str(tmp_path), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("Summary") < text.index("INVALID (") and "1 CLOSED, 0 OPEN, 0 INVALID" in text
    assert (out / "results.json").exists() and not (tmp_path / "results.json").exists()

    result = _cli(pm, ["reports", "reportgen", "-rd", str(tmp_path), "--format", "json", "-o", str(out)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["summary"]["runs"]["CLOSED"] == 1

    (tmp_path / "training" / "unet3d" / "run" / "20260101_110000").mkdir()
    result = _cli(pm, ["reports", "reportgen", "-rd", str(tmp_path), "--format", "csv", "-o", str(out)])
    assert isinstance(result.exception, FileSystemError)  # the root CLI renders it: exit 3
    assert result.stdout.startswith("kind,benchmark,model")

    result = _cli(pm, ["reports", "reportgen", "-rd", str(tmp_path / "nope")])
    assert isinstance(result.exception, FileSystemError)


def test_real_mlps_reportgen_subprocess(tmp_path):
    write_run(tmp_path, benchmark="example", model="default", ts="20260101_100000")
    (tmp_path / "example" / "default" / "run" / "20260101_100000" / "example_x_metadata.json").write_text("{")
    env = {**os.environ, "MLPS_DISABLE_PLUGINS": "checkpointing,kvcache,training,vectordb,collectors"}
    proc = subprocess.run([str(MLPS), "reports", "reportgen", "-rd", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "1 problem in the results tree" in proc.stderr
    data = json.loads(proc.stdout)
    assert data["problems"][0]["kind"] == "multiple_metadata"


def test_scan_progress_callback_counts_leaves(tmp_path):
    for i in range(5):
        write_run(tmp_path, ts=f"20260101_10000{i}")
    seen = []
    scan = scan_tree(tmp_path, on_leaf=lambda: seen.append(1))
    assert len(seen) == 5 == len(scan.runs)
