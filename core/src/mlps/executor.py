"""Execution of a run's steps: child processes in their own process group, output streamed live and saved,
and Ctrl-C / SIGTERM turned into SIGTERM then SIGKILL for the whole group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlps.errors import ExecutionError, Interrupted
from mlps.model import Run, Step


def kill_grace_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("MLPS_KILL_GRACE", "10")))
    except ValueError:
        return 10.0


@dataclass
class StepResult:
    step: Step
    returncode: int
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    interrupted: bool = False
    stderr_tail: str = ""
    duration: float = 0.0


class InterruptState:
    """Signal handlers for the duration of a run. A signal with a child running forwards SIGTERM to the child's
    process group (SIGKILL after the grace period, or at once on a second signal); with no child running it
    raises :class:`Interrupted` in the main thread."""

    def __init__(self):
        self.signum: int | None = None
        self.count = 0
        self.first_at: float | None = None
        self.child_pgid: int | None = None
        self.shielded = False  # while the core writes metadata: record the signal, raise nothing
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        return False

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, _frame):
        self.count += 1
        if self.signum is None:
            self.signum, self.first_at = signum, time.monotonic()
        if self.child_pgid is not None:
            self._signal_group(signal.SIGTERM if self.count == 1 else signal.SIGKILL)
            return
        if self.shielded:
            return
        raise Interrupted(f"interrupted by {signal.Signals(signum).name}")

    def _signal_group(self, sig) -> None:
        try:
            os.killpg(self.child_pgid, sig)
        except (ProcessLookupError, PermissionError, TypeError):
            pass

    def escalate_if_due(self, grace: float) -> None:
        if self.child_pgid is not None and self.first_at is not None and time.monotonic() - self.first_at > grace:
            self._signal_group(signal.SIGKILL)


def _pump(source, sink, log_handle, tail: list, keep: int = 40):
    """Copy a child's stream to our stream and its log file as it arrives (progress bars without newlines
    too), keeping the last chunks for error messages."""
    for chunk in iter(lambda: source.read1(65536), b""):
        log_handle.write(chunk)
        log_handle.flush()
        try:
            sink.buffer.write(chunk) if hasattr(sink, "buffer") else sink.write(chunk.decode(errors="replace"))
            sink.flush()
        except (ValueError, OSError):  # our own stream closed: keep logging to the file
            pass
        tail.append(chunk)
        if len(tail) > keep:
            del tail[0]
    source.close()


class Executor:
    """Runs steps for real."""

    def __init__(self, interrupts: InterruptState | None = None):
        self.interrupts = interrupts

    def execute(self, step: Step, run: Run) -> StepResult:
        started = time.monotonic()
        if step.func is not None:
            code = int(step.func(run) or 0)
            return StepResult(step, code, duration=time.monotonic() - started)
        name = step.name or "run"
        out_path = run.path(f"{run.benchmark}_{name}.stdout.log")
        err_path = run.path(f"{run.benchmark}_{name}.stderr.log")
        env = dict(os.environ, **step.env)
        try:
            proc = subprocess.Popen(step.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    cwd=step.cwd or None, start_new_session=True)
        except FileNotFoundError:
            raise ExecutionError(f"command not found: {step.argv[0]}",
                                 suggestion="install it or put it on PATH (see `mlps <benchmark> <command> --help`)")
        except PermissionError:
            raise ExecutionError(f"command is not executable: {step.argv[0]}")
        interrupts = self.interrupts
        if interrupts is not None:
            interrupts.child_pgid = proc.pid
            if interrupts.interrupted:  # a signal arrived between Popen and here
                interrupts._signal_group(signal.SIGTERM)
        tails: dict[str, list] = {"out": [], "err": []}
        with open(out_path, "wb") as out_log, open(err_path, "wb") as err_log:
            pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, out_log, tails["out"]), daemon=True),
                     threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, err_log, tails["err"]), daemon=True)]
            for thread in pumps:
                thread.start()
            grace = kill_grace_seconds()
            while True:
                try:
                    code = proc.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    if interrupts is not None and interrupts.interrupted:
                        interrupts.escalate_if_due(grace)
            # the group may still hold children that outlived the leader: end them too
            _reap_group(proc.pid, grace if interrupts is None or not interrupts.interrupted else 0.5)
            for thread in pumps:
                thread.join(timeout=5)
        if interrupts is not None:
            interrupts.child_pgid = None
        return StepResult(step, code, out_path, err_path,
                          interrupted=bool(interrupts and interrupts.interrupted),
                          stderr_tail=b"".join(tails["err"]).decode(errors="replace")[-2000:],
                          duration=time.monotonic() - started)


def _reap_group(pgid: int, grace: float) -> None:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class RecordingExecutor:
    """Records steps instead of running them (for tests); every step 'succeeds' with ``returncode``."""

    returncode: int = 0
    steps: list[Step] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    interrupts: InterruptState | None = None

    def execute(self, step: Step, run: Run) -> StepResult:
        self.steps.append(step)
        self.runs.append(run)
        return StepResult(step, self.returncode)

    @property
    def commands(self) -> list[list[str]]:
        return [s.argv for s in self.steps if s.argv is not None]
