"""Plugin loading: entry points, isolation of broken plugins, escape hatches, duplicates, strict mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlps import PluginError, hookimpl
from mlps.plugins import get_plugin_manager

from core_toy import ToyPlugin

GOOD = """
from mlps import Benchmark, Command, hookimpl

@hookimpl
def mlps_register_benchmarks(register):
    register(Benchmark("{bench}", help="fake", commands=(Command("run"),)))
"""
BROKEN = "raise RuntimeError('boom at import')\n"
TYPO = """
from mlps import hookimpl

@hookimpl
def mlps_register_benchmark(register):  # missing 's': not a hook
    pass
"""
BAD_ARGS = """
from mlps import hookimpl

@hookimpl
def mlps_prepare_run(run, not_an_argument):
    pass
"""


def make_dist(site: Path, dist: str, module: str, source: str, ep_name: str) -> None:
    """A real installed distribution (dist-info + module) that importlib.metadata finds on sys.path."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[mlps]\n{ep_name} = {module}\n")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "mlps-good", "fake_good", GOOD.format(bench="good"), "good")
    make_dist(site, "mlps-broken", "fake_broken", BROKEN, "broken")
    make_dist(site, "mlps-typo", "fake_typo", TYPO, "typo")
    make_dist(site, "mlps-badargs", "fake_badargs", BAD_ARGS, "badargs")
    monkeypatch.syspath_prepend(str(site))
    for key in ("MLPS_DISABLE_PLUGINS", "MLPS_LOAD_PLUGINS", "MLPS_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    return site


def only(records, names):
    return {n: records[n] for n in names}


def test_loading_isolates_each_failure(fake_site):
    manager = get_plugin_manager(strict=False)
    records = manager.records
    assert records["good"].status == "active"
    assert records["good"].distribution == "mlps-good" and records["good"].version == "1.2.3"
    assert records["broken"].status == "failed"
    assert "RuntimeError: boom at import" in records["broken"].error
    assert records["typo"].status == "failed" and "mlps_register_benchmark" in records["typo"].error
    assert records["badargs"].status == "failed" and "not_an_argument" in records["badargs"].error
    assert manager.pm.get_plugin("badargs") is None  # never left half-registered
    assert "good" in manager.benchmarks()


def test_strict_mode_raises(fake_site, monkeypatch):
    monkeypatch.setenv("MLPS_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="boom at import|mlps_register_benchmark|not_an_argument"):
        get_plugin_manager()


def test_disable_applies_before_import(fake_site, monkeypatch):
    monkeypatch.setenv("MLPS_DISABLE_PLUGINS", "broken,mlps-typo")
    sys.modules.pop("fake_broken", None)
    manager = get_plugin_manager(strict=False)
    assert manager.records["broken"].status == "disabled"
    assert manager.records["typo"].status == "disabled"
    assert "fake_broken" not in sys.modules


def test_allow_list_and_empty_allow_list(fake_site, monkeypatch):
    monkeypatch.setenv("MLPS_LOAD_PLUGINS", "good")
    manager = get_plugin_manager(strict=False)
    statuses = {name: r.status for name, r in manager.records.items()}
    assert statuses["good"] == "active"
    assert {s for n, s in statuses.items() if n != "good"} == {"disabled"}
    monkeypatch.setenv("MLPS_LOAD_PLUGINS", "")
    manager = get_plugin_manager(strict=False)
    assert {r.status for r in manager.records.values()} == {"disabled"}


def test_command_of_failed_plugin_exits_with_its_error(fake_site, mlps_cli):
    mlps_cli.manager = get_plugin_manager(strict=False)
    result = mlps_cli.invoke(["broken", "run", "--anything"])
    assert result.exit_code == 5
    assert "boom at import" in result.stderr.splitlines()[0]
    assert mlps_cli.invoke(["good", "--help"]).exit_code == 0


def test_broken_plugin_leaves_help_working_in_a_real_process(fake_site):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake_site), os.environ.get("PYTHONPATH", "")]))
    env.pop("MLPS_STRICT_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-m", "mlps", "--help"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "good" in proc.stdout
    assert proc.stderr.count("'broken'") == 1  # reported once
    listing = subprocess.run([sys.executable, "-m", "mlps", "plugins", "--json"], capture_output=True, text=True,
                             env=env, timeout=60)
    by_name = {r["name"]: r for r in json.loads(listing.stdout)}
    assert by_name["broken"]["status"] == "failed" and by_name["good"]["status"] == "active"


def test_duplicate_benchmark_names_name_both_plugins(mlps_cli, register_plugin, tmp_path):
    register_plugin(ToyPlugin("dup"), name="first")
    register_plugin(ToyPlugin("dup"), name="second")
    result = mlps_cli.invoke(["dup", "run", "--results-dir", str(tmp_path)])
    assert result.exit_code == 5
    line = result.stderr.splitlines()[0]
    assert "'first'" in line and "'second'" in line


def test_register_rejects_wrong_record_type(mlps_pm, register_plugin):
    class Bad:
        @hookimpl
        def mlps_register_benchmarks(self, register):
            register({"name": "x"})

    with pytest.raises(PluginError, match="expected mlps.Benchmark"):
        register_plugin(Bad(), name="bad")
        mlps_pm.benchmarks()


def test_option_clash_between_plugins_is_refused(mlps_cli, register_plugin, toy):
    from mlps import Option

    class Adder:
        @hookimpl
        def mlps_command_options(self, benchmark, command):
            return [Option(("--size",), type=int)]

    register_plugin(Adder(), name="adder")
    result = mlps_cli.invoke(["toy", "run"])
    assert result.exit_code == 5
    assert "clashes" in result.stderr


def test_options_added_to_another_plugins_command(mlps_cli, register_plugin, toy, tmp_path, recording_executor):
    from mlps import Option

    class Adder:
        @hookimpl
        def mlps_command_options(self, benchmark, command):
            return [Option(("--collect-extra",), type=bool, help="added by another plugin")] if command == "run" else None

    register_plugin(Adder(), name="adder")
    result = mlps_cli.invoke(["toy", "run", "--collect-extra", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert recording_executor.runs[0].options["collect_extra"] is True


def test_crash_in_another_plugins_broadcast_hook_names_it(mlps_cli, register_plugin, toy, tmp_path):
    class Careless:
        @hookimpl
        def mlps_requirements(self, run):
            return run.parameters["database"]["uri"]  # assumes its own benchmark: a bug

    register_plugin(Careless(), name="careless")
    result = mlps_cli.invoke(["toy", "run", "--results-dir", str(tmp_path)])
    assert result.exit_code == 5, result.output
    line = result.stderr.splitlines()[0]
    assert "plugin 'careless' failed in mlps_requirements: KeyError" in line
    assert "MLPS_DISABLE_PLUGINS=careless" in result.stderr
