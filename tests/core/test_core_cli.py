"""The CLI surface: help, versions, listing, option layering and bad input."""

from __future__ import annotations

import json
import sys

import pytest

from core_toy import read_metadata


def test_help_lists_registered_benchmark(mlps_cli, toy):
    result = mlps_cli.invoke(["--help"])
    assert result.exit_code == 0
    assert "toy" in result.stdout and "plugins" in result.stdout


def test_command_help_has_own_and_universal_options(mlps_cli, toy):
    result = mlps_cli.invoke(["toy", "run", "--help"])
    assert result.exit_code == 0
    for flag in ("--size", "--results-dir", "--hosts", "--params", "--what-if", "--closed / --open",
                 "--mpi-params", "--allow-run-as-root", "--loops"):
        assert flag in result.stdout


def test_version_names_core_and_plugins(mlps_cli, toy):
    for args in (["version"], ["--version"]):
        result = mlps_cli.invoke(args)
        assert result.exit_code == 0
        assert result.stdout.startswith("mlps-core ")
        assert "toy" in result.stdout


def test_plugins_json(mlps_cli, toy):
    result = mlps_cli.invoke(["plugins", "--json"])
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == ["toy"]
    assert records[0]["status"] == "active"
    assert records[0]["benchmarks"] == ["toy"]
    assert "mlps_build_commands" in records[0]["hooks"]


@pytest.mark.parametrize("args, fragment", [
    (["nosuch"], "No such command 'nosuch'"),
    (["toy", "nosuch"], "No such command 'nosuch'"),
    (["toy", "run", "--bogus"], "No such option '--bogus'"),
    (["toy", "run", "--size", "0"], "0 is not in the range"),
    (["toy", "run", "--size", "many"], "'many' is not a valid integer"),
    (["toy", "run", "--loops", "-1"], "--loops"),
    (["toy", "run", "--model", "huge"], "'huge' is not one of"),
    (["toy", "run", "--params", "a=1", "oops"], "malformed --params value(s): 'oops'"),
    (["toy", "run", "--hosts", "a;rm -rf /"], "invalid host name"),
    (["toy", "run", "--hosts", "a,,b"], "empty entry in host list"),
    (["toy", "run", "--hosts", "a:0"], "bad slot count"),
    (["toy", "run", "--hosts", "a:1", "b:1", "--size", "3"], "host slots add up to 2"),
])
def test_bad_input_is_one_clear_line(mlps_cli, toy, tmp_path, args, fragment):
    result = mlps_cli.invoke([*args, "--results-dir", str(tmp_path / "r")] if args[0] == "toy" and len(args) > 1
                             and args[1] == "run" else args)
    assert result.exit_code == 2, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and fragment in first, result.stderr
    assert "Traceback" not in result.output


def test_bad_input_leaves_results_untouched(mlps_cli, toy, tmp_path):
    results = tmp_path / "r"
    (results / "keep").mkdir(parents=True)
    (results / "keep" / "data.txt").write_text("precious")
    result = mlps_cli.invoke(["toy", "run", "--results-dir", str(results), "--hosts", "x:1", "--size", "4"])
    assert result.exit_code == 2
    assert not (results / "toy").exists()  # no run leaf for a refused run
    assert sorted(p.name for p in (results / "keep").iterdir()) == ["data.txt"]
    assert (results / "keep" / "data.txt").read_text() == "precious"


