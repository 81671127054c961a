"""The shipped DLIO workloads: which model/accelerator pairs exist, and their YAML contents.

The YAML files under ``configs/workload/`` are the single source of truth: ``<model>_<accelerator>.yaml`` for
training and ``<model>_datagen.yaml`` for dataset generation. Listing them needs only the standard library, so
the CLI's ``--model`` / ``--accelerator-type`` choices cost nothing at start-up; PyYAML is imported only when a
file is read.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from mlps import ConfigurationError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
WORKLOAD_DIR = CONFIG_DIR / "workload"
DATAGEN_SUFFIX = "datagen"


def _stems() -> list[str]:
    return sorted(name[:-5] for name in os.listdir(WORKLOAD_DIR) if name.endswith(".yaml"))


def _split(stem: str) -> tuple[str, str]:
    model, _, accel = stem.rpartition("_")
    return model, accel


def model_key(model: str) -> str:
    """Workload file names use ``_`` where model names may use ``-``."""
    return model.replace("-", "_")


@lru_cache(maxsize=1)
def supported_pairs() -> tuple[tuple[str, str], ...]:
    """Every (model, accelerator) pair that has a training workload file."""
    return tuple(_split(s) for s in _stems() if _split(s)[1] != DATAGEN_SUFFIX)


def models() -> tuple[str, ...]:
    return tuple(sorted({m for m, _ in supported_pairs()}))


def accelerators() -> tuple[str, ...]:
    return tuple(sorted({a for _, a in supported_pairs()}))


def pairs_text() -> str:
    return ", ".join(f"{m}+{a}" for m, a in supported_pairs())


def training_workload(model: str, accelerator: str) -> str:
    """The hydra ``workload=`` name for a pair; an unshipped pair is a configuration error."""
    if (model_key(model), accelerator) not in supported_pairs():
        raise ConfigurationError(
            f"the combination --model={model} --accelerator-type={accelerator} is not supported",
            parameter="accelerator_type", expected=pairs_text(), actual=f"{model}+{accelerator}",
            suggestion=f"choose one of the supported pairs: {pairs_text()}", code="E103")
    return f"{model_key(model)}_{accelerator}"


def datagen_workload(model: str) -> str:
    name = f"{model_key(model)}_{DATAGEN_SUFFIX}"
    if not (WORKLOAD_DIR / f"{name}.yaml").is_file():
        raise ConfigurationError(f"model {model!r} has no dataset-generation workload", parameter="model",
                                 suggestion=f"choose one of: {', '.join(models())}")
    return name


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    import yaml

    with open(WORKLOAD_DIR / f"{name}.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def load_workload(name: str) -> dict:
    """A fresh nested copy of one workload's YAML (callers may change it)."""
    import copy

    return copy.deepcopy(_load(name))
