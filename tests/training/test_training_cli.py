"""The training commands through the core's CLI in-process: command lines, metadata and bad input.

Nothing here starts DLIO: `--what-if`, datasize and configview need none, and the remaining runs use the core's
recording executor (the real DLIO runs are in test_training_dlio_e2e.py)."""

from __future__ import annotations

import json
import shlex

import pytest

from mlps import hookimpl
from mlps_training import plugin
from mlps_training.workloads import CONFIG_DIR

GIB = 1024 ** 3


@pytest.fixture
def cli(mlps_cli, register_plugin):
    register_plugin(plugin, "training")
    return mlps_cli


def _meta(results, command, model="unet3d"):
    leaf = sorted((results / "training" / model / command).iterdir())[-1]
    return json.loads(next(leaf.glob("training_*_metadata.json")).read_text()), leaf


def _what_if_line(result) -> list[str]:
    lines = [line for line in result.stdout.splitlines() if "dlio_benchmark" in line]
    assert len(lines) == 1, result.output
    argv = shlex.split(lines[0])
    while "=" in argv[0] and not argv[0].startswith("-"):  # leading NAME=value environment of the step
        argv.pop(0)
    return argv


def test_what_if_run_prints_the_reference_line_and_creates_no_data(cli, tmp_path):
    data = tmp_path / "data"
    result = cli.invoke(["training", "run", "-m", "unet3d", "--accelerator-type", "h100", "--num-accelerators", "4",
                         "--client-host-memory-in-gb", "2", "--data-dir", data, "--results-dir", tmp_path / "r",
                         "--hosts", "n1,n2", "--what-if", "--params", "reader.read_threads=2"])
    assert result.exit_code == 0, result.output
    argv = _what_if_line(result)
    meta, leaf = _meta(tmp_path / "r", "run")
    # 5 x 2 hosts x 2 GiB / 146,600,628 B -> 147 files; 500 x 4 x 7 -> 14,000 files (the default)
    assert argv == ["mpirun", "-n", "4", "-host", "n1:2,n2:2", "--bind-to", "none", "--map-by", "node",
                    argv[9], "workload=unet3d_h100", f"++hydra.run.dir={leaf}", "++hydra.output_subdir=dlio_config",
                    f"++workload.dataset.data_folder={data / 'unet3d'}", "++workload.reader.read_threads=2",
                    "++workload.dataset.num_files_train=14000", f"--config-path={CONFIG_DIR}"]
    assert argv[9].endswith("dlio_benchmark")
    assert not data.exists()
    assert meta["exit_status"] == "what-if" and meta["parameters"]["dataset"]["num_files_train"] == 14000
    assert meta["override_parameters"]["dataset.num_files_train"] == "14000"


def test_what_if_datagen_uses_the_datagen_workload_and_the_bin_path(cli, tmp_path):
    result = cli.invoke(["training", "datagen", "-m", "resnet50", "--num-processes", "3", "--data-dir",
                         tmp_path / "d" / "resnet50", "--results-dir", tmp_path / "r",
                         "--dlio-bin-path", "/opt/dlio/bin", "--allow-run-as-root", "--oversubscribe", "--what-if",
                         "--params", "dataset.num_files_train=2000"])
    assert result.exit_code == 0, result.output
    argv = _what_if_line(result)
    assert argv[:4] == ["mpirun", "-n", "3", "-host"] and "--oversubscribe" in argv and "--allow-run-as-root" in argv
    assert "/opt/dlio/bin/dlio_benchmark" in argv and "workload=resnet50_datagen" in argv
    # the data dir already names the model: it is not appended twice
    assert f"++workload.dataset.data_folder={tmp_path / 'd' / 'resnet50'}" in argv
    assert "++workload.dataset.num_files_train=2000" in argv
    assert not (tmp_path / "d").exists()


def test_user_num_files_and_checkpoint_folder_reach_the_run(cli, tmp_path, recording_executor):
    (tmp_path / "data" / "unet3d" / "train").mkdir(parents=True)
    result = cli.invoke(["training", "run", "-m", "unet3d", "-at", "a100", "-na", "1", "-cm", "1", "--data-dir",
                         tmp_path / "data", "--checkpoint-folder", tmp_path / "ck", "--results-dir", tmp_path / "r",
                         "--exec-type", "local", "-aip", "--params", "dataset.num_files_train=40"])
    assert result.exit_code == 6 and "no summary.json" in result.stderr  # recorded, not run: DLIO wrote nothing
    argv = recording_executor.commands[0]
    assert argv[0].endswith("dlio_benchmark")  # --exec-type local: a single DLIO process without mpirun
    assert "++workload.dataset.num_files_train=40" in argv
    assert f"++workload.checkpoint.checkpoint_folder={tmp_path / 'ck' / 'unet3d'}" in argv
    assert recording_executor.steps[0].cwd == str(_meta(tmp_path / "r", "run")[1])


