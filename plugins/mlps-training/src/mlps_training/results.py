"""DLIO's result files (summary.json, per_epoch_stats.json) turned into the run's metrics."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from mlps import ExecutionError


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ExecutionError(f"DLIO result file {path.name} is unreadable: {exc}",
                             suggestion=f"inspect {path}") from None


def _per_epoch_file(run_dir: Path) -> Path | None:
    """DLIO 2.0.0 writes per_epoch_stats.json; newer releases prefix it with the rank."""
    for candidate in (run_dir / "per_epoch_stats.json", *sorted(run_dir.glob("*per_epoch_stats.json"))):
        if candidate.is_file():
            return candidate
    return None


def _timestamp(text):
    if not isinstance(text, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def dlio_runtime_seconds(summary: dict) -> float | None:
    """DLIO's own start-to-end time from summary.json (after its imports and MPI start-up)."""
    start, end = _timestamp(summary.get("start")), _timestamp(summary.get("end"))
    return (end - start).total_seconds() if start and end else None


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_training(run_dir: Path) -> dict:
    """Metrics of a DLIO training run; raises ExecutionError when the run did not really train."""
    run_dir = Path(run_dir)
    summary = _read_json(run_dir / "summary.json")
    if summary is None:
        raise ExecutionError("DLIO exited 0 but wrote no summary.json (it did not train)",
                             suggestion=f"see dlio.log and training_run.stdout.log in {run_dir}")
    metric = summary.get("metric") or {}
    au_per_epoch = [float(v) for v in metric.get("train_au_percentage") or []]
    samples_per_epoch = [float(v) for v in metric.get("train_throughput_samples_per_second") or []]
    if not au_per_epoch or not summary.get("epochs"):
        raise ExecutionError("DLIO exited 0 but trained 0 steps: summary.json has no training epochs",
                             suggestion="the dataset is probably smaller than one batch per rank; raise "
                                        "dataset.num_files_train or lower reader.batch_size")
    mean_samples = _number(metric.get("train_throughput_mean_samples_per_second"))
    if not mean_samples or mean_samples <= 0:
        raise ExecutionError("DLIO exited 0 but reported no training throughput (0 steps measured)",
                             suggestion="each epoch needs more than 2 steps per rank to be measured; raise "
                                        "dataset.num_files_train or lower reader.batch_size")
    io_mean = metric.get("train_io_mean_MB_per_second", metric.get("train_io_throughput_MB_per_second"))
    metrics = {
        "train_au_mean_percentage": _number(metric.get("train_au_mean_percentage")),
        "train_au_stdev_percentage": _number(metric.get("train_au_stdev_percentage")),
        "train_au_percentage": au_per_epoch,
        "train_au_meet_expectation": metric.get("train_au_meet_expectation"),
        "train_throughput_mean_samples_per_second": mean_samples,
        "train_throughput_stdev_samples_per_second": _number(metric.get("train_throughput_stdev_samples_per_second")),
        "train_throughput_samples_per_second": samples_per_epoch,
        # DLIO's names say MB; the values are MiB/s (samples/s x record_length / 2**20).
        "train_io_mean_MB_per_second": _number(io_mean),
        "train_io_stdev_MB_per_second": _number(metric.get("train_io_stdev_MB_per_second")),
        "epochs": summary.get("epochs"),
        "num_accelerators": summary.get("num_accelerators"),
        "num_hosts": summary.get("num_hosts"),
        "num_files_train": summary.get("num_files_train"),
        "host_memory_GB": summary.get("host_memory_GB"),
        "dlio_start": summary.get("start"),
        "dlio_end": summary.get("end"),
        "dlio_runtime_seconds": dlio_runtime_seconds(summary),
    }
    for key, value in metric.items():  # evaluation metrics when DLIO ran them
        if key.startswith("eval_"):
            metrics[key] = value
    per_epoch = _per_epoch_file(run_dir)
    if per_epoch is not None:
        stats = _read_json(per_epoch) or {}
        metrics["epoch_durations_seconds"] = [_number_text(stats[k].get("duration"))
                                              for k in sorted(stats, key=_epoch_order) if isinstance(stats[k], dict)]
    return metrics


def _epoch_order(key: str):
    return (0, int(key)) if str(key).isdigit() else (1, str(key))


def _number_text(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
