"""Shared pieces of the core's tests: a throwaway benchmark plugin and a helper to read metadata."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlps import Benchmark, Command, Option, Step, hookimpl


class ToyPlugin:
    """A benchmark ``toy`` whose ``run`` executes ``python -c`` with a configurable exit status."""

    def __init__(self, name="toy"):
        self.name = name
        self.prepared = []

    @hookimpl
    def mlps_register_benchmarks(self, register):
        register(Benchmark(self.name, help="toy", commands=(
            Command("run", help="run the toy", uses_mpi=True, options=(
                Option(("--size",), type=int, default=4, min=1, help="a size"),
                Option(("--label",), default="plain", help="a label"),
                Option(("--model", "-m"), choices=("small", "large"), default="small"),
            )),
            Command("datasize", help="compute in-process"),
        )))

    @hookimpl
    def mlps_prepare_run(self, run):
        self.prepared.append(run)
        run.model = run.options.get("model") or "small"
        run.num_processes = run.options.get("size", 1)
        run.parameters = {"toy": {"size": run.options.get("size")}}
        run.override_parameters = dict(run.params)

    @hookimpl
    def mlps_build_commands(self, run):
        if run.command == "datasize":
            return [Step(func=lambda r: 0, name="datasize", description="compute sizes")]
        return [Step(argv=[sys.executable, "-c", "print('toy ran')"], name="run")]


def read_metadata(results_dir: Path, benchmark: str = "toy") -> list[dict]:
    files = sorted(Path(results_dir).rglob(f"{benchmark}_*_metadata.json"))
    return [json.loads(f.read_text()) for f in files]


@pytest.fixture
def toy(register_plugin):
    plugin = ToyPlugin()
    register_plugin(plugin, name="toy")
    return plugin
