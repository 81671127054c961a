"""mlps: the MLPerf Storage benchmark suite as a thin core plus plugins.

Plugins import what they need from here: ``hookimpl`` to mark hook implementations, and the records they
register or return. They never import pluggy themselves.
"""

from __future__ import annotations

import pluggy

from mlps.errors import (ConfigurationError, DependencyError, ExecutionError, ExitCode, FileSystemError,
                         MlpsError, MPIError, PluginError, ValidationError)
from mlps.model import Benchmark, Command, Host, Option, Requirement, Run, Step

__version__ = "0.1.0"

#: Marker for hook implementations: ``@hookimpl def mlps_register_benchmarks(register): ...``
hookimpl = pluggy.HookimplMarker("mlps")

__all__ = [
    "Benchmark", "Command", "ConfigurationError", "DependencyError", "ExecutionError", "ExitCode",
    "FileSystemError", "Host", "MlpsError", "MPIError", "Option", "PluginError", "Requirement", "Run", "Step",
    "ValidationError", "__version__", "hookimpl",
]
