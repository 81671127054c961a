"""Universal options (added by the core to every benchmark command) and the layering of option values.

Precedence, highest first: the command line, the YAML file named by ``--config-file``, ``MLPS_<DEST>``
environment variables, then defaults. The winning source of every value is recorded for the metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from mlps.errors import ConfigurationError
from mlps.model import Option


def default_results_dir() -> Path:
    import tempfile  # only when a run needs it

    return Path(tempfile.gettempdir()) / "mlperf_storage_results"


UNIVERSAL_OPTIONS: tuple[Option, ...] = (
    Option(("--results-dir", "-rd"), type=Path, default=default_results_dir,
           help="Root of the results tree [default: <tmp>/mlperf_storage_results]."),
    Option(("--config-file", "-c"), type=Path, help="YAML file of option values (keys are option names)."),
    Option(("--hosts", "-s"), multiple=True, greedy=True, default=("127.0.0.1",),
           help="Hosts, space or comma separated; host:N gives N slots."),
    Option(("--exec-type", "-et"), choices=("mpi", "local"), default="mpi", help="How multi-process work is launched."),
    Option(("--mpi-bin",), choices=("mpirun", "mpiexec"), default="mpirun",
           help="MPI launcher (MPI_RUN_BIN / MPI_EXEC_BIN override its path)."),
    Option(("--oversubscribe",), type=bool, help="Pass --oversubscribe to mpirun."),
    Option(("--allow-run-as-root",), type=bool, help="Pass --allow-run-as-root to mpirun."),
    Option(("--mpi-params",), multiple=True, help="Extra mpirun arguments (split like a shell, never run by one)."),
    Option(("--params", "-p"), multiple=True, greedy=True, metavar="KEY=VALUE",
           help="Benchmark parameter overrides, KEY=VALUE (several allowed)."),
    Option(("--loops",), type=int, default=1, min=1, help="Run the command this many times."),
    Option(("--closed",), type=bool, secondary="--open", default=None,
           help="Grade as a CLOSED (or OPEN) submission; without either the results are not submittable."),
    Option(("--what-if", "--dry-run"), type=bool, help="Print the command(s) that would run; run nothing."),
    Option(("--allow-invalid-params", "-aip"), type=bool, help="Run even if the rules grade the run INVALID."),
    Option(("--debug",), type=bool, help="Debug logging and full tracebacks."),
    Option(("--verbose",), type=bool, help="More console output."),
    Option(("--stream-log-level",), choices=("DEBUG", "INFO", "WARNING", "ERROR"), default="INFO",
           help="Console log level."),
    Option(("--skip-validation",), type=bool, help="Skip the fail-fast environment validation."),
    Option(("--verify-lockfile",), type=Path, help="Check installed packages against this lockfile first."),
)


def parse_params(tokens) -> dict[str, str]:
    """``--params`` tokens into a flat dict; a token without ``=`` is a clear error."""
    params: dict[str, str] = {}
    bad = []
    for token in tokens or ():
        for part in str(token).split() or [""]:
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                bad.append(part)
                continue
            params[key.strip()] = value
    if bad:
        raise ConfigurationError(f"malformed --params value(s): {' '.join(repr(b) for b in bad)} (no KEY=VALUE)",
                                 parameter="params",
                                 suggestion="write each override as KEY=VALUE, e.g. --params dataset.num_files_train=64")
    return params


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML mapping of option values. Missing, unreadable or non-mapping files are configuration errors."""
    import yaml  # here, not at module level: keeps `mlps --help` fast

    path = Path(path)
    if not path.exists():
        raise ConfigurationError(f"config file {path} does not exist", parameter="config_file",
                                 suggestion="check the path given to --config-file")
    if not path.is_file():
        raise ConfigurationError(f"config file {path} is not a file", parameter="config_file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigurationError(f"config file {path} is not valid YAML{at}", parameter="config_file",
                                 suggestion="fix the YAML syntax; keys are option names such as results_dir") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}", parameter="config_file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {path} must be a mapping of option names to values",
                                 parameter="config_file", suggestion="write e.g. `results_dir: /data/results`")
    normalized = {}
    for key, value in data.items():
        normalized[str(key).replace("-", "_")] = value
    if isinstance(normalized.get("params"), dict):
        normalized["params"] = [f"{k}={v}" for k, v in normalized["params"].items()]
    return normalized


def env_name(dest: str) -> str:
    return "MLPS_" + dest.upper()


def layer_values(values: dict[str, Any], typed: set[str], options: dict[str, Option],
                 convert: Callable[[str, Any], Any], warn: Callable[[str], None]) -> tuple[dict, dict]:
    """Fill every value the command line did not type from the config file, then the environment.

    ``typed`` names the dests given on the command line; ``convert(dest, raw)`` turns a raw value into the
    option's type (raising ConfigurationError on a bad one). Returns (values, sources).
    """
    values = dict(values)
    sources = {dest: ("command line" if dest in typed else "default") for dest in options}
    config_path = values.get("config_file")
    if "config_file" not in typed and os.environ.get(env_name("config_file")):
        config_path = Path(os.environ[env_name("config_file")])
        values["config_file"], sources["config_file"] = config_path, f"environment {env_name('config_file')}"
    file_values = load_config_file(config_path) if config_path else {}
    for key in sorted(set(file_values) - set(options)):
        warn(f"config file {config_path}: unknown key {key!r} ignored for this command")
    for dest, option in options.items():
        if dest in typed or dest == "config_file":
            continue
        if dest in file_values and file_values[dest] is not None:
            values[dest] = convert(dest, file_values[dest])
            sources[dest] = f"config file {config_path}"
        elif os.environ.get(env_name(dest)) not in (None, ""):
            raw = os.environ[env_name(dest)]
            values[dest] = convert(dest, raw.split() if option.multiple else raw)
            sources[dest] = f"environment {env_name(dest)}"
    return values, sources