def test_results_dir_that_is_a_file(mlps_cli, toy, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = mlps_cli.invoke(["toy", "run", "--results-dir", str(target)])
    assert result.exit_code == 3
    assert "is a file" in result.stderr.splitlines()[0]
    assert target.read_text() == "x"


def test_results_dir_not_writable(mlps_cli, toy, tmp_path):
    import os
    if os.geteuid() == 0:
        # root ignores permission bits; a path under a regular file can never be created
        target = tmp_path / "file" / "sub"
        (tmp_path / "file").write_text("x")
    else:
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    result = mlps_cli.invoke(["toy", "run", "--results-dir", str(target)])
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    ("key: [unclosed", "not valid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
    ("size: lots\n", "bad value for --size"),
])
def test_bad_config_file(mlps_cli, toy, tmp_path, content, fragment):
    config = tmp_path / "cfg.yaml"
    if content is not None:
        config.write_text(content)
    result = mlps_cli.invoke(["toy", "run", "--config-file", str(config), "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr.splitlines()[0]


def test_precedence_cli_over_yaml_over_env_over_default(mlps_cli, toy, tmp_path, recording_executor):
    config = tmp_path / "cfg.yaml"
    config.write_text("size: 7\nlabel: from-yaml\nparams: {a.b: 1}\n")
    result = mlps_cli.invoke(["toy", "run", "--config-file", str(config), "--size", "3",
                              "--results-dir", str(tmp_path / "r")],
                             env={"MLPS_LABEL": "from-env", "MLPS_MODEL": "large", "MLPS_SIZE": "9"})
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path / "r")[0]
    assert meta["args"]["size"] == 3 and meta["option_sources"]["size"] == "command line"
    assert meta["args"]["label"] == "from-yaml" and meta["option_sources"]["label"].startswith("config file")
    assert meta["args"]["model"] == "large" and meta["option_sources"]["model"] == "environment MLPS_MODEL"
    assert meta["option_sources"]["loops"] == "default"
    assert meta["override_parameters"] == {"a.b": "1"}
    assert meta["model"] == "large"


def test_unknown_config_key_warns(mlps_cli, toy, tmp_path, recording_executor):
    config = tmp_path / "cfg.yaml"
    config.write_text("colour: blue\n")
    result = mlps_cli.invoke(["toy", "run", "--config-file", str(config), "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0
    assert "unknown key 'colour'" in result.stderr


def test_greedy_params_and_hosts(mlps_cli, toy, tmp_path, recording_executor):
    # h1/h2 stand for cluster nodes that cannot exist here: the SSH pre-check is skipped, nothing is launched
    result = mlps_cli.invoke(["toy", "run", "--params", "x.y=1", "z=two", "--hosts", "h1:2", "h2:2",
                              "--size", "4", "--skip-validation", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    run = recording_executor.runs[0]
    assert run.params == {"x.y": "1", "z": "two"}
    assert [str(h) for h in run.hosts] == ["h1:2", "h2:2"]
    assert run.mpi_prefix()[:5] == ["mpirun", "-n", "4", "-host", "h1:2,h2:2"]


def test_unreachable_hosts_fail_fast_with_every_problem(mlps_cli, toy, tmp_path, recording_executor):
    result = mlps_cli.invoke(["toy", "run", "--hosts", "h1:2", "h2:2", "--size", "4",
                              "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 4, result.output
    assert "2 problems" in result.stderr.splitlines()[0]
    assert "ssh h1" in result.stderr and "ssh h2" in result.stderr
    assert recording_executor.steps == []


def test_what_if_prints_and_runs_nothing(mlps_cli, toy, tmp_path, recording_executor):
    result = mlps_cli.invoke(["toy", "run", "--what-if", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "toy ran" in result.stdout and result.stdout.startswith(sys.executable)
    assert recording_executor.steps == []
    meta = read_metadata(tmp_path / "r")[0]
    assert meta["exit_status"] == "what-if" and meta["executed_command"]
    alias = mlps_cli.invoke(["toy", "run", "--dry-run", "--results-dir", str(tmp_path / "r")])
    assert alias.exit_code == 0 and recording_executor.steps == []


def test_loops_make_separate_leaves(mlps_cli, toy, tmp_path, recording_executor):
    result = mlps_cli.invoke(["toy", "run", "--loops", "3", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    metas = read_metadata(tmp_path / "r")
    assert len(metas) == 3
    assert len({m["run_datetime"] for m in metas}) == 3
    assert len(recording_executor.steps) == 3


def test_in_process_step(mlps_cli, toy, tmp_path):
    result = mlps_cli.invoke(["toy", "datasize", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    meta = read_metadata(tmp_path / "r")[0]
    assert meta["command"] == "datasize" and meta["exit_status"] == "success"
    assert meta["executed_command"] == "[in-process] compute sizes"


def test_information_command_writes_nothing(mlps_cli, register_plugin, tmp_path):
    from mlps import Benchmark, Command, Step, hookimpl

    class Info:
        @hookimpl
        def mlps_register_benchmarks(self, register):
            register(Benchmark("info", commands=(Command("configview", creates_results=False),)))

        @hookimpl
        def mlps_build_commands(self, run):
            return [Step(func=lambda r: print("resolved config for", r.command) or 0, description="show config")]

    register_plugin(Info(), name="info")
    result = mlps_cli.invoke(["info", "configview", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "resolved config for configview" in result.stdout
    assert not (tmp_path / "r" / "info").exists()
