"""DLIO parameter names, ``--params`` checking and merging overrides into the nested workload config.

``DLIO_KEYS`` lists the keys DLIO 2.0.0 (the PyPI release) reads from a workload (its ``LoadConfig``). A few keys
of newer DLIO releases that the MLPerf rules name (``reader.odirect``, ...) are accepted too but marked, because
2.0.0 silently ignores them. Anything else is refused with the nearest known key as a hint: a typo must never
turn into a silently ignored override.
"""

from __future__ import annotations

import copy
import difflib
import re

from mlps import ConfigurationError

_SECTIONS = {
    "": ("framework", "model"),
    "storage": ("storage_type", "storage_root"),
    "dataset": ("record_length", "record_length_stdev", "record_length_resize", "num_files_train",
                "num_files_eval", "generation_buffer_size", "num_samples_per_file", "data_folder",
                "num_subfolders_train", "num_subfolders_eval", "enable_chunking", "chunk_size", "compression",
                "compression_level", "file_prefix", "format", "keep_files"),
    "reader": ("dont_use_mmap", "reader_classname", "multiprocessing_context", "data_loader",
               "data_loader_classname", "data_loader_sampler", "read_threads", "computation_threads",
               "batch_size", "batch_size_eval", "prefetch_size", "file_shuffle", "file_access", "shuffle_size",
               "sample_shuffle", "read_type", "transfer_size", "preprocess_time", "preprocess_time_stdev"),
    "train": ("epochs", "total_training_steps", "seed_change_epoch", "computation_time", "computation_time_stdev",
              "seed"),
    "evaluation": ("eval_time", "eval_time_stdev", "eval_after_epoch", "epochs_between_evals"),
    "checkpoint": ("checkpoint_folder", "checkpoint_after_epoch", "epochs_between_checkpoints",
                   "steps_between_checkpoints", "type", "checkpoint_mechanism_classname", "model_size",
                   "optimization_groups", "num_layers", "layer_parameters", "tensor_parallelism",
                   "pipeline_parallelism"),
    "output": ("folder", "log_file"),
    "workflow": ("generate_data", "train", "debug", "evaluation", "checkpoint", "profiling"),
    "profiling": ("profiler", "iostat_devices"),
    "metric": ("au",),
}

DLIO_KEYS = frozenset(f"{section}.{key}" if section else key for section, keys in _SECTIONS.items() for key in keys)

#: Keys of newer DLIO releases named by the MLPerf rules; DLIO 2.0.0 ignores them.
NEWER_DLIO_KEYS = frozenset({
    "reader.odirect", "dataset.record_length_bytes", "dataset.record_length_bytes_stdev",
    "dataset.record_length_bytes_resize", "dataset.record_dims", "dataset.record_element_type",
    "dataset.num_files_generated", "dataset.skip_listing", "dataset.listing_validation_interval",
    "storage.storage_options.prefetch_window", "checkpoint.fsync", "checkpoint.num_checkpoints_write",
    "checkpoint.num_checkpoints_read", "output.metric.exclude_start_steps", "output.metric.exclude_end_steps",
})

KNOWN_KEYS = DLIO_KEYS | NEWER_DLIO_KEYS

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def normalize_key(key: str) -> str:
    """Accept the hydra spelling ``workload.dataset.x`` (and ``++`` prefixes) for ``dataset.x``."""
    key = key.strip().lstrip("+")
    return key[len("workload."):] if key.startswith("workload.") else key


def check_params(params: dict[str, str]) -> dict[str, str]:
    """Normalised ``--params``; an unknown key is a ConfigurationError naming the nearest DLIO key."""
    checked: dict[str, str] = {}
    for raw_key, value in params.items():
        key = normalize_key(raw_key)
        if not _KEY_RE.match(key) or key not in KNOWN_KEYS:
            nearest = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.6)
            hint = f"did you mean {nearest[0]}?" if nearest else "see the DLIO keys in docs/benchmarks/training.md"
            raise ConfigurationError(f"--params key {raw_key!r} is not a DLIO workload parameter",
                                     parameter=raw_key, suggestion=hint)
        checked[key] = value
    return checked


def yaml_value(text):
    """A ``--params`` string as YAML would read it (``64`` -> 64, ``True`` -> True, ``seed`` -> 'seed')."""
    if not isinstance(text, str):
        return text
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, (dict, list)) and not text.strip().startswith(("[", "{")) else value


def merged(base: dict, overrides: dict[str, object]) -> dict:
    """``base`` (nested) with dotted ``overrides`` applied, values typed as YAML would type them."""
    result = copy.deepcopy(base)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = yaml_value(value)
    return result


def lookup(nested: dict, dotted: str, default=None):
    node = nested
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_./:+\-@]*$")


def hydra_value(value) -> str:
    """A value for a hydra ``++key=value`` override; anything beyond plain characters is single-quoted so a
    path with spaces, commas or ``=`` reaches DLIO as one string."""
    text = value if isinstance(value, str) else str(value)
    if _PLAIN_VALUE.match(text) and text != "":
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def hydra_overrides(overrides: dict[str, object]) -> list[str]:
    return [f"++workload.{key}={hydra_value(value)}" for key, value in overrides.items()]
