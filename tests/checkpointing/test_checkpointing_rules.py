"""Run and submission checkers on metadata dicts shaped like the core writes them."""

from __future__ import annotations

import pytest

from mlps.rules import SubmissionChecker, Validation, verify
from mlps_checkpointing.rules import CheckpointingRunChecker, CheckpointingSubmissionChecker


def meta(model="llama3-8b", n=8, accelerator=None, overrides=None, fsync=True, scale=1.0, write=10, read=10, **extra):
    data = {"benchmark_type": "checkpointing", "benchmark": "checkpointing", "command": "run", "model": model,
            "num_processes": n, "accelerator": accelerator, "override_parameters": dict(overrides or {}),
            "parameters": {"checkpoint": {"fsync": fsync, "scale": scale, "num_checkpoints_write": write,
                                          "num_checkpoints_read": read}}, "args": {}}
    data.update(extra)
    return data


def grade(m):
    return verify([CheckpointingRunChecker], m, benchmark="checkpointing")


@pytest.mark.parametrize("model, n, expected", [
    ("llama3-8b", 8, Validation.CLOSED), ("llama3-8b", 16, Validation.OPEN), ("llama3-8b", 2, Validation.INVALID),
    ("llama3-70b", 64, Validation.CLOSED), ("llama3-70b", 8, Validation.OPEN), ("llama3-70b", 12, Validation.INVALID),
    ("llama3-405b", 512, Validation.CLOSED), ("llama3-405b", 256, Validation.OPEN),
    ("llama3-405b", 8, Validation.INVALID), ("llama3-405b", 408, Validation.INVALID),
    ("llama3-1t", 1024, Validation.CLOSED), ("llama3-1t", 2048, Validation.OPEN), ("llama3-1t", 8, Validation.INVALID),
])
def test_process_count_grades(model, n, expected):
    assert grade(meta(model, n)).validation == expected


def test_unknown_model_is_invalid():
    verdict = grade(meta("llama3-7b"))
    assert verdict.validation == Validation.INVALID
    assert any("4.3.3" in r for r in verdict.reasons())


def test_accelerator_memory_rule():
    assert grade(meta("llama3-8b", 8, "b200")).validation == Validation.CLOSED  # 1440 GB >= 105
    low = grade(meta("llama3-70b", 8, "a100"))  # 640 GB < 912 GB
    assert low.validation == Validation.INVALID and any("cannot hold" in r for r in low.reasons())
    assert grade(meta("llama3-8b", 8, "tpu9")).validation == Validation.INVALID
    assert grade(meta("llama3-8b", 8, "h100")).validation == Validation.CLOSED  # planning without a mode
    assert grade(meta("llama3-8b", 8, "h100", mode="closed")).validation == Validation.INVALID
    assert grade(meta("llama3-8b", 8, "mi355", mode="closed")).validation == Validation.CLOSED


def test_only_the_checkpoint_folder_may_be_overridden_in_closed():
    assert grade(meta(overrides={"checkpoint.checkpoint_folder": "/mnt/x"})).validation == Validation.CLOSED
    assert grade(meta(overrides={"checkpoint.block_size": "1048576"})).validation == Validation.OPEN
    assert grade(meta(overrides={"model.num_layers": "2"})).validation == Validation.INVALID


def test_fsync_off_scale_and_counts():
    assert grade(meta(fsync=False)).validation == Validation.INVALID
    assert grade(meta(scale=0.001)).validation == Validation.OPEN
    assert grade(meta(write=3, read=3)).validation == Validation.OPEN
    assert grade(meta(write=10, read=0)).validation == Validation.CLOSED
    assert grade(meta(write=0, read=0)).validation == Validation.INVALID


def run_meta(write, read, start, end, verification="CLOSED"):
    return meta(write=write, read=read, verification=verification, invocation_start_time=start,
                invocation_end_time=end, run_datetime=None)


def submission(*runs):
    return verify([CheckpointingSubmissionChecker], list(runs), base=SubmissionChecker,
                  benchmark="checkpointing")


def test_submission_one_invocation_of_ten_and_ten():
    ok = submission(run_meta(10, 10, "2026-11-01T10:00:00+00:00", "2026-11-01T10:20:00+00:00"))
    assert ok.validation == Validation.CLOSED
    short = submission(run_meta(10, 5, "2026-11-01T10:00:00+00:00", "2026-11-01T10:20:00+00:00"))
    assert short.validation == Validation.INVALID


def test_submission_write_then_read_within_30_seconds():
    write = run_meta(10, 0, "2026-11-01T10:00:00+00:00", "2026-11-01T10:10:00+00:00")
    quick = run_meta(0, 10, "2026-11-01T10:10:25+00:00", "2026-11-01T10:20:00+00:00")
    late = run_meta(0, 10, "2026-11-01T10:10:31+00:00", "2026-11-01T10:20:00+00:00")
    early = run_meta(0, 10, "2026-11-01T10:09:00+00:00", "2026-11-01T10:20:00+00:00")
    assert submission(quick, write).validation == Validation.CLOSED  # order comes from the timestamps
    late_verdict = submission(write, late)
    assert late_verdict.validation == Validation.INVALID and any("30 s" in r for r in late_verdict.reasons())
    assert submission(write, early).validation == Validation.INVALID
    assert submission(write, run_meta(0, 10, "yesterday", "x")).validation == Validation.INVALID


def test_submission_structure_errors():
    a = run_meta(5, 5, "2026-11-01T10:00:00+00:00", "2026-11-01T10:01:00+00:00")
    b = run_meta(5, 5, "2026-11-01T10:01:10+00:00", "2026-11-01T10:02:00+00:00")
    assert submission(a, b).validation == Validation.INVALID  # two runs must be (10,0) then (0,10)
    three = [run_meta(10, 0, "2026-11-01T10:00:00+00:00", "2026-11-01T10:01:00+00:00")] + \
        [run_meta(0, 5, f"2026-11-01T10:0{i}:05+00:00", f"2026-11-01T10:0{i}:50+00:00") for i in (1, 2)]
    assert submission(*three).validation == Validation.INVALID
    datasize = dict(run_meta(10, 10, "2026-11-01T10:00:00+00:00", "2026-11-01T10:01:00+00:00"), command="datasize")
    assert submission(datasize).issues == []  # datasize invocations are not graded as a submission
    assert submission(datasize, run_meta(10, 5, "2026-11-01T10:00:00+00:00",
                                         "2026-11-01T10:01:00+00:00")).validation == Validation.INVALID
