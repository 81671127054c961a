"""The hook-implementation marker, re-exported as ``mlps.hookimpl``."""

import pluggy

#: Marker for hook implementations: ``@hookimpl def mlps_register_benchmarks(register): ...``
hookimpl = pluggy.HookimplMarker("mlps")
