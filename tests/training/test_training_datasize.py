"""The dataset-size rule against cases computed by hand (integer arithmetic written out in each test)."""

from __future__ import annotations

import pytest

from mlps_training import datasize
from mlps_training.workloads import load_workload

GIB = 1024 ** 3
UNET_RECORD = 146_600_628  # bytes per unet3d sample (one sample per file)


def test_unet3d_h100_eight_accelerators_is_set_by_the_step_rule():
    dataset = load_workload("unet3d_h100")["dataset"]
    size = datasize.compute(dataset, batch_size=7, accelerators=8, host_memory_gib=128, num_hosts=1)
    # memory: 5 * 128 GiB = 687,194,767,360 B / 146,600,628 B = 4687.5... -> 4688 files
    # steps: 500 * 8 * 7 / 1 = 28,000 files
    assert (size.files_by_memory, size.files_by_steps) == (4688, 28_000)
    assert size.num_files_train == 28_000 and size.dominant == "steps"
    assert size.total_disk_bytes == 28_000 * UNET_RECORD == 4_104_817_584_000
    assert size.num_subfolders_train == 0 and size.suggested_subfolders == 2  # 28,000 // 10,000


def test_many_hosts_with_large_memory_is_set_by_the_memory_rule():
    dataset = load_workload("unet3d_b200")["dataset"]
    size = datasize.compute(dataset, batch_size=7, accelerators=4, host_memory_gib=1024, num_hosts=4)
    # memory: 5 * 4 * 1024 GiB = 21,990,232,555,520 B / 146,600,628 = 150,000.3... -> 150,001 files
    # steps: 500 * 4 * 7 = 14,000 files
    assert (size.files_by_memory, size.files_by_steps) == (150_001, 14_000)
    assert size.dominant == "memory" and size.num_files_train == 150_001
    assert size.suggested_subfolders == 15


def test_resnet50_counts_samples_per_file():
    dataset = load_workload("resnet50_h100")["dataset"]
    size = datasize.compute(dataset, batch_size=400, accelerators=16, host_memory_gib=64, num_hosts=2)
    # file = 1251 samples * 114,660.07 B = 143,439,747.57 B
    # memory: 5 * 2 * 64 GiB = 687,194,767,360 B / 143,439,747.57 = 4790.8... -> 4791 files
    # steps: 500 * 16 * 400 / 1251 = 2557.9... -> 2558 files
    assert (size.files_by_memory, size.files_by_steps) == (4791, 2558)
    assert size.num_files_train == 4791
    assert size.total_disk_bytes == 687_219_830_608  # ceil(4791 * 143,439,747.57 = 687,219,830,607.87)
    assert size.suggested_subfolders == 0


def test_collected_memory_is_used_only_when_larger_than_declared():
    dataset = {"num_samples_per_file": 1, "record_length": GIB}  # 1 GiB files keep the numbers readable
    declared = datasize.compute(dataset, 1, 1, host_memory_gib=10, num_hosts=2)
    assert declared.files_by_memory == 100 and declared.memory_source == "declared"  # 5 * 20 GiB / 1 GiB
    larger = datasize.compute(dataset, 1, 1, 10, 2, collected_bytes=30 * GIB)
    assert larger.files_by_memory == 150 and larger.memory_source == "collected"
    smaller = datasize.compute(dataset, 1, 1, 10, 2, collected_bytes=5 * GIB)
    assert smaller.files_by_memory == 100 and smaller.memory_source == "declared"


@pytest.mark.parametrize("info, expected", [
    (None, None),
    ({}, None),
    ({"total_memory_bytes": 64 * GIB}, 64 * GIB),
    ({"hosts": [{"memory": {"total": 8 * GIB}}, {"memory": {"total": 8 * GIB}}]}, 16 * GIB),
    ({"hosts": [{"memory": {}}]}, None),
])
def test_collected_memory_is_read_from_the_cluster_snapshot(info, expected):
    assert datasize.collected_memory_bytes(info) == expected


def test_newer_record_length_bytes_key_is_understood():
    assert datasize.record_length({"record_length_bytes": 4096}) == 4096.0
    assert datasize.record_length({}) == 0.0
    size = datasize.compute({"num_samples_per_file": 2}, batch_size=4, accelerators=1, host_memory_gib=1,
                            num_hosts=1)
    assert size.files_by_memory == 0 and size.num_files_train == 1000  # 500 * 1 * 4 / 2


def test_report_names_the_dominating_constraint_and_the_subfolder_hint():
    size = datasize.compute(load_workload("unet3d_h100")["dataset"], 7, 8, 128, 1)
    text = "\n".join(datasize.report_lines(size, 8, 7))
    assert "set by steps" in text and "Number of training files: 28000" in text
    assert "3822.91 GiB" in text and "dataset.num_subfolders_train=2" in text