def test_datasize_records_parameters_and_prints_the_datagen_command(cli, tmp_path):
    result = cli.invoke(["training", "datasize", "-m", "unet3d", "-at", "h100", "-cm", "128", "-ma", "8",
                         "--data-dir", tmp_path / "data", "--results-dir", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    meta, _ = _meta(tmp_path / "r", "datasize")
    assert meta["parameters"]["dataset"]["num_files_train"] == 28_000
    assert meta["parameters"]["dataset"]["num_subfolders_train"] == 0
    assert meta["parameters"]["dataset"]["total_disk_bytes"] == 28_000 * 146_600_628
    assert meta["args"]["max_accelerators"] == 8 and meta["args"]["client_host_memory_in_gb"] == 128
    assert "set by steps" in result.stdout
    assert "dataset.num_subfolders_train=2" in result.stdout
    command = next(line.strip() for line in result.stdout.splitlines() if line.strip().startswith("mlps training"))
    assert shlex.split(command)[:3] == ["mlps", "training", "datagen"]
    assert "--num-processes 8" in command and "dataset.num_files_train=28000" in command
    assert not (tmp_path / "data").exists()


class BigCluster:
    """A cluster-info provider reporting 4 hosts x 512 GiB: a cluster this test machine cannot be."""

    @hookimpl
    def mlps_collect_cluster_info(self, run, phase):
        return {"total_memory_bytes": 4 * 512 * GIB, "num_hosts": 4, "collection_method": "test"}


def test_datasize_uses_collected_memory_when_larger(cli, register_plugin, tmp_path):
    register_plugin(BigCluster(), "big-cluster")
    result = cli.invoke(["training", "datasize", "-m", "unet3d", "-at", "b200", "-cm", "16", "-ma", "1",
                         "--results-dir", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    meta, _ = _meta(tmp_path / "r", "datasize")
    # 5 x 2048 GiB / 146,600,628 B = 75,000.1... -> 75,001 files (declared 16 GiB would give 586)
    assert meta["parameters"]["dataset"]["num_files_train"] == 75_001
    assert meta["datasize"]["memory_source"] == "collected" and "set by memory" in result.stdout


def test_configview_prints_config_and_command_and_runs_nothing(cli, tmp_path):
    result = cli.invoke(["training", "configview", "-m", "retinanet", "-at", "mi355", "-na", "8", "-cm", "64",
                         "--results-dir", tmp_path / "r", "--params", "reader.read_threads=4"])
    assert result.exit_code == 0, result.output
    assert "workload:" in result.stdout and "batch_size: 32" in result.stdout and "read_threads: 4" in result.stdout
    assert "workload=retinanet_mi355" in result.stdout


@pytest.mark.parametrize("args, code, text", [
    (["run", "-m", "unet3d", "-at", "mi355", "-na", "1", "-cm", "1", "--data-dir", "D"], 2, "unet3d+b200"),
    (["run", "-m", "bert", "-at", "h100", "-na", "1", "-cm", "1", "--data-dir", "D"], 2, "bert"),
    (["run", "-m", "unet3d", "-at", "h100", "-na", "1", "-cm", "1"], 2, "--data-dir is required"),
    (["datagen", "-m", "unet3d", "-np", "1"], 2, "--data-dir is required"),
    (["run", "-m", "unet3d", "-at", "h100", "-na", "0", "-cm", "1", "--data-dir", "D"], 2, "greater than 0"),
    (["datasize", "-m", "unet3d", "-at", "h100", "-ma", "0", "-cm", "1"], 2, "greater than 0"),
    (["datasize", "-m", "unet3d", "-at", "h100", "-ma", "1", "-cm", "0"], 2, "memory"),
    (["datasize", "-m", "unet3d", "-at", "h100", "-ma", "1", "-cm", "-4"], 2, "greater than 0"),
    (["datasize", "-m", "unet3d", "-at", "h100", "-ma", "1"], 2, "--client-host-memory-in-gb is required"),
    (["run", "-m", "unet3d", "-at", "h100", "-na", "1", "-cm", "1", "--data-dir", "D", "--params",
      "reader.batchsize=2"], 2, "reader.batch_size"),
    (["run", "-m", "unet3d", "-at", "h100", "-na", "1", "-cm", "1", "--data-dir", "FILE"], 3, "is a file"),
    (["run", "-m", "unet3d", "-at", "h100", "-na", "1", "-cm", "1", "--data-dir", "D"], 3, "datagen"),
])
def test_bad_input_is_one_clear_error(cli, tmp_path, args, code, text):
    (tmp_path / "FILE").write_text("not a directory")
    args = [str(tmp_path / a) if a in ("D", "FILE") else a for a in args]
    result = cli.invoke(["training", *args, "--results-dir", tmp_path / "r"])
    assert result.exit_code == code, result.output
    assert text in result.stderr
    assert "Traceback" not in result.output


def test_closed_run_rules_gate_refuses_disallowed_overrides(cli, tmp_path, recording_executor):
    (tmp_path / "d" / "unet3d" / "train").mkdir(parents=True)
    result = cli.invoke(["training", "run", "-m", "unet3d", "-at", "h100", "-na", "1", "-cm", "1", "--data-dir",
                         tmp_path / "d", "--results-dir", tmp_path / "r", "--closed", "--params", "train.epochs=1"])
    assert result.exit_code == 7, result.output
    assert recording_executor.steps == []
    assert "Disallowed parameter override: train.epochs" in result.stderr


def test_tfrecord_datagen_gets_the_tfrecord2idx_stand_in_on_path(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no DALI tfrecord2idx here
    result = cli.invoke(["training", "datagen", "-m", "resnet50", "-np", "1", "--data-dir", tmp_path / "d",
                         "--results-dir", tmp_path / "r", "--what-if"])
    assert result.exit_code == 0, result.output
    tools = CONFIG_DIR.parent / "bin"
    assert f"PATH={tools}:/usr/bin:/bin" in result.stdout
    assert (tools / "tfrecord2idx").stat().st_mode & 0o111
    npz = cli.invoke(["training", "datagen", "-m", "unet3d", "-np", "1", "--data-dir", tmp_path / "d",
                      "--results-dir", tmp_path / "r", "--what-if"])
    assert "PATH=" not in npz.stdout
