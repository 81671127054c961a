"""mlps-checkpointing: LLM checkpoint write and read benchmark for mlps.

Import-light on purpose: the engine (numpy, mpi4py) is only imported by ``python -m mlps_checkpointing.engine``.
"""

__version__ = "0.1.0"
