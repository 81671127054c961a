"""The run lifecycle, owned once by the core for every plugin (see the order in :mod:`mlps.hookspecs`)."""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mlps import __version__
from mlps.errors import ConfigurationError, ExecutionError, FileSystemError, Interrupted, MlpsError
from mlps.executor import Executor, InterruptState, StepResult
from mlps.metadata import atomic_write_json, now_iso, to_jsonable
from mlps.model import Command, Host, Run, Step
from mlps.mpi import distribute_slots, parse_hosts
from mlps.options import parse_params
from mlps.progress import status
from mlps.plugins import BenchmarkEntry, MlpsPluginManager

log = logging.getLogger("mlps")
_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
INVOCATION_START = now_iso()


@dataclass
class Invocation:
    """One ``mlps <benchmark> <command>`` call, after option layering."""

    manager: MlpsPluginManager
    entry: BenchmarkEntry
    command: Command
    values: dict[str, Any]
    sources: dict[str, str]
    argv: list[str] = field(default_factory=list)
    executor_factory: Callable[[InterruptState], Any] = Executor


def run_invocation(inv: Invocation) -> int:
    """Run every loop of the invocation; returns 0 or raises an :class:`MlpsError`."""
    values = inv.values
    hosts = parse_hosts(values.get("hosts")) or [Host("127.0.0.1")]
    params = parse_params(values.get("params"))
    root = Path(values.get("results_dir")).expanduser()
    _ensure_results_root(root)
    if values.get("verify_lockfile"):
        from mlps import lockfile
        lockfile.verify_or_raise(Path(values["verify_lockfile"]))
    if not values.get("what_if"):
        _append_history(root, inv.argv)
    for loop_index in range(int(values.get("loops") or 1)):
        run = Run(benchmark=inv.entry.benchmark.name, command=inv.command.name, options=dict(values),
                  option_sources=dict(inv.sources), params=dict(params), hosts=list(hosts),
                  mode={True: "closed", False: "open"}.get(values.get("closed")), what_if=bool(values.get("what_if")),
                  results_root=root, loop_index=loop_index,
                  benchmark_type=inv.entry.benchmark.benchmark_type or inv.entry.benchmark.name,
                  plugin_versions=inv.manager.versions())
        _run_once(inv, run)
    return 0


def _append_history(root: Path, argv: list[str]) -> None:
    from mlps import history

    try:
        history.append(root, ["mlps", *argv])
    except (OSError, MlpsError) as exc:  # the run does not depend on its history line
        log.warning("could not append to the history file: %s", exc)


def _ensure_results_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise FileSystemError(f"results directory {root} is a file", path=root,
                              suggestion="pass --results-dir pointing to a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileSystemError(f"cannot create results directory {root}: {exc.strerror}", path=root,
                              suggestion="choose a writable --results-dir") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise FileSystemError(f"results directory {root} is not writable", path=root,
                              suggestion="fix its permissions or choose another --results-dir")


def make_leaf(root: Path, *segments: str) -> tuple[Path, str]:
    """Create a new ``<root>/<segments...>/<YYYYMMDD_HHMMSS>`` directory; an existing leaf is never reused
    (the timestamp moves on by a second instead)."""
    for segment in segments:
        if not _SEGMENT.match(segment) or segment in (".", ".."):
            raise ConfigurationError(f"{segment!r} cannot be a results path segment",
                                     suggestion="use letters, digits, '.', '_' and '-' only")
    parent = root.joinpath(*segments)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileSystemError(f"cannot create {parent}: {exc.strerror}", path=parent) from None
    stamp = _dt.datetime.now().replace(microsecond=0)
    while True:
        name = stamp.strftime("%Y%m%d_%H%M%S")
        try:
            (parent / name).mkdir()
            return parent / name, name
        except FileExistsError:
            stamp += _dt.timedelta(seconds=1)


def _owner(inv: Invocation, hook_name: str, **kwargs):
    return inv.manager.call(hook_name, owner_of=inv.entry.benchmark.name, firstresult=True, **kwargs)


def _run_checkers(inv: Invocation, run: Run) -> list:
    return [c for group in inv.manager.call("mlps_run_checkers", benchmark=run.benchmark_type) for c in group]


def _gate(inv: Invocation, run: Run) -> None:
    """The rules gate: grade the prepared run and stop it when its mode does not allow the verdict."""
    from mlps.rules import verify
    from mlps.rules_format import enforce

    checkers = _run_checkers(inv, run)
    if not checkers:
        return
    verdict = verify(checkers, build_metadata(run, status="pending"), benchmark=run.benchmark_type)
    run.verification = verdict.label
    run.verification_issues = [issue.to_dict() for issue in verdict.issues]
    run.extra_metadata["gate_verification"] = verdict.label
    decision = enforce(verdict, run.mode, bool(run.option("allow_invalid_params")))  # raises when refused
    level = {"warning": logging.WARNING, "error": logging.ERROR}.get(decision.level, logging.INFO)
    for line in decision.message.splitlines():
        log.log(level, "%s", line)


