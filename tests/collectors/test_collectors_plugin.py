"""The plugin in the CLI: options on every `run`, snapshots and time series in the metadata, rules, and one
end-to-end run of the installed ``mlps`` executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlps import Benchmark, Command, Host, Option, Run, Step, hookimpl
from mlps_collectors import plugin as collectors_plugin
from mlps_collectors.rules import ClusterRunChecker

MLPS = Path(sys.executable).with_name("mlps")


def _sleep_step(run) -> int:
    import time

    time.sleep(float(run.options["seconds"]))
    return 0


class ToyBenchmark:
    """A throwaway benchmark with `run` (sleeps in-process) and `datasize`."""

    benchmark = Benchmark(name="toy", help="toy", commands=(
        Command("run", help="sleep", options=(Option(("--seconds",), type=float, default=0.8),
                                              Option(("--client-host-memory-in-gb",), type=float))),
        Command("datasize", help="nothing")))

    @hookimpl
    def mlps_register_benchmarks(self, register):
        register(self.benchmark)

    @hookimpl
    def mlps_prepare_run(self, run):
        run.num_processes = 1

    @hookimpl
    def mlps_build_commands(self, run):
        return [Step(func=_sleep_step, name="run", description="sleep")] if run.command == "run" else []


@pytest.fixture
def cli(mlps_cli, register_plugin):
    register_plugin(ToyBenchmark(), "toy")
    register_plugin(collectors_plugin, "collectors")
    return mlps_cli


def metadata_of(results: Path) -> tuple[dict, Path]:
    [path] = list(results.rglob("*_metadata.json"))
    return json.loads(path.read_text()), path.parent


def test_options_are_added_to_every_run_only():
    dests = {o.dest: o.default for o in collectors_plugin.mlps_command_options("anything", "run")}
    assert dests == {"skip_cluster_collection": False, "cluster_collection_timeout": 60, "timeseries_interval": 10.0,
                     "skip_timeseries": False, "max_timeseries_samples": 3600}
    assert collectors_plugin.mlps_command_options("anything", "datagen") is None


def test_run_records_snapshots_timeseries_and_system_info(cli, tmp_path):
    result = cli.invoke(["toy", "run", "--results-dir", tmp_path / "r", "--timeseries-interval", "0.2",
                         "--seconds", "1"])
    assert result.exit_code == 0, result.output
    meta, leaf = metadata_of(tmp_path / "r")
    snapshots = meta["cluster_snapshots"]
    assert snapshots["collection_method"] == "local" and snapshots["start"]["phase"] == "start"
    assert snapshots["end"]["phase"] == "end" and meta["system_info"] == snapshots["start"]
    assert meta["system_info"]["num_hosts"] == 1 and meta["system_info"]["total_memory_bytes"] > 0
    assert json.loads((leaf / "toy_cluster_info.json").read_text())["start"]["hosts"]
    ts = meta["timeseries_data"]
    assert ts["file"] == "toy_timeseries.json" and ts["interval_seconds"] == 0.2
    assert ts["num_samples"] >= 3 and ts["hosts_collected"] == ["127.0.0.1"]
    data = json.loads((leaf / ts["file"]).read_text())
    assert data["num_samples"] == ts["num_samples"] and data["samples_by_host"]["127.0.0.1"][0]["meminfo"]
    assert meta["verification"] == "CLOSED"


def test_skip_flags_and_other_commands_collect_nothing(cli, tmp_path):
    result = cli.invoke(["toy", "run", "--results-dir", tmp_path / "a", "--skip-cluster-collection",
                         "--skip-timeseries", "--seconds", "0"])
    assert result.exit_code == 0, result.output
    meta, leaf = metadata_of(tmp_path / "a")
    assert meta["cluster_snapshots"] is None and meta["timeseries_data"] is None and meta["system_info"] is None
    assert not list(leaf.glob("*_timeseries.json"))
    result = cli.invoke(["toy", "datasize", "--results-dir", tmp_path / "b"])
    assert result.exit_code == 0, result.output
    meta, _ = metadata_of(tmp_path / "b")
    assert meta["system_info"] is None


def test_remote_host_through_ssh_in_the_cli(cli, tmp_path, loopback_sshd):
    """A non-local name (the ssh config alias) with exec-type local: snapshots and samples over real ssh."""
    env = {"MLPS_COLLECTORS_SSH_CONFIG": str(loopback_sshd.client_config)}
    result = cli.invoke(["toy", "run", "--results-dir", tmp_path, "--hosts", "mlps-loopback", "--exec-type",
                         "local", "--timeseries-interval", "0.3", "--seconds", "3"], env=env)
    assert result.exit_code == 0, result.output
    meta, leaf = metadata_of(tmp_path)
    assert meta["cluster_snapshots"]["collection_method"] == "ssh"
    assert meta["system_info"]["hosts"][0]["address"] == "mlps-loopback" and meta["system_info"]["errors"] == []
    assert meta["timeseries_data"]["hosts_collected"] == ["mlps-loopback"]
    assert json.loads((leaf / "toy_timeseries.json").read_text())["collection_method"] == "ssh"


def test_unreachable_host_falls_back_to_args_and_is_graded(cli, tmp_path, loopback_sshd, unused_port):
    config = tmp_path / "ssh_config"
    config.write_text(f"Host mlps-closed\n  HostName 127.0.0.1\n  Port {unused_port}\n")
    result = cli.invoke(["toy", "run", "--results-dir", tmp_path / "r", "--hosts", "mlps-closed", "--exec-type",
                         "local", "--skip-timeseries", "--seconds", "0", "--client-host-memory-in-gb", "64"],
                        env={"MLPS_COLLECTORS_SSH_CONFIG": str(config)})
    assert result.exit_code == 0, result.output  # the run continues
    meta, _ = metadata_of(tmp_path / "r")
    info = meta["system_info"]
    assert info["collection_method"] == "args" and info["total_memory_bytes"] == 64 * 1024**3
    assert any("Connection refused" in e for e in info["errors"])
    from mlps.rules import verify

    verdict = verify([ClusterRunChecker], meta)  # how a report grades the finished run
    assert [i.severity for i in verdict.issues] == ["info"]


def test_checker_applies_to_every_benchmark():
    assert collectors_plugin.mlps_run_checkers("training") == [ClusterRunChecker]
    assert ClusterRunChecker.benchmarks is None


def test_requirements_only_for_mpi_with_remote_hosts():
    def run(hosts, exec_type="mpi", **extra):
        options = {"exec_type": exec_type, "mpi_bin": "mpirun", "skip_cluster_collection": False, **extra}
        return Run(benchmark="toy", command="run", options=options, hosts=[Host(h) for h in hosts])

    assert collectors_plugin.mlps_requirements(run(["127.0.0.1"])) is None
    assert collectors_plugin.mlps_requirements(run(["node1", "node2"], exec_type="local")) is None
    assert collectors_plugin.mlps_requirements(run(["node1"], skip_cluster_collection=True)) is None
    reqs = collectors_plugin.mlps_requirements(run(["node1", "node2"]))
    assert [(r.kind, r.target) for r in reqs] == [("mpi", "mpirun"), ("module", "mpi4py")]
    assert "openmpi-bin" in reqs[1].install["apt"] and "Open MPI" in reqs[1].hint


def test_plugin_imports_without_mpi4py(tmp_path):
    """mpi4py made unimportable: the plugin module and its local collection still work."""
    blocker = tmp_path / "mpi4py"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('no MPI library (test)')\n")
    code = ("import mlps_collectors.plugin as p, mlps_collectors.mpi_collect, sys;"
            "assert 'mpi4py' not in sys.modules;"
            "from mlps_collectors.host import collect_local; assert collect_local().reachable;"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_plugin_module_is_import_light():
    source = Path(collectors_plugin.__file__).read_text()
    imports = [l.split()[1] for l in source.splitlines() if l.startswith(("import ", "from "))]
    assert set(imports) <= {"__future__", "logging", "threading", "mlps"}


@pytest.mark.skipif(not MLPS.exists(), reason="the mlps executable is not installed in this environment")
def test_end_to_end_installed_mlps(tmp_path):
    """The real `mlps` executable (entry points on) running the example benchmark's `run`."""
    env = {**os.environ, "HOME": str(tmp_path), "MLPS_LOAD_PLUGINS": "example,collectors"}
    proc = subprocess.run([str(MLPS), "example", "run", "--results-dir", str(tmp_path / "r"), "--seconds", "1",
                           "--timeseries-interval", "0.25"], capture_output=True, text=True, env=env, timeout=120)
    if "No such command 'example'" in proc.stderr:
        pytest.skip("the mlps-example plugin is not installed")
    assert proc.returncode == 0, proc.stderr
    meta, leaf = metadata_of(tmp_path / "r")
    assert meta["cluster_snapshots"]["collection_method"] == "local"
    assert meta["plugin_versions"].get("collectors") or "mlps-collectors" in json.dumps(meta["plugin_versions"])
    assert meta["timeseries_data"]["num_samples"] >= 3 and (leaf / "example_timeseries.json").exists()
    assert (leaf / "example_cluster_info.json").exists()


