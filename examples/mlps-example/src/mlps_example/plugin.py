"""The whole plugin: one benchmark, ``example``, with one command, ``run``."""

import json
import sys

from mlps import Benchmark, Command, ExecutionError, Option, Step, hookimpl

BENCHMARK = Benchmark(
    name="example",
    help="A toy benchmark: a worker process that keeps a CPU busy for a while and writes a result file.",
    commands=(
        Command("run", help="Run the worker for --seconds seconds.", options=(
            Option(("--seconds",), type=float, default=1.0, min=0, help="How long the worker runs."),
            Option(("--exit-code",), type=int, default=0, help="Exit status the worker ends with (to test failures)."),
            Option(("--ignore-sigterm",), type=bool, help="The worker ignores SIGTERM (to test SIGKILL escalation)."),
        )),
    ),
)


@hookimpl
def mlps_register_benchmarks(register):
    register(BENCHMARK)


@hookimpl
def mlps_prepare_run(run):
    run.num_processes = 1
    run.parameters = {"worker": {"seconds": run.options["seconds"]}}
    run.override_parameters = dict(run.params)


@hookimpl
def mlps_build_commands(run):
    result = run.path("example_result.json")
    return [Step(argv=[sys.executable, "-m", "mlps_example.worker", "--seconds", str(run.options["seconds"]),
                       "--out", str(result), "--exit-code", str(run.options["exit_code"])]
                 + (["--ignore-sigterm"] if run.options["ignore_sigterm"] else []), name="run")]


@hookimpl
def mlps_parse_results(run):
    path = run.path("example_result.json")
    if not path.exists():
        raise ExecutionError("the worker wrote no result file", suggestion=f"see {run.path('example_run.stderr.log')}")
    return json.loads(path.read_text())
