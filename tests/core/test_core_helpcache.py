"""The help cache: `mlps --help` served without importing plugins, identical to the real screen, and
refreshed as soon as a plugin's files change."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PLUGIN = """
import os
from mlps import Benchmark, Command, Option, hookimpl

with open(os.environ["IMPORT_LOG"], "a") as log:  # proves whether a process imported the plugin
    log.write("imported\\n")

@hookimpl
def mlps_register_benchmarks(register):
    register(Benchmark("{name}", help="{help}", commands=(
        Command("run", help="run it", options=(Option(("--files",), type=int, default=3, help="how many"),)),)))
"""


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    (site / "cached_bench").mkdir(parents=True)
    (site / "cached_bench" / "__init__.py").write_text("")
    (site / "cached_bench" / "plugin.py").write_text(PLUGIN.format(name="cachedbench", help="first help"))
    info = site / "mlps_cachedbench-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlps-cachedbench\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[mlps]\ncachedbench = cached_bench.plugin\n")
    return site


def mlps(site, tmp_path, *args, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPS_")}
    log = tmp_path / "imports.log"
    log.write_text("")
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"), MLPS_LOAD_PLUGINS="cachedbench",
               COLUMNS="100", IMPORT_LOG=str(log), **extra_env)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlps", *args], capture_output=True,
                          text=True, env=env, timeout=60)
    proc.plugin_imported = bool(log.read_text())
    return proc


def imported(proc, module):
    """Whether the process imported ``module`` with an import statement (what -X importtime logs)."""
    return any(line.split("|")[-1].strip() == module
               for line in proc.stderr.splitlines() if line.startswith("import time:"))


@pytest.mark.parametrize("args", [["--help"], ["cachedbench", "run", "--help"], ["--version"]])
def test_cached_screen_equals_the_real_one_and_skips_plugins(site, tmp_path, args):
    real = mlps(site, tmp_path, *args, MLPS_NO_HELP_CACHE="1")
    first = mlps(site, tmp_path, *args)    # fills the cache
    second = mlps(site, tmp_path, *args)   # rendered from cached registrations, then kept
    third = mlps(site, tmp_path, *args)    # printed as kept
    assert real.returncode == first.returncode == second.returncode == third.returncode == 0
    assert real.stdout == first.stdout == second.stdout == third.stdout
    assert real.plugin_imported and imported(real, "pluggy")
    assert not second.plugin_imported and not imported(second, "pluggy")
    assert not third.plugin_imported
    assert not imported(third, "click")


def test_cache_follows_plugin_changes(site, tmp_path):
    assert "first help" in mlps(site, tmp_path, "--help").stdout
    assert "first help" in mlps(site, tmp_path, "--help").stdout
    plugin = site / "cached_bench" / "plugin.py"
    plugin.write_text(PLUGIN.format(name="cachedbench", help="second help"))
    os.utime(plugin, ns=(plugin.stat().st_mtime_ns + 10**9,) * 2)  # a later mtime even on a coarse clock
    assert "second help" in mlps(site, tmp_path, "--help").stdout


def test_strict_mode_is_not_hidden_by_the_cache(site, tmp_path):
    assert mlps(site, tmp_path, "--help").returncode == 0
    (site / "cached_bench" / "plugin.py").write_text("raise ImportError('gone')\n")
    assert mlps(site, tmp_path, "--help").returncode == 0  # reported, --help still works
    strict = mlps(site, tmp_path, "--help", MLPS_STRICT_PLUGINS="1")
    assert strict.returncode == 5 and "gone" in strict.stderr
