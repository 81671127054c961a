"""The shipped workload YAMLs, DLIO key checking, and hydra override formatting."""

from __future__ import annotations

import pytest

from mlps import ConfigurationError
from mlps_training import params, workloads
from mlps_training.params import DLIO_KEYS, KNOWN_KEYS, check_params, hydra_value, merged

# (workload, format, num_files_train, samples/file, record_length, batch, read_threads, epochs, compute, au)
REFERENCE = [
    ("unet3d_a100", "npz", 168, 1, 146600628, 7, 4, 5, 0.636, 0.90),
    ("unet3d_h100", "npz", 168, 1, 146600628, 7, 4, 5, 0.323, 0.90),
    ("unet3d_b200", "npz", 7200, 1, 146600628, 7, 4, 5, 0.162, 0.90),
    ("resnet50_a100", "tfrecord", 1024, 1251, 114660.07, 400, 8, 5, 0.435, 0.90),
    ("resnet50_h100", "tfrecord", 1024, 1251, 114660.07, 400, 8, 5, 0.224, 0.90),
    ("cosmoflow_a100", "tfrecord", 524288, 1, 2828486, 1, 4, 5, 0.00551, 0.70),
    ("cosmoflow_h100", "tfrecord", 524288, 1, 2828486, 1, 4, 5, 0.00350, 0.70),
    ("retinanet_b200", "jpeg", 1170301, 1, 322957, 24, 8, 8, 0.04755, 0.85),
    ("retinanet_mi355", "jpeg", 1170301, 1, 322957, 32, 8, 8, 0.0634, 0.85),
]


@pytest.mark.parametrize("row", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_shipped_workloads_carry_the_reference_values(row):
    name, fmt, files, spf, record, batch, threads, epochs, compute, au = row
    w = workloads.load_workload(name)
    assert w["model"] == name.rpartition("_")[0]
    assert (w["dataset"]["format"], w["dataset"]["num_files_train"], w["dataset"]["num_samples_per_file"],
            w["dataset"]["record_length"]) == (fmt, files, spf, record)
    assert (w["reader"]["batch_size"], w["reader"]["read_threads"]) == (batch, threads)
    assert (w["train"]["epochs"], w["train"]["computation_time"], w["metric"]["au"]) == (epochs, compute, au)
    assert w["workflow"]["train"] is True and w["workflow"]["generate_data"] is False
    assert w["reader"]["data_loader"] == w["framework"]  # DLIO refuses a mismatched framework and loader


def test_every_shipped_key_is_one_dlio_reads():
    for name in [f"{m}_{a}" for m, a in workloads.supported_pairs()] + [f"{m}_datagen" for m in workloads.models()]:
        flat = _flatten(workloads.load_workload(name))
        assert set(flat) <= DLIO_KEYS, f"{name}: {set(flat) - DLIO_KEYS}"


def _flatten(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        out.update(_flatten(value, dotted + ".") if isinstance(value, dict) else {dotted: value})
    return out


def test_choices_and_pairs_come_from_the_files():
    assert workloads.models() == ("cosmoflow", "resnet50", "retinanet", "unet3d")
    assert workloads.accelerators() == ("a100", "b200", "h100", "mi355")
    assert len(workloads.supported_pairs()) == 9
    for model in workloads.models():
        generated = workloads.load_workload(workloads.datagen_workload(model))
        assert generated["workflow"] == {"generate_data": True, "train": False, "checkpoint": False}
        trained = workloads.load_workload(f"{model}_{dict(workloads.supported_pairs())[model]}")
        assert generated["dataset"]["record_length"] == trained["dataset"]["record_length"]


def test_unsupported_pair_lists_the_supported_ones():
    with pytest.raises(ConfigurationError) as err:
        workloads.training_workload("retinanet", "h100")
    assert "not supported" in err.value.message
    assert "unet3d+b200" in err.value.suggestion and "retinanet+mi355" in err.value.suggestion


def test_unknown_params_key_suggests_the_nearest():
    with pytest.raises(ConfigurationError) as err:
        check_params({"dataset.num_file_train": "4"})
    assert err.value.suggestion == "did you mean dataset.num_files_train?"
    with pytest.raises(ConfigurationError) as err:
        check_params({"zzz": "1"})
    assert "docs/benchmarks/training.md" in err.value.suggestion


def test_params_accept_hydra_spellings_and_newer_keys():
    assert check_params({"workload.reader.read_threads": "2", "++train.epochs": "1"}) == {
        "reader.read_threads": "2", "train.epochs": "1"}
    assert "reader.odirect" in KNOWN_KEYS and "reader.odirect" not in DLIO_KEYS


def test_merged_types_values_like_yaml_and_keeps_the_base():
    base = {"dataset": {"num_files_train": 168}, "reader": {"file_shuffle": "seed"}}
    out = merged(base, {"dataset.num_files_train": "64", "reader.odirect": "True", "dataset.file_prefix": "a: b"})
    assert out == {"dataset": {"num_files_train": 64, "file_prefix": "a: b"},
                   "reader": {"file_shuffle": "seed", "odirect": True}}
    assert base["dataset"]["num_files_train"] == 168


@pytest.mark.parametrize("value, expected", [
    ("/data/unet3d", "/data/unet3d"), (64, "64"), (0.01, "0.01"),
    ("/mnt/my data", "'/mnt/my data'"), ("a,b=c", "'a,b=c'"), ("it's", "'it\\'s'"), ("", "''"),
])
def test_hydra_values_are_quoted_when_not_plain(value, expected):
    assert hydra_value(value) == expected


def test_override_lines_use_the_workload_prefix():
    assert params.hydra_overrides({"dataset.num_files_train": "8"}) == ["++workload.dataset.num_files_train=8"]
