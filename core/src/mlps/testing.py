"""``mlps.testing``: a pytest plugin for plugin authors (auto-loaded through the ``pytest11`` entry point).

Fixtures:

``mlps_pm``
    A fresh :class:`mlps.plugins.MlpsPluginManager` with entry points off (strict: a bad plugin raises).
``register_plugin``
    ``register_plugin(obj, name=None)`` registers a module or object on ``mlps_pm`` and unregisters it after
    the test.
``mlps_cli``
    ``mlps_cli.invoke([...])`` runs the CLI built from ``mlps_pm`` in-process, with HOME, XDG dirs, the working
    directory and every ``MLPS_*`` variable isolated; returns a :class:`CliResult` (``exit_code``, ``stdout``,
    ``stderr``, ``output``).
``small_filesystem``
    ``small_filesystem(size="16m", ro=False)`` mounts a fresh tmpfs (full-disk and read-only tests; skips where
    mounting is not allowed).
``small_filesystem``
    ``small_filesystem(size="16m", ro=False)`` mounts a fresh tmpfs for full-disk and read-only tests, unmounted
    afterwards (skips where mounting is not allowed).
``recording_executor``
    Makes ``mlps_cli`` record the steps instead of running them (``recording_executor.steps`` /
    ``.commands``).

Importing this module costs nothing when the fixtures are unused.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class CliInvoker:
    """Runs ``mlps`` in-process against one plugin manager."""

    def __init__(self, manager, home: Path, monkeypatch):
        self.manager = manager
        self.home = home
        self.executor_factory = None
        self._monkeypatch = monkeypatch

    def invoke(self, args, env: dict | None = None) -> CliResult:
        from mlps.cli.main import run_cli

        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for key in [k for k in os.environ if k.startswith("MLPS_")]:
                mp.delenv(key)
            for key, value in {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config"),
                               **(env or {})}.items():
                mp.setenv(key, value)
            with _redirect(out, err):
                code = run_cli([str(a) for a in args], manager=self.manager, executor_factory=self.executor_factory)
        return CliResult(int(code), out.getvalue(), err.getvalue())


class _TextSink(io.StringIO):
    """A text stream with a ``buffer`` that the executor can write child bytes into."""

    def __init__(self, target: io.StringIO):
        super().__init__()
        self._target = target
        self.buffer = self

    def write(self, data):
        if isinstance(data, (bytes, bytearray)):
            data = bytes(data).decode(errors="replace")
        return self._target.write(data)

    def flush(self):
        pass


@contextlib.contextmanager
def _redirect(out: io.StringIO, err: io.StringIO):
    import logging

    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _TextSink(out), _TextSink(err)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous_level)
        sys.stdout, sys.stderr = old_out, old_err


@pytest.fixture
def mlps_pm():
    from mlps.plugins import get_plugin_manager

    return get_plugin_manager(load_entrypoints=False, strict=True)


@pytest.fixture
def register_plugin(mlps_pm):
    names = []

    def register(plugin, name: str | None = None):
        name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        mlps_pm.add_plugin(plugin, name)
        names.append(name)
        return plugin

    yield register
    for name in reversed(names):
        mlps_pm.remove_plugin(name)


@pytest.fixture
def mlps_cli(mlps_pm, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    return CliInvoker(mlps_pm, home, monkeypatch)


@pytest.fixture
def recording_executor(mlps_cli):
    from mlps.executor import RecordingExecutor

    recorder = RecordingExecutor()
    mlps_cli.executor_factory = lambda interrupts: _bind(recorder, interrupts)
    return recorder


def _bind(recorder, interrupts):
    recorder.interrupts = interrupts
    return recorder


@pytest.fixture
def small_filesystem(tmp_path):
    """``mount(size="16m", ro=False) -> Path``: a fresh tmpfs of that size (read-only if asked), unmounted after the
    test, for the faults a benchmark must survive (a full disk, a read-only target). Skips the test where mounting
    is not allowed (it needs root with CAP_SYS_ADMIN)."""
    import subprocess

    mounts = []

    def mount(size: str = "16m", ro: bool = False) -> Path:
        point = tmp_path / f"small-fs-{len(mounts)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip("cannot mount a filesystem here (needs root with CAP_SYS_ADMIN)")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
