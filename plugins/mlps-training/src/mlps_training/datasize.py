"""The MLPerf Storage training dataset-size rule, as pure arithmetic.

The dataset must be large enough that (a) it is at least 5x the total client memory, so the page cache cannot
hold it, and (b) every simulated accelerator trains at least 500 steps per epoch::

    files = max(ceil(5 * total_memory / file_size), ceil(500 * accelerators * batch_size / samples_per_file))

with ``file_size = samples_per_file * record_length`` and ``total_memory = declared GiB * hosts``, or the memory
the cluster collector measured when that is larger.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

GIB = 1024 ** 3
MEMORY_MULTIPLIER = 5
STEPS_PER_EPOCH = 500
FILES_PER_SUBFOLDER = 10_000


@dataclass(frozen=True)
class DatasetSize:
    num_files_train: int
    num_subfolders_train: int
    total_disk_bytes: int
    files_by_memory: int
    files_by_steps: int
    dominant: str  # "memory" or "steps"
    file_size_bytes: float
    total_memory_bytes: int
    memory_source: str  # "declared" or "collected"

    @property
    def suggested_subfolders(self) -> int:
        """Subfolders worth using for big datasets (one per 10,000 files); 0 when not needed."""
        return self.num_files_train // FILES_PER_SUBFOLDER if self.num_files_train > FILES_PER_SUBFOLDER else 0

    def as_dict(self) -> dict:
        data = asdict(self)
        data["suggested_subfolders"] = self.suggested_subfolders
        return data


def record_length(dataset: dict) -> float:
    """Sample size in bytes; DLIO 2.0.0 calls it ``record_length``, newer releases ``record_length_bytes``."""
    for key in ("record_length", "record_length_bytes"):
        if dataset.get(key) is not None:
            return float(dataset[key])
    return 0.0


def collected_memory_bytes(system_info) -> int | None:
    """Total client memory measured by a cluster collector, if its snapshot says so."""
    if not isinstance(system_info, dict):
        return None
    total = system_info.get("total_memory_bytes")
    if isinstance(total, (int, float)) and total > 0:
        return int(total)
    hosts = system_info.get("hosts")
    if isinstance(hosts, list):
        sizes = []
        for host in hosts:
            memory = host.get("memory") if isinstance(host, dict) else None
            value = memory.get("total") if isinstance(memory, dict) else None
            if isinstance(value, (int, float)) and value > 0:
                sizes.append(int(value))
        if sizes:
            return sum(sizes)
    return None


def compute(dataset: dict, batch_size: int, accelerators: int, host_memory_gib: float, num_hosts: int,
            collected_bytes: int | None = None) -> DatasetSize:
    """The minimum training dataset for a workload's ``dataset`` block."""
    samples_per_file = int(dataset.get("num_samples_per_file") or 1)
    file_size = samples_per_file * record_length(dataset)
    declared = int(host_memory_gib * GIB * num_hosts)
    total_memory, source = declared, "declared"
    if collected_bytes and collected_bytes > declared:
        total_memory, source = int(collected_bytes), "collected"
    by_memory = math.ceil(MEMORY_MULTIPLIER * total_memory / file_size) if file_size > 0 else 0
    by_steps = math.ceil(STEPS_PER_EPOCH * accelerators * batch_size / samples_per_file)
    files = max(by_memory, by_steps)
    return DatasetSize(num_files_train=files, num_subfolders_train=0,
                       total_disk_bytes=int(math.ceil(files * file_size)), files_by_memory=by_memory,
                       files_by_steps=by_steps, dominant="memory" if by_memory >= by_steps else "steps",
                       file_size_bytes=file_size, total_memory_bytes=total_memory, memory_source=source)


def report_lines(size: DatasetSize, accelerators: int, batch_size: int) -> list[str]:
    """Human-readable result, one fact per line."""
    if size.dominant == "memory":
        why = (f"memory: {MEMORY_MULTIPLIER} x {size.total_memory_bytes / GIB:.2f} GiB of client memory "
               f"({size.memory_source}) needs {size.files_by_memory} files (the 500-step rule needs "
               f"{size.files_by_steps})")
    else:
        why = (f"steps: {STEPS_PER_EPOCH} steps x {accelerators} accelerators x batch {batch_size} needs "
               f"{size.files_by_steps} files (the memory rule needs {size.files_by_memory})")
    lines = [f"RESULT: the dataset size is set by {why}",
             f"Number of training files: {size.num_files_train}",
             f"Number of training subfolders: {size.num_subfolders_train}",
             f"Total disk space required for training: {size.total_disk_bytes / GIB:.2f} GiB "
             f"({size.total_disk_bytes} bytes)"]
    if size.suggested_subfolders:
        lines.append(f"{size.num_files_train} files is more than {FILES_PER_SUBFOLDER} in one folder: consider "
                     f"--params dataset.num_subfolders_train={size.suggested_subfolders} for datagen and run")
    return lines
