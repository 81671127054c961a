"""Storage a collection needs: the reference's arithmetic, reproduced exactly (stdlib only).

raw bytes = vectors x dimension x 4 (FLOAT_VECTOR); total = raw x index overhead x shards; printed in decimal GB.
"""

from __future__ import annotations

BYTES_PER_COMPONENT = {"FLOAT_VECTOR": 4}
#: Index overhead factors of the reference tool (DISKANN is its default and its fallback for unknown types).
INDEX_OVERHEAD = {"DISKANN": 1.3, "HNSW": 1.5, "AISAQ": 0.15, "IVF_FLAT": 1.05, "IVF_SQ8": 0.40, "FLAT": 1.0}
DEFAULT_OVERHEAD = 1.3
INDEX_TYPES = tuple(INDEX_OVERHEAD)
CLOSED_INDEX_TYPES = ("DISKANN", "HNSW", "AISAQ")
#: milvus-lite accepts DISKANN/AISAQ but silently answers with brute force, so they need a real Milvus.
LITE_INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT", "IVF_SQ8")


def datasize(num_vectors: int, dimension: int, index_type: str, num_shards: int = 1,
             vector_dtype: str = "FLOAT_VECTOR") -> dict:
    raw = int(num_vectors) * int(dimension) * BYTES_PER_COMPONENT[vector_dtype]
    overhead = INDEX_OVERHEAD.get(index_type, DEFAULT_OVERHEAD)
    total = raw * overhead * int(num_shards)
    return {"num_vectors": int(num_vectors), "dimension": int(dimension), "index_type": index_type,
            "num_shards": int(num_shards), "vector_dtype": vector_dtype, "raw_bytes": raw,
            "index_overhead": overhead, "total_bytes": int(round(total)), "total_gb": round(total / 1e9, 3)}


def datasize_text(d: dict) -> str:
    return (f"Vector database size: {d['num_vectors']:,} vectors x {d['dimension']} dims x 4 B = "
            f"{d['raw_bytes'] / 1e9:.3f} GB raw\n"
            f"  x {d['index_overhead']} ({d['index_type']} index overhead) x {d['num_shards']} shard(s) "
            f"= {d['total_gb']:.3f} GB ({d['total_bytes']:,} bytes)\n")
