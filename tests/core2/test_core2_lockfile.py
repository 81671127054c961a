"""Lockfile generate/verify round trip against the real installed distributions (plus a fake dist-info)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlps import lockfile
from mlps.cli.utility_commands import add_utility_commands
from mlps.errors import ConfigurationError, DependencyError, FileSystemError


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """An installed-looking ``mlps-fake`` distribution: depends on click, and on pytest only via an extra."""
    site = tmp_path / "site"
    info = site / "mlps_fake-0.3.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlps-fake\nVersion: 0.3.0\n"
                                   "Requires-Dist: click>=8\nRequires-Dist: pytest; extra == 'testing'\n"
                                   "Requires-Dist: colorama; sys_platform == 'win32'\n")
    monkeypatch.syspath_prepend(str(site))
    return info


def test_generate_pins_mlps_closure(tmp_path, fake_dist):
    text = lockfile.generate(tmp_path / "req.lock")
    assert (tmp_path / "req.lock").read_text() == text
    lines = text.splitlines()
    assert "mlps-fake==0.3.0" in lines
    import click as click_module  # noqa: F401 - only its metadata matters
    from importlib.metadata import version

    assert f"click=={version('click')}" in lines
    assert f"pluggy=={version('pluggy')}" in lines  # dependency of mlps-core
    assert not any(line.lower().startswith("colorama") for line in lines)  # marker false on Linux
    assert any(line.startswith("# local: mlps-core==") and "(editable)" in line for line in lines)


def test_round_trip_and_mismatches(tmp_path, fake_dist):
    lock = tmp_path / "req.lock"
    lockfile.generate(lock)
    check = lockfile.verify(lock)
    assert check.ok, check.format()
    assert "environment matches" in check.format()

    text = lock.read_text().replace("mlps-fake==0.3.0", "mlps-fake==0.2.0")
    lock.write_text(text + "mlps-ghost-package==1.0\n")
    check = lockfile.verify(lock)
    kinds = {p.where: p.kind for p in check.problems}
    assert kinds == {"mlps-fake": "version_mismatch", "mlps-ghost-package": "missing_package"}
    assert f"{sys.executable} -m pip install 'mlps-fake==0.2.0'" in check.fix_commands
    assert f"{sys.executable} -m pip install 'mlps-ghost-package==1.0'" in check.fix_commands
    with pytest.raises(DependencyError) as err:
        lockfile.verify_or_raise(lock)
    assert "mlps-fake==0.2.0" in err.value.suggestion and err.value.exit_code == 4


def test_extra_mlps_distribution_and_local_reinstall(tmp_path, fake_dist):
    lock = tmp_path / "req.lock"
    lines = [line for line in lockfile.generate().splitlines() if "mlps-fake" not in line]
    lock.write_text("\n".join(lines).replace("mlps-core==", "mlps-core==9.9.9-was-") + "\n")
    check = lockfile.verify(lock)
    kinds = {p.where: p for p in check.problems}
    assert kinds["mlps-fake"].kind == "extra_package" and "uninstall -y mlps-fake" in kinds["mlps-fake"].fix
    core_fix = kinds["mlps-core"].fix
    assert "pip install -e" in core_fix and str(Path(__file__).parents[2] / "core") in core_fix


def test_bad_lockfiles(tmp_path):
    with pytest.raises(FileSystemError) as err:
        lockfile.verify(tmp_path / "missing.lock")
    assert "lockfile generate" in err.value.suggestion
    bad = tmp_path / "bad.lock"
    bad.write_text("# comment\nclick>=8\n")
    with pytest.raises(ConfigurationError) as err:
        lockfile.verify(bad)
    assert "bad.lock:2" in err.value.message


def test_cli_generate_and_verify(tmp_path, fake_dist):
    root = click.Group("mlps")
    add_utility_commands(root)
    runner = CliRunner()
    lock = tmp_path / "x.lock"
    result = runner.invoke(root, ["lockfile", "generate", "-o", str(lock)], obj=object())
    assert result.exit_code == 0 and lock.exists() and "packages" in result.stderr
    result = runner.invoke(root, ["lockfile", "verify", "-l", str(lock)], obj=object())
    assert result.exit_code == 0 and "environment matches" in result.stdout
    lock.write_text(lock.read_text().replace("mlps-fake==0.3.0", "mlps-fake==1.0"))
    result = runner.invoke(root, ["lockfile", "verify", "-l", str(lock)], obj=object())
    assert isinstance(result.exception, DependencyError)
    result = runner.invoke(root, ["lockfile", "generate", "-o", "-"], obj=object())
    assert "mlps-fake==0.3.0" in result.stdout
