"""The model table and the KV bytes-per-token formula (reference spec §1.2).

MHA/GQA: layers x kv_heads x head_dim x 2 (K and V) x dtype bytes, head_dim = hidden / heads unless given.
MLA:     layers x (kv_lora_rank + qk_rope_head_dim) x dtype bytes (no x2).
With tensor parallelism each rank holds 1/TP of every object.
"""

from __future__ import annotations

from dataclasses import dataclass

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


@dataclass(frozen=True)
class ModelConfig:
    key: str
    name: str
    num_layers: int
    hidden_dim: int
    num_heads: int
    kv_heads: int
    dtype: str = "float16"
    head_dim: int | None = None  # explicit override (qwen3, gpt-oss)
    attention: str = "mha"  # "mha" (covers GQA) or "mla"
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0

    @property
    def dim_per_head(self) -> int:
        return self.head_dim if self.head_dim else self.hidden_dim // self.num_heads

    @property
    def bytes_per_token(self) -> int:
        dtype = DTYPE_BYTES.get(self.dtype, 2)
        if self.attention == "mla":
            return self.num_layers * (self.kv_lora_rank + self.qk_rope_head_dim) * dtype
        return self.num_layers * self.kv_heads * self.dim_per_head * 2 * dtype

    @property
    def is_large(self) -> bool:
        """The RAG document-size rule calls a model large when hidden >= 8192 or layers >= 64."""
        return self.hidden_dim >= 8192 or self.num_layers >= 64


MODELS: dict[str, ModelConfig] = {m.key: m for m in (
    ModelConfig("tiny-1b", "Tiny 1B (synthetic)", 12, 1024, 8, 4, head_dim=128),
    ModelConfig("mistral-7b", "Mistral 7B", 32, 4096, 32, 8),
    ModelConfig("llama2-7b", "Llama 2 7B", 32, 4096, 32, 32),
    ModelConfig("llama3.1-8b", "Llama 3.1 8B", 32, 4096, 32, 8),
    ModelConfig("llama3.1-70b-instruct", "Llama 3.1 70B Instruct", 80, 8192, 64, 8),
    ModelConfig("deepseek-v3", "DeepSeek V3 (MLA)", 61, 7168, 128, 128, attention="mla",
                kv_lora_rank=512, qk_rope_head_dim=64),
    ModelConfig("qwen3-32b", "Qwen3 32B", 64, 5120, 64, 8, head_dim=128),
    ModelConfig("gpt-oss-120b", "GPT-OSS 120B MoE", 36, 2880, 64, 8, head_dim=64),
    ModelConfig("gpt-oss-20b", "GPT-OSS 20B MoE", 24, 2880, 64, 8, head_dim=64),
)}

#: The models the MLPerf harness accepts (the CLOSED options use only the two llama3.1 ones).
MLPERF_MODELS = ("tiny-1b", "mistral-7b", "llama2-7b", "llama3.1-8b", "llama3.1-70b-instruct")


def get_model(key: str) -> ModelConfig:
    try:
        return MODELS[key]
    except KeyError:
        raise KeyError(f"unknown model {key!r}; known: {', '.join(MODELS)}") from None


def bytes_per_token(key: str, tensor_parallel: int = 1) -> int:
    """KV bytes one token occupies on one rank (the full figure divided by the tensor-parallel degree)."""
    if tensor_parallel < 1:
        raise ValueError("tensor_parallel must be >= 1")
    return get_model(key).bytes_per_token // tensor_parallel


def object_bytes(key: str, tokens: int, tensor_parallel: int = 1) -> int:
    """Size of the whole-request KV object of ``tokens`` tokens on one rank."""
    return max(0, int(tokens)) * bytes_per_token(key, tensor_parallel)
