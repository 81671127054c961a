"""Distributions as a user gets them: each wheel holds only its own package, and core + the out-of-tree example
installed into a fresh virtual environment give a working `mlps` with exactly that plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {"core": "mlps", "examples/mlps-example": "mlps_example"}
DISTRIBUTIONS.update({f"plugins/{d.name}": d.name.replace("-", "_") for d in (REPO / "plugins").glob("mlps-*")
                      if (d / "pyproject.toml").exists()})


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for folder in DISTRIBUTIONS:
        proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out),
                               str(REPO / folder)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        built[folder] = max(out.glob("*.whl"), key=lambda p: p.stat().st_mtime)
    return built


@pytest.mark.parametrize("folder", sorted(DISTRIBUTIONS))
def test_wheel_holds_only_its_own_package(wheels, folder):
    package = DISTRIBUTIONS[folder]
    names = zipfile.ZipFile(wheels[folder]).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {package}, f"{wheels[folder].name} carries {sorted(top)}"


def test_fresh_venv_with_core_and_example(wheels, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels["core"]),
                          str(wheels["examples/mlps-example"])], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    mlps = str(venv / "bin" / "mlps")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    listing = subprocess.run([mlps, "plugins", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert listing.returncode == 0, listing.stderr
    records = json.loads(listing.stdout)
    assert [(r["name"], r["distribution"], r["status"]) for r in records] == [("example", "mlps-example", "active")]
    run = subprocess.run([mlps, "example", "run", "--seconds", "0.2", "--results-dir", str(tmp_path / "results")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    metadata = list((tmp_path / "results").rglob("example_*_metadata.json"))
    assert len(metadata) == 1
    assert json.loads(metadata[0].read_text())["exit_status"] == "success"
