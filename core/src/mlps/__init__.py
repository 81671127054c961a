"""mlps: the MLPerf Storage benchmark suite as a thin core plus plugins.

Plugins import what they need from here: ``hookimpl`` to mark hook implementations, and the records they
register or return. They never import pluggy themselves. The names are resolved on first use, so that
``import mlps`` (and ``mlps --help`` served from the help cache) costs almost nothing.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "hookimpl": "mlps._marker",
    **{name: "mlps.errors" for name in ("ConfigurationError", "DependencyError", "ExecutionError", "ExitCode",
                                         "FileSystemError", "MlpsError", "MPIError", "PluginError",
                                         "ValidationError")},
    **{name: "mlps.model" for name in ("Benchmark", "Command", "Host", "Option", "Requirement", "Run", "Step")},
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlps' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
