"""End to end with the real DLIO 2.0.0 under real mpirun, through the installed `mlps` command."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest
import yaml

from mlps import ExecutionError
from mlps_training import plugin
from mlps_training.results import parse_training

from training_helpers import MPI_FLAGS, TINY_DATASET, metadata_of, mlps, needs_dlio

pytestmark = needs_dlio


def test_datagen_writes_the_requested_npz_files(tiny_dataset):
    data, results, _ = tiny_dataset
    files = sorted((data / "unet3d" / "train").iterdir())
    assert [f.suffix for f in files] == [".npz"] * 8
    assert all(60_000 < f.stat().st_size < 80_000 for f in files)  # 64 KiB records, numpy's npz framing
    meta = metadata_of(results, "datagen")
    assert meta["exit_status"] == "success" and meta["num_processes"] == 2
    assert meta["parameters"]["workflow"] == {"generate_data": True, "train": False, "checkpoint": False}
    assert "workload=unet3d_datagen" in meta["executed_command"]
    leaf = results / "training" / "unet3d" / "datagen" / meta["run_datetime"]
    assert sorted(p.name for p in (leaf / "dlio_config").iterdir()) == ["config.yaml", "hydra.yaml", "overrides.yaml"]


def test_two_rank_training_metrics_come_from_dlio_summary(tiny_training):
    data, results, proc = tiny_training
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = metadata_of(results, "run")
    leaf = results / "training" / "unet3d" / "run" / meta["run_datetime"]
    summary = json.loads((leaf / "summary.json").read_text())
    metrics = meta["metrics"]
    assert summary["num_accelerators"] == 2 and metrics["num_accelerators"] == 2
    assert metrics["epochs"] == 2 and len(metrics["train_au_percentage"]) == 2
    assert metrics["train_au_mean_percentage"] == summary["metric"]["train_au_mean_percentage"]
    assert metrics["train_throughput_mean_samples_per_second"] > 0
    assert metrics["train_io_mean_MB_per_second"] == summary["metric"]["train_io_mean_MB_per_second"]
    assert len(metrics["epoch_durations_seconds"]) == 2
    assert 0 < metrics["dlio_runtime_seconds"] < meta["runtime"]
    assert meta["num_processes"] == 2 and meta["accelerator"] == "h100"
    assert meta["parameters"]["dataset"]["num_files_train"] == 8
    assert meta["override_parameters"]["dataset.data_folder"] == str(data / "unet3d")
    assert (leaf / "training_run.stdout.log").is_file() and (leaf / "dlio.log").is_file()
    assert meta["executed_command"].startswith("mpirun -n 2 -host 127.0.0.1:2")


def test_training_that_measures_zero_steps_is_a_failure(tiny_dataset, tmp_path):
    data, _, _ = tiny_dataset
    # batch 8 over 2 ranks and 8 files: no step per rank can be measured; DLIO still exits 0
    proc = mlps("run", "-m", "unet3d", "-at", "h100", "-na", 2, "-cm", 0.0001, "--data-dir", data,
                "--results-dir", tmp_path, *MPI_FLAGS, "-aip", "--params", *TINY_DATASET, "reader.batch_size=8",
                "train.epochs=1", "train.computation_time=0.001")
    assert proc.returncode == 6, proc.stderr[-2000:]
    assert "0 steps" in proc.stderr
    meta = metadata_of(tmp_path, "run")
    assert meta["exit_status"] == "failed" and "0 steps" in meta["error"]["message"]


def test_dlio_failing_is_reported_with_its_stderr(tiny_dataset, tmp_path):
    data, _, _ = tiny_dataset
    params = [p for p in TINY_DATASET if "num_files_train" not in p] + ["dataset.num_files_train=64"]
    proc = mlps("run", "-m", "unet3d", "-at", "h100", "-na", 1, "-cm", 0.0001, "--data-dir", data,
                "--results-dir", tmp_path, *MPI_FLAGS, "-aip", "--params", *params)
    assert proc.returncode == 6
    assert "exited with status" in proc.stderr and "Not enough training dataset" in proc.stderr
    meta = metadata_of(tmp_path, "run")
    assert meta["exit_status"] == "failed" and meta["metrics"] == {}


def test_missing_dlio_fails_fast_with_the_install_recipe(tiny_dataset, tmp_path):
    data, _, _ = tiny_dataset
    proc = mlps("run", "-m", "unet3d", "-at", "h100", "-na", 1, "-cm", 1, "--data-dir", data,
                "--results-dir", tmp_path, "--dlio-bin-path", tmp_path / "nowhere", "-aip")
    assert proc.returncode == 4, proc.stderr
    assert "pip install --no-deps dlio-benchmark==2.0.0" in proc.stderr
    assert "pydftracer==1.0.2" in proc.stderr


def test_dlio_loads_our_workload_file_not_its_bundled_copy(tmp_path):
    """DLIO bundles unet3d_h100 too (with workflow.checkpoint True); ours says False. Hydra's --cfg job prints
    the composed config of the exact line mlps builds, without running anything."""
    proc = mlps("run", "-m", "unet3d", "-at", "h100", "-na", 1, "-cm", 1, "--data-dir", tmp_path / "d",
                "--results-dir", tmp_path / "r", "--what-if")
    line = next(x for x in proc.stdout.splitlines() if "dlio_benchmark" in x)
    argv = shlex.split(line)
    argv = argv[argv.index(next(a for a in argv if a.endswith("dlio_benchmark"))):]
    composed = subprocess.run([*argv, "--cfg", "job"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert composed.returncode == 0, composed.stderr[-2000:]
    workload = yaml.safe_load(composed.stdout[composed.stdout.index("workload:"):])["workload"]
    assert workload["workflow"]["checkpoint"] is False
    assert workload["dataset"]["data_folder"] == str(tmp_path / "d" / "unet3d")
    assert workload["dataset"]["num_files_train"] == 3500  # the datasize default: 500 x 1 x 7


def test_parser_refuses_a_directory_dlio_left_without_summary(tiny_dataset):
    """DLIO's generate-only leaf is real DLIO output with no summary.json: parsing it must fail, not invent."""
    _, results, _ = tiny_dataset
    meta = metadata_of(results, "datagen")
    leaf = results / "training" / "unet3d" / "datagen" / meta["run_datetime"]
    with pytest.raises(ExecutionError, match="no summary.json"):
        parse_training(leaf)


