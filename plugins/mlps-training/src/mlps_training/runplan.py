"""Resolving a training run (prepare) and turning it into steps (build). Called from the plugin's hooks.

prepare writes nothing (the hook contract): the data directory is only checked, never created. DLIO creates
``<data-dir>/<model>/train`` itself when it generates data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlps import ConfigurationError, FileSystemError, Run, Step

from mlps_training import datasize, dlio
from mlps_training.params import NEWER_DLIO_KEYS, check_params, lookup, merged
from mlps_training.workloads import (datagen_workload, load_workload, model_key, models, training_workload)

log = logging.getLogger("mlps.training")

NEEDS_DATA_DIR = ("datagen", "run")
TOOLS_DIR = Path(__file__).resolve().parent / "bin"
NEEDS_MEMORY = ("datasize", "run", "configview")


def _positive(run: Run, dest: str, flag: str, kind=int):
    value = run.option(dest)
    if value is None:
        raise ConfigurationError(f"{flag} is required for 'training {run.command}'", parameter=dest,
                                 suggestion=f"pass {flag} N")
    if kind(value) <= 0:
        raise ConfigurationError(f"{flag} must be greater than 0, got {value}", parameter=dest,
                                 expected="> 0", actual=value, suggestion=f"pass a positive {flag}")
    return kind(value)


def data_folder(data_dir: Path, model: str) -> Path:
    """``<data-dir>/<model>``, unless the data dir already names the model."""
    data_dir = data_dir.expanduser().resolve()
    return data_dir if data_dir.name in (model, model_key(model)) else data_dir / model


def _checked_data_dir(run: Run) -> Path | None:
    raw = run.option("data_dir")
    if raw in (None, ""):
        if run.command in NEEDS_DATA_DIR:
            raise ConfigurationError(f"--data-dir is required for 'training {run.command}'", parameter="data_dir",
                                     suggestion="pass --data-dir DIR (or set MLPS_DATA_DIR)")
        return None
    path = Path(raw).expanduser()
    if path.exists() and not path.is_dir():
        raise FileSystemError(f"data directory {path} is a file, not a directory", path=path,
                              suggestion="pass --data-dir pointing to a directory (it is created if missing)")
    return path


def _memory_and_hosts(run: Run) -> tuple[float, int]:
    memory = _positive(run, "client_host_memory_in_gb", "--client-host-memory-in-gb", float)
    hosts = run.option("num_client_hosts")
    if hosts is not None and int(hosts) <= 0:
        raise ConfigurationError(f"--num-client-hosts must be at least 1, got {hosts}", parameter="num_client_hosts",
                                 suggestion="leave it out to use the number of --hosts")
    return memory, int(hosts) if hosts is not None else max(1, len(run.hosts))


def dataset_size(run: Run, collected_bytes: int | None = None) -> datasize.DatasetSize:
    memory, hosts = _memory_and_hosts(run)
    accelerators = run.num_processes
    batch = int(lookup(run.parameters, "reader.batch_size", 1) or 1)
    return datasize.compute(run.parameters.get("dataset") or {}, batch, accelerators, memory, hosts, collected_bytes)


def prepare(run: Run) -> None:
    model = run.option("model")
    if model not in models():
        raise ConfigurationError(f"unknown training model {model!r}", parameter="model",
                                 suggestion=f"choose one of: {', '.join(models())}")
    user = check_params(run.params)
    for key in sorted(set(user) & NEWER_DLIO_KEYS):
        log.warning("--params %s is a key of newer DLIO releases; DLIO 2.0.0 ignores it", key)
    data_dir = _checked_data_dir(run)
    accelerator = run.option("accelerator_type")
    if run.command == "datagen":
        workload = datagen_workload(model)
        run.num_processes = _positive(run, "num_processes", "--num-processes")
    else:
        if not accelerator:
            raise ConfigurationError(f"--accelerator-type is required for 'training {run.command}'",
                                     parameter="accelerator_type", suggestion="pass --accelerator-type, e.g. h100")
        workload = training_workload(model, accelerator)
        dest, flag = (("max_accelerators", "--max-accelerators") if run.command == "datasize"
                      else ("num_accelerators", "--num-accelerators"))
        run.num_processes = _positive(run, dest, flag)
    if run.option("exec_type") == "local" and run.num_processes > 1 and run.command in NEEDS_DATA_DIR:
        raise ConfigurationError("--exec-type local runs a single DLIO process", parameter="exec_type",
                                 suggestion="use --exec-type mpi for more than one process")
    tool: dict[str, str] = {}
    if data_dir is not None:
        tool["dataset.data_folder"] = str(data_folder(data_dir, model))
    if run.command in ("run", "configview") and run.option("checkpoint_folder"):
        tool["checkpoint.checkpoint_folder"] = str(Path(run.option("checkpoint_folder")).expanduser().resolve() / model)
    if run.command == "run" and not run.what_if and "dataset.data_folder" not in user:
        train = Path(tool["dataset.data_folder"]) / "train"
        if not train.is_dir():
            raise FileSystemError(f"no training data at {train}", path=train,
                                  suggestion=f"generate it first: mlps training datagen --model {model} "
                                             f"--data-dir {data_dir} --num-processes N")
    run.model, run.accelerator = model, accelerator
    overrides = {**tool, **user}  # the user's value wins over an injected one
    run.parameters = merged(load_workload(workload), overrides)
    run.override_parameters = dict(overrides)
    if run.command in NEEDS_MEMORY:
        size = dataset_size(run)
        if run.command == "datasize":
            _record_size(run, size)
        elif "dataset.num_files_train" not in user:
            run.override_parameters["dataset.num_files_train"] = str(size.num_files_train)
            run.parameters = merged(run.parameters, {"dataset.num_files_train": size.num_files_train})
    run.extra_metadata["dlio"] = {"workload": workload, "binary": dlio.resolve_binary(run.option("dlio_bin_path")),
                                  "config_path": str(dlio.CONFIG_DIR)}


def _record_size(run: Run, size: datasize.DatasetSize) -> None:
    run.parameters = merged(run.parameters, {"dataset.num_files_train": size.num_files_train,
                                             "dataset.num_subfolders_train": size.num_subfolders_train})
    run.parameters["dataset"]["total_disk_bytes"] = size.total_disk_bytes
    run.override_parameters["dataset.num_files_train"] = str(size.num_files_train)
    run.override_parameters["dataset.num_subfolders_train"] = str(size.num_subfolders_train)
    run.extra_metadata["datasize"] = size.as_dict()


def dlio_argv(run: Run) -> list[str]:
    info = run.extra_metadata["dlio"]
    run_dir = run.run_dir if run.run_dir is not None else "<run dir>"
    line = dlio.command_line(info["binary"], info["workload"], run_dir, run.override_parameters)
    if run.option("exec_type") == "local":
        return line
    return run.mpi_prefix() + line


def build(run: Run) -> list[Step]:
    if run.command == "datasize":
        return [Step(func=datasize_step, name="datasize", description="compute the minimum training dataset")]
    if run.command == "configview":
        return [Step(func=configview_step, name="configview", description="print the resolved DLIO config")]
    cwd = str(run.run_dir) if run.run_dir is not None else None  # relative DLIO paths land in the run dir
    return [Step(argv=dlio_argv(run), name=run.command, cwd=cwd, env=_tool_env(run))]


def _tool_env(run: Run) -> dict[str, str]:
    """DLIO 2.0.0 runs DALI's `tfrecord2idx` after writing each TFRecord file; DALI is not installable from PyPI,
    so our stand-in goes first on PATH when none is installed (local ranks inherit it from mpirun)."""
    import os
    import shutil

    if run.command != "datagen" or lookup(run.parameters, "dataset.format") != "tfrecord":
        return {}
    if shutil.which("tfrecord2idx"):
        return {}
    return {"PATH": os.pathsep.join([str(TOOLS_DIR), os.environ.get("PATH", os.defpath)])}


def datasize_step(run: Run) -> int:
    """Recompute with the collected cluster memory (known only now) and print the result."""
    size = dataset_size(run, datasize.collected_memory_bytes(run.system_info))
    if size.memory_source == "collected":
        log.warning("the collected cluster memory (%.2f GiB) is larger than declared; using it",
                    size.total_memory_bytes / datasize.GIB)
    _record_size(run, size)
    batch = int(lookup(run.parameters, "reader.batch_size", 1) or 1)
    for line in datasize.report_lines(size, run.num_processes, batch):
        print(line)
    print("Generate the dataset with:")
    print("  " + datagen_command(run, size))
    return 0


def datagen_command(run: Run, size: datasize.DatasetSize) -> str:
    import shlex

    argv = ["mlps", "training", "datagen", "--model", run.model, "--num-processes", str(run.num_processes),
            "--hosts", ",".join(str(h) for h in run.hosts), "--results-dir", str(run.results_root),
            "--data-dir", str(run.option("data_dir") or "<INSERT_DATA_DIR>"),
            "--params", f"dataset.num_files_train={size.num_files_train}"]
    if size.suggested_subfolders:
        argv.append(f"dataset.num_subfolders_train={size.suggested_subfolders}")
    return shlex.join(argv)


def configview_step(run: Run) -> int:
    import shlex

    import yaml

    print(f"# DLIO workload {run.extra_metadata['dlio']['workload']} as mlps resolves it")
    print(yaml.safe_dump({"workload": run.parameters}, sort_keys=False).rstrip())
    print("# command line")
    print(shlex.join(dlio_argv(run)))
    return 0
