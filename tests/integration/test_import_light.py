"""Plugins load without heavy imports: building the whole CLI with every installed plugin imports none of
DLIO, TensorFlow, torch, pymilvus, mpi4py, numpy or pandas (they are imported where they are used)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("dlio_benchmark", "tensorflow", "torch", "pymilvus", "milvus_lite", "mpi4py", "numpy", "pandas", "yaml",
         "rich")

PROBE = """
import json, sys
from mlps.cli.build import create_cli
from mlps.plugins import get_plugin_manager
manager = get_plugin_manager(strict=True)
root = create_cli(manager)
for name in list(root.commands):
    root.get_command(None, name)
print(json.dumps({"loaded": sorted(r.name for r in manager.records.values() if r.status == "active"),
                  "modules": sorted(sys.modules)}))
"""


def test_building_the_cli_imports_nothing_heavy():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["loaded"], "no plugin installed: this test needs the repository's plugins"
    heavy = sorted({m.split(".")[0] for m in report["modules"]} & set(HEAVY))
    assert not heavy, f"loading {report['loaded']} imported {heavy}"