def _regrade(inv: Invocation, run: Run) -> None:
    """Grade the finished run again, now that metrics and cluster information exist (rules such as an AU
    threshold or a cluster's consistency can only be checked then). The gate's verdict stays recorded as
    ``gate_verification``; ``verification`` becomes the final one."""
    from mlps.rules import verify

    checkers = _run_checkers(inv, run)
    if checkers:
        verdict = verify(checkers, build_metadata(run, status="success"), benchmark=run.benchmark_type)
        run.verification = verdict.label
        run.verification_issues = [issue.to_dict() for issue in verdict.issues]
        if verdict.label != run.extra_metadata.get("gate_verification"):
            log.warning("after the run, the rules grade it %s (before the run: %s)", verdict.label,
                        run.extra_metadata.get("gate_verification"))


def _check_requirements(inv: Invocation, run: Run) -> None:
    from mlps.envcheck import check_requirements, core_requirements, raise_if_problems

    requirements = core_requirements(run, uses_mpi=inv.command.uses_mpi and run.option("exec_type") == "mpi")
    requirements += [r for group in inv.manager.call("mlps_requirements", run=run) for r in group]
    raise_if_problems(check_requirements(requirements))


def _run_once(inv: Invocation, run: Run) -> None:
    _owner(inv, "mlps_prepare_run", run=run)
    if inv.command.uses_mpi and run.num_processes is not None:
        distribute_slots(run.hosts, run.num_processes)  # refuse slots that do not add up before anything runs
    _gate(inv, run)
    if not run.what_if and not run.option("skip_validation"):
        _check_requirements(inv, run)
    elif run.option("skip_validation"):
        log.warning("environment validation skipped (--skip-validation)")
    if not inv.command.creates_results:
        _run_information_command(inv, run)
        return
    run.run_dir, run.run_datetime = make_leaf(run.results_root, run.benchmark, run.model or "default", run.command)
    started, outcome, error, results = time.time(), "failed", None, []
    file_log = _attach_run_log(run.run_dir)
    lifecycle_started = False
    with InterruptState() as interrupts:
        try:
            steps = _owner(inv, "mlps_build_commands", run=run) or []
            if not all(isinstance(s, Step) for s in steps):
                raise ExecutionError(f"plugin for {run.benchmark!r} returned something other than mlps.Step")
            run.extra_metadata.setdefault("steps", [s.display() for s in steps])
            if run.what_if:
                for step in steps:
                    print(step.display())
                outcome = "what-if"
                return
            lifecycle_started = True
            with status("Collecting cluster information"):
                _collect(inv, run, "start")
            inv.manager.call("mlps_timeseries_start", run=run)
            inv.manager.call("mlps_before_run", run=run)
            executor = inv.executor_factory(interrupts)
            for step in steps:
                result = executor.execute(step, run)
                results.append(result)
                if result.interrupted:
                    raise Interrupted(f"interrupted by {_signame(interrupts.signum)}")
                if result.returncode != 0:
                    raise _step_failure(run, result)
            metrics = _owner(inv, "mlps_parse_results", run=run)
            if metrics:
                run.metrics.update(metrics)
            outcome = "success"
        except KeyboardInterrupt:
            outcome, error = "interrupted", Interrupted("interrupted by SIGINT")
            raise error from None
        except Interrupted as exc:
            outcome, error = "interrupted", exc
            raise
        except MlpsError as exc:
            error = exc
            raise
        except Exception as exc:
            error = exc
            raise
        finally:
            interrupts.shielded = True  # a second Ctrl-C must not cut the metadata write short
            if lifecycle_started:
                with status("Collecting end-of-run information"):
                    _finish_lifecycle(inv, run, outcome)
                if outcome == "success":
                    try:
                        _regrade(inv, run)
                    except MlpsError as exc:  # the run's results stand; its grade is re-done by reports
                        log.warning("grading the finished run failed: %s", exc)
            _write_metadata(run, outcome, error, results, started)
            _detach_run_log(file_log)
            interrupts.shielded = False


def _run_information_command(inv: Invocation, run: Run) -> None:
    """A command that only informs (``configview``): no results directory, no metadata; its steps run in-process
    (``--what-if`` prints them instead)."""
    steps = _owner(inv, "mlps_build_commands", run=run) or []
    for step in steps:
        if run.what_if:
            print(step.display())
        elif step.func is None:
            raise ExecutionError(f"{run.benchmark} {run.command} creates no results, so it cannot run "
                                 f"external commands ({step.display()})")
        else:
            code = int(step.func(run) or 0)
            if code:
                raise ExecutionError(f"{run.benchmark} {run.command} failed with status {code}")