def test_closed_run_without_cluster_data_stops_open_run_continues(cli, tmp_path, unused_port):
    config = tmp_path / "ssh_config"
    config.write_text(f"Host mlps-closed\n  HostName 127.0.0.1\n  Port {unused_port}\n")
    common = ["toy", "run", "--hosts", "mlps-closed", "--exec-type", "local", "--skip-timeseries", "--seconds", "0"]
    env = {"MLPS_COLLECTORS_SSH_CONFIG": str(config)}
    closed = cli.invoke(common + ["--results-dir", tmp_path / "c", "--closed"], env=env)
    assert closed.exit_code == 4, closed.output  # DependencyError
    assert "no cluster information from mlps-closed" in closed.output and "--open" in closed.output
    opened = cli.invoke(common + ["--results-dir", tmp_path / "o", "--open"], env=env)
    assert opened.exit_code == 0, opened.output
    meta, _ = metadata_of(tmp_path / "o")
    assert meta["system_info"]["hosts"][0]["errors"]["ssh"]


@pytest.mark.skipif(not MLPS.exists(), reason="the mlps executable is not installed in this environment")
def test_broken_mpi_library_fails_fast_with_open_mpi_hint(tmp_path):
    """mpi4py present but its MPI library unloadable (simulated by a shadowing package): exec-type mpi with
    remote hosts stops before the run, naming how to install Open MPI; the plugin itself still loaded."""
    blocker = tmp_path / "shadow" / "mpi4py"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('libmpi.so.40: cannot open shared object file')\n")
    env = {**os.environ, "HOME": str(tmp_path), "MLPS_LOAD_PLUGINS": "example,collectors",
           "PYTHONPATH": str(tmp_path / "shadow")}
    proc = subprocess.run([str(MLPS), "example", "run", "--results-dir", str(tmp_path / "r"), "--hosts", "node1",
                           "node2", "--seconds", "0"], capture_output=True, text=True, env=env, timeout=120)
    if "No such command 'example'" in proc.stderr:
        pytest.skip("the mlps-example plugin is not installed")
    assert proc.returncode == 4, proc.stderr
    assert "mpi4py cannot load an MPI library" in proc.stderr and "openmpi-bin" in proc.stderr