def test_headline_metrics_of_the_real_run(tiny_training):
    _, results, _ = tiny_training
    meta = metadata_of(results, "run")
    headline = plugin.mlps_headline_metrics("training", meta)
    assert headline["AU (%)"] == meta["metrics"]["train_au_mean_percentage"]
    assert headline["I/O (MiB/s)"] == meta["metrics"]["train_io_mean_MB_per_second"] > 0
    assert plugin.mlps_headline_metrics("kv_cache", meta) is None


def test_tfrecord_datagen_works_without_dali(tmp_path):
    """DLIO 2.0.0 calls DALI's tfrecord2idx after each TFRecord file; our stand-in must index every record."""
    proc = mlps("datagen", "-m", "cosmoflow", "-np", 1, "--data-dir", tmp_path / "d", "--results-dir", tmp_path / "r",
                *MPI_FLAGS, "--params", "dataset.num_files_train=2", "dataset.record_length=4096",
                "dataset.record_length_stdev=0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = sorted((tmp_path / "d" / "cosmoflow" / "train").glob("*.tfrecord"))
    assert len(records) == 2
    for record in records:
        index = tmp_path / "d" / "cosmoflow" / "index" / "train" / f"{record.name}.idx"
        entries = [tuple(map(int, line.split())) for line in index.read_text().splitlines()]
        assert entries and entries[0][0] == 0 and sum(length for _, length in entries) == record.stat().st_size
