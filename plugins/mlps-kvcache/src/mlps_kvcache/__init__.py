"""mlps-kvcache: a KV-cache offload benchmark engine (GPU -> CPU -> storage tiers) for mlps."""

__version__ = "0.1.0"