def _signame(signum) -> str:
    import signal
    return signal.Signals(signum).name if signum else "signal"


def _step_failure(run: Run, result: StepResult) -> ExecutionError:
    name = result.step.name or "run"
    tail = result.stderr_tail.strip().splitlines()[-15:]
    suggestion = f"see {result.stderr_path}" if result.stderr_path else None
    if result.returncode == 127:
        suggestion = "a program was not found; check the install (and --dlio-bin-path or PATH)"
    elif result.returncode in (137, -9):
        suggestion = "the process was killed (possibly out of memory)"
    return ExecutionError(f"step {name!r} exited with status {result.returncode}", suggestion=suggestion,
                          details={"stderr_tail": "\n".join(tail), "command": result.step.display()})


def _collect(inv: Invocation, run: Run, phase: str) -> None:
    if run.option("skip_cluster_collection"):
        return
    snapshot = inv.manager.call("mlps_collect_cluster_info", firstresult=True, run=run, phase=phase)
    if snapshot is None:
        return
    run.cluster_snapshots[phase] = snapshot
    if isinstance(snapshot, dict) and snapshot.get("collection_method"):
        run.cluster_snapshots.setdefault("collection_method", snapshot["collection_method"])
    if phase == "start" and run.system_info is None:
        run.system_info = snapshot


def _finish_lifecycle(inv: Invocation, run: Run, status: str) -> None:
    call = inv.manager.call
    for name, step in (("mlps_after_run", lambda: call("mlps_after_run", run=run, exit_status=status)),
                       ("mlps_timeseries_stop", lambda: call("mlps_timeseries_stop", firstresult=True, run=run)),
                       ("end snapshot", lambda: _collect(inv, run, "end"))):
        try:
            value = step()
            if name == "mlps_timeseries_stop" and value:
                run.timeseries_data = value
        except Exception as exc:  # the metadata must still be written
            log.warning("%s failed: %s: %s", name, type(exc).__name__, exc)
    if run.cluster_snapshots:
        try:
            atomic_write_json(run.path(f"{run.benchmark}_cluster_info.json"), run.cluster_snapshots)
        except OSError as exc:
            log.warning("could not write cluster info: %s", exc)


def build_metadata(run: Run, status: str, error: BaseException | None = None,
                   results: list[StepResult] = (), started: float | None = None) -> dict:
    steps = run.extra_metadata.get("steps") or []
    metadata = {
        "benchmark_type": run.benchmark_type or run.benchmark,
        "benchmark": run.benchmark,
        "model": run.model,
        "command": run.command,
        "run_datetime": run.run_datetime,
        "num_processes": run.num_processes,
        "accelerator": run.accelerator,
        "result_dir": run.run_dir,
        "mode": run.mode,
        "what_if": run.what_if,
        "parameters": run.parameters,
        "override_parameters": run.override_parameters,
        "metrics": run.metrics,
        "system_info": run.system_info,
        "cluster_snapshots": run.cluster_snapshots or None,
        "timeseries_data": run.timeseries_data,
        "runtime": round(time.time() - started, 3) if started else None,
        "verification": run.verification,
        "verification_issues": run.verification_issues,
        "executed_command": " ; ".join(steps) if steps else None,
        "command_output_files": [{"command": r.step.display(), "stdout": r.stdout_path, "stderr": r.stderr_path,
                                  "returncode": r.returncode, "duration": round(r.duration, 3)} for r in results],
        "hosts": [str(h) for h in run.hosts],
        "args": {k: v for k, v in run.options.items()},
        "option_sources": run.option_sources,
        "exit_status": status,
        "error": _error_dict(error),
        "invocation_start_time": INVOCATION_START,
        "invocation_end_time": now_iso(),
        "mlps_version": __version__,
        "plugin_versions": run.plugin_versions,
        "python": sys.version.split()[0],
    }
    for key, value in run.extra_metadata.items():
        if key != "steps":
            metadata.setdefault(key, value)
    metadata["steps"] = steps
    return to_jsonable(metadata)


def _error_dict(error: BaseException | None):
    if error is None:
        return None
    if isinstance(error, MlpsError):
        return error.to_dict()
    return {"type": type(error).__name__, "message": str(error)}


def _write_metadata(run: Run, status: str, error, results, started) -> None:
    path = run.path(f"{run.benchmark}_{run.run_datetime}_metadata.json")
    try:
        atomic_write_json(path, build_metadata(run, status, error, results, started))
    except OSError as exc:
        log.error("could not write metadata %s: %s", path, exc)
    else:
        log.info("results: %s", run.run_dir)


def _attach_run_log(run_dir: Path):
    handler = logging.FileHandler(run_dir / "mlps.log", encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s|%(levelname)s:%(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _detach_run_log(handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
