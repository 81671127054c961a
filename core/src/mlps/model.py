"""The typed records that plugins hand to the core, and the :class:`Run` the core hands back to them.

Plugins build :class:`Benchmark`, :class:`Command` and :class:`Option` records in their registration hooks,
return :class:`Step` lists from command generation, and read or fill a :class:`Run` during the lifecycle.
Nothing here imports click: options are plain data that the core turns into click parameters.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

_OPTION_TYPES = (str, int, float, bool, Path)


@dataclass(frozen=True)
class Option:
    """One command-line option.

    ``flags`` are the spellings (``("--model", "-m")``); ``type`` is one of str, int, float, bool or Path;
    ``choices`` restricts values; ``multiple`` collects repeated uses into a tuple; ``greedy`` lets one use take
    several space-separated values (``--hosts a b c``). ``min`` rejects smaller numbers with a clear error.
    ``default`` may be a callable taking no arguments. ``envvar`` defaults to ``MLPS_<DEST>``.
    """

    flags: tuple[str, ...]
    help: str = ""
    type: type = str
    default: Any = None
    choices: Sequence[str] | None = None
    multiple: bool = False
    greedy: bool = False
    required: bool = False
    min: float | None = None
    metavar: str | None = None
    secondary: str | None = None  # for bool flags: the "off" spelling, e.g. "--open" for "--closed"

    def __post_init__(self):
        if isinstance(self.flags, str):
            object.__setattr__(self, "flags", (self.flags,))
        if not self.flags or not all(f.startswith("-") for f in self.flags):
            raise ValueError(f"option flags must start with '-': {self.flags!r}")
        if self.type not in _OPTION_TYPES:
            raise ValueError(f"option {self.flags[0]}: type must be one of str, int, float, bool, Path")

    @property
    def dest(self) -> str:
        """The Python name of the value: the first long flag without dashes, ``-`` replaced by ``_``."""
        longs = [f for f in self.flags if f.startswith("--")]
        return (longs[0] if longs else self.flags[0]).lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Command:
    """A command of a benchmark (``datasize``, ``datagen``, ``run`` ...) and the options it owns."""

    name: str
    help: str = ""
    options: tuple[Option, ...] = ()
    uses_mpi: bool = False  # the core's MPI options matter for this command
    creates_results: bool = True  # False: an information command (configview): no results dir, in-process steps only


@dataclass(frozen=True)
class Benchmark:
    """A benchmark a plugin provides: ``mlps <name> <command>``."""

    name: str
    help: str = ""
    commands: tuple[Command, ...] = ()
    benchmark_type: str | None = None  # metadata ``benchmark_type``; defaults to ``name``

    def command(self, name: str) -> Command | None:
        return next((c for c in self.commands if c.name == name), None)


@dataclass
class Step:
    """One thing a run executes: an external process (``argv``) or an in-process function (``func``).

    ``func`` receives the :class:`Run` and returns an exit status. ``name`` names the log files
    (``<benchmark>_<name>.stdout.log``). ``env`` is added to the child's environment.
    """

    argv: list[str] | None = None
    func: Callable[["Run"], int] | None = None
    name: str | None = None
    description: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def __post_init__(self):
        if (self.argv is None) == (self.func is None):
            raise ValueError("a Step has exactly one of argv or func")
        if self.argv is not None:
            self.argv = [str(a) for a in self.argv]

    def display(self) -> str:
        if self.argv is not None:
            prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
            return (prefix + " " if prefix else "") + shlex.join(self.argv)
        return f"[in-process] {self.description or getattr(self.func, '__name__', 'function')}"


@dataclass(frozen=True)
class Host:
    name: str
    slots: int | None = None

    def __str__(self) -> str:
        return self.name if self.slots is None else f"{self.name}:{self.slots}"


@dataclass(frozen=True)
class Requirement:
    """Something a run needs before it starts; checked by the core's fail-fast validation.

    ``kind`` is one of ``executable`` (``target`` on PATH), ``module`` (importable), ``mpi`` (a launcher),
    ``ssh`` (passwordless BatchMode SSH to host ``target``), ``writable`` (directory ``target``),
    ``disk_space`` (``amount`` free bytes under ``target``). ``install`` maps ``apt``/``dnf``/``pip`` to the
    package to install; ``hint`` is free text shown with the problem.
    """

    kind: str
    target: str
    amount: int | None = None
    install: dict[str, str] = field(default_factory=dict)
    hint: str | None = None
    reason: str | None = None


@dataclass
class Run:
    """A resolved run, shared by the core and the plugins through the lifecycle hooks.

    The core fills the identity, options and MPI settings; the owning plugin fills ``model``,
    ``accelerator``, ``num_processes``, ``parameters`` and ``override_parameters`` in ``mlps_prepare_run``
    and ``metrics`` in ``mlps_parse_results``. ``extra_metadata`` is merged into the metadata file.
    """

    benchmark: str
    command: str
    options: dict[str, Any]
    option_sources: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # --params KEY=VALUE, flat, as typed
    hosts: list[Host] = field(default_factory=list)
    mode: str | None = None  # "closed", "open" or None (not submittable)
    what_if: bool = False
    results_root: Path | None = None
    run_dir: Path | None = None
    run_datetime: str | None = None
    loop_index: int = 0
    model: str | None = None
    accelerator: str | None = None
    num_processes: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    override_parameters: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    system_info: dict | None = None
    cluster_snapshots: dict[str, Any] = field(default_factory=dict)
    timeseries_data: dict | None = None
    verification: str | None = None
    verification_issues: list[dict] = field(default_factory=list)
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    benchmark_type: str | None = None
    plugin_versions: dict[str, str] = field(default_factory=dict)

    def option(self, dest: str, default=None):
        value = self.options.get(dest)
        return default if value is None else value

    def path(self, name: str) -> Path:
        """A file in this run's results directory."""
        if self.run_dir is None:
            raise RuntimeError("the run directory does not exist yet")
        return self.run_dir / name

    def mpi_prefix(self, num_processes: int | None = None) -> list[str]:
        """The core's MPI launch line for this run (``mpirun -n N -host h1:s1,... [flags]``)."""
        from mlps.mpi import mpi_prefix  # local: keeps model import-light

        n = num_processes if num_processes is not None else self.num_processes
        if n is None:
            raise ValueError("num_processes is not set")
        return mpi_prefix(self.hosts, n, mpi_bin=self.option("mpi_bin", "mpirun"),
                          oversubscribe=bool(self.option("oversubscribe")),
                          allow_run_as_root=bool(self.option("allow_run_as_root")),
                          mpi_params=self.option("mpi_params", ()))
