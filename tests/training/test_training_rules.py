"""Training rules: the run checker (override grading, datasize minimum, odirect, AU) and the submission checker."""

from __future__ import annotations

import copy

import pytest

from mlps.rules import Validation, verify
from mlps_training import plugin
from mlps_training.rules import TrainingRunChecker, TrainingSubmissionChecker, minimum_files
from mlps_training.workloads import load_workload


def run_metadata(model="unet3d", accelerator="h100", overrides=None, files=14_000, metrics=None, command="run",
                 memory=2.0, accelerators=4, hosts=("n1", "n2")):
    """Metadata shaped like the core writes it for a training run."""
    parameters = load_workload(f"{model}_{accelerator}")
    parameters["dataset"]["num_files_train"] = files
    return {"benchmark_type": "training", "model": model, "accelerator": accelerator, "command": command,
            "num_processes": accelerators, "parameters": parameters, "hosts": list(hosts),
            "override_parameters": dict(overrides or {}), "metrics": dict(metrics or {}), "system_info": None,
            "args": {"client_host_memory_in_gb": memory, "num_client_hosts": None}}


def grade(metadata):
    return verify([TrainingRunChecker], metadata, benchmark="training")


def test_reference_run_is_closed():
    verdict = grade(run_metadata(overrides={"dataset.data_folder": "/d/unet3d", "dataset.num_files_train": "14000",
                                            "reader.read_threads": "8"}))
    assert verdict.validation == Validation.CLOSED, verdict.reasons(Validation.INVALID)


@pytest.mark.parametrize("key, value, expected", [
    ("reader.prefetch_size", "4", Validation.CLOSED),
    ("storage.storage_root", "/mnt", Validation.CLOSED),
    ("framework", "tensorflow", Validation.OPEN),
    ("dataset.format", "npy", Validation.OPEN),
    ("reader.batch_size", "2", Validation.INVALID),
    ("train.computation_time", "0.1", Validation.INVALID),
    ("workflow.checkpoint", "False", Validation.CLOSED),  # workflow keys are not graded
])
def test_each_override_is_graded(key, value, expected):
    assert grade(run_metadata(overrides={key: value})).validation == expected


def test_too_few_files_is_invalid_and_minimum_matches_datasize():
    meta = run_metadata(files=13_999)
    assert minimum_files(meta) == 14_000  # 500 x 4 x 7 beats 5 x 2 x 2 GiB / 146,600,628 B = 147
    verdict = grade(meta)
    assert verdict.validation == Validation.INVALID
    assert any("Insufficient number of training files" in r for r in verdict.reasons())


def test_collected_memory_raises_the_minimum():
    meta = run_metadata(files=14_000)
    meta["system_info"] = {"total_memory_bytes": 1024 * 1024 ** 3}  # 5 x 1 TiB / 146.6 MB = 37,501 files
    assert minimum_files(meta) == 37_501
    assert grade(meta).validation == Validation.INVALID


def test_odirect_only_for_unet3d():
    assert grade(run_metadata(overrides={"reader.odirect": "True"})).validation == Validation.CLOSED
    meta = run_metadata("retinanet", "b200", files=2_000_000, overrides={"reader.odirect": "True"})
    meta["parameters"]["reader"]["odirect"] = True
    verdict = grade(meta)
    assert verdict.validation == Validation.INVALID and any("odirect" in r for r in verdict.reasons())


def test_accelerator_utilization_against_the_workload_threshold():
    passing = {"train_au_mean_percentage": 91.0, "train_au_meet_expectation": "success"}
    assert grade(run_metadata(metrics=passing)).validation == Validation.CLOSED
    low = {"train_au_mean_percentage": 89.0, "train_au_meet_expectation": "fail"}
    assert grade(run_metadata(metrics=low)).validation == Validation.INVALID
    # retinanet's threshold is 85 %
    retina = run_metadata("retinanet", "b200", files=2_000_000,
                          metrics={"train_au_mean_percentage": 86.0, "train_au_meet_expectation": "success"})
    assert grade(retina).validation == Validation.CLOSED


def test_other_benchmarks_and_unknown_models_are_invalid():
    meta = run_metadata()
    meta["benchmark_type"] = "checkpointing"
    assert TrainingRunChecker(meta).check_benchmark_type().validation == Validation.INVALID
    meta = run_metadata()
    meta["model"] = "bert"
    assert TrainingRunChecker(meta).check_model_recognized().validation == Validation.INVALID


def test_submission_needs_five_consistent_runs():
    runs = [run_metadata() for _ in range(5)]
    assert verify([TrainingSubmissionChecker], runs, base=TrainingSubmissionChecker).validation == Validation.CLOSED
    four = runs[:4] + [run_metadata(command="datasize")]
    verdict = verify([TrainingSubmissionChecker], four, base=TrainingSubmissionChecker)
    assert verdict.validation == Validation.INVALID and "requires 5 runs" in verdict.reasons()[0]
    mixed = copy.deepcopy(runs)
    mixed[2]["accelerator"] = "b200"
    verdict = verify([TrainingSubmissionChecker], mixed, base=TrainingSubmissionChecker)
    assert verdict.validation == Validation.INVALID and any("share model" in r for r in verdict.reasons())


def test_checkers_are_offered_only_for_training():
    assert plugin.mlps_run_checkers("training") == [TrainingRunChecker]
    assert plugin.mlps_run_checkers("vector_database") is None
    assert plugin.mlps_submission_checkers("training") == [TrainingSubmissionChecker]
