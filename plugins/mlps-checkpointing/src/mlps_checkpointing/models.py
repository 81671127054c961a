"""The four LLM checkpoint workloads as data, and the size arithmetic the reference tool uses.

Pure stdlib: imported by the plugin (datasize, rules) and by the engine (shard plan), so both agree on sizes.
Sizes are in binary units: one "GB" here is 2**30 bytes, as in DLIO's ``checkpoint_size_GB``.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024 ** 3
#: O_DIRECT needs offsets, lengths and buffers aligned to the device's logical block; 4 KiB covers common disks.
ALIGNMENT = 4096


@dataclass(frozen=True)
class LlmModel:
    name: str  # CLI name, llama3-8b
    workload: str  # workload YAML / DLIO config name, llama3_8b
    dlio_model_name: str  # model.name inside the YAML, llama_8b
    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    tensor_parallelism: int
    pipeline_parallelism: int
    zero_level: int
    closed_processes: int  # TP x PP x DP of the closed configuration
    gpus_per_dp: int  # ranks of one data-parallel instance (the reference's GPUs-per-DP)
    model_gb: float  # model state (fp16) of the whole model
    optimizer_gb: float  # optimizer state (fp32) of the whole model
    rules_checkpoint_size_gb: float  # Rules table 2 figure, for the aggregate-accelerator-memory rule
    vocab_size: int = 128256
    min_processes: int = 8

    @property
    def tp_pp(self) -> int:
        return self.tensor_parallelism * self.pipeline_parallelism

    @property
    def closed_data_parallelism(self) -> int:
        return self.closed_processes // self.gpus_per_dp


MODELS: dict[str, LlmModel] = {m.name: m for m in (
    LlmModel("llama3-8b", "llama3_8b", "llama_8b", 32, 4096, 14336, 32, 8, 1, 1, 3, 8, 8, 15, 90, 105),
    LlmModel("llama3-70b", "llama3_70b", "llama_70b", 80, 8192, 28672, 128, 8, 8, 1, 3, 64, 8, 130, 781, 912),
    LlmModel("llama3-405b", "llama3_405b", "llama_405b", 126, 16384, 53248, 128, 8, 8, 32, 1, 512, 256,
             755, 4533, 5290),
    LlmModel("llama3-1t", "llama3_1t", "llama_1t", 128, 25872, 98304, 192, 32, 8, 64, 1, 1024, 512,
             2571, 15426, 18000),
)}

#: Accelerator memory in GB (Rules table 3). h100/a100 are accepted for what-if planning only.
ACCELERATOR_MEMORY_GB = {"b200": 180, "mi355": 288, "h100": 80, "a100": 80}
SUBMITTABLE_ACCELERATORS = ("b200", "mi355")


def get_model(name: str) -> LlmModel:
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown checkpointing model {name!r}; known: {', '.join(MODELS)}") from None


def rank_size_gb(model: LlmModel, num_processes: int, rank: int) -> tuple[float, float]:
    """(model GB, optimizer GB) rank ``rank`` holds, by ZeRO level, exactly as the reference's datasize does.

    ZeRO 3 shards everything over all ranks. ZeRO 1 shards the optimizer over all ranks, while the model
    state is split over the first data-parallel instance (ranks below GPUs-per-DP) only.
    """
    n = num_processes
    if n < 1 or not 0 <= rank < n:
        raise ValueError(f"rank {rank} is not in 0..{n - 1}")
    if model.zero_level == 3:
        return model.model_gb / n, model.optimizer_gb / n
    if model.zero_level == 1:
        return (model.model_gb / model.gpus_per_dp if rank < model.gpus_per_dp else 0.0), model.optimizer_gb / n
    raise ValueError(f"unsupported ZeRO level {model.zero_level}")


def rank_sizes_gb(model: LlmModel, num_processes: int) -> list[tuple[float, float]]:
    return [rank_size_gb(model, num_processes, r) for r in range(num_processes)]


def per_rank_gb(model: LlmModel, num_processes: int) -> list[float]:
    return [m + o for m, o in rank_sizes_gb(model, num_processes)]


def total_gb(model: LlmModel, num_processes: int) -> float:
    return sum(per_rank_gb(model, num_processes))


def datasize_report(model: LlmModel, num_processes: int, num_hosts: int, host_memory_gb: float | None,
                    num_checkpoints_write: int) -> dict:
    """Everything ``datasize`` prints and records: per-rank GB, total GB, bytes needed on disk, cache warning."""
    ranks = per_rank_gb(model, num_processes)
    total = sum(ranks)
    per_host = total / max(num_hosts, 1)
    report = {
        "model": model.name,
        "zero_level": model.zero_level,
        "num_processes": num_processes,
        "num_hosts": num_hosts,
        "per_rank_GB": [round(r, 6) for r in ranks],
        "total_GB": round(total, 6),
        "checkpoint_GB_per_host": round(per_host, 6),
        "num_checkpoints_write": num_checkpoints_write,
        # CAP-01: what the write phase needs free under <checkpoint-folder>/<model>
        "required_bytes": int(total * GIB * num_checkpoints_write),
    }
    if host_memory_gb:
        # Rule 4.3.1: checkpoint data per host within 3x host memory may be served from page cache.
        report["host_memory_GB"] = host_memory_gb
        report["page_cache_risk"] = per_host <= 3 * host_memory_gb
    return report


@dataclass(frozen=True)
class ShardFile:
    name: str
    nbytes: int


def _aligned(nbytes: float) -> int:
    """Round up to the O_DIRECT alignment; a non-empty shard is at least one aligned block."""
    n = int(-(-int(round(nbytes)) // ALIGNMENT) * ALIGNMENT)
    return max(n, ALIGNMENT) if nbytes > 0 else 0


def rank_shards(model: LlmModel, num_processes: int, rank: int, scale: float = 1.0) -> list[ShardFile]:
    """The files one rank writes per checkpoint, named like DeepSpeed's, sized by the layout (times scale)."""
    model_gb, optim_gb = rank_size_gb(model, num_processes, rank)
    mp, dp = rank % model.tp_pp, rank // model.tp_pp
    stem = f"zero_pp_rank_{dp}_mp_rank_{mp:02d}"
    files = [ShardFile(f"{stem}_model_states.pt", _aligned(model_gb * GIB * scale)),
             ShardFile(f"{stem}_optim_states.pt", _aligned(optim_gb * GIB * scale))]
    return [f for f in files if f.nbytes > 0]


def checkpoint_dir_name(index: int) -> str:
    """Directory of checkpoint ``index`` (0-based), DLIO style."""
    return f"global_epoch0_step{index + 1}"


def plan_bytes(model: LlmModel, num_processes: int, scale: float = 1.0) -> int:
    """Bytes one checkpoint occupies on disk, all ranks together, after alignment."""
    return sum(f.nbytes for r in range(num_processes) for f in rank_shards(model, num_processes, r, scale))
