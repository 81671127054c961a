"""The hook reference stays in step with the hookspecs, and every hook is documented."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

from mlps import hookspecs

REPO = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_hook_reference", REPO / "scripts" / "gen_hook_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_hook_has_a_docstring_with_its_parameters():
    gen = _generator()
    assert len(gen.hook_names()) >= 12
    for name in gen.hook_names():
        func = getattr(hookspecs, name)
        doc = inspect.getdoc(func) or ""
        assert doc.strip(), f"{name} has no docstring"
        for param in inspect.signature(func).parameters:
            assert param in doc, f"{name}: parameter {param!r} is not described"


def test_hook_reference_is_up_to_date():
    committed = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")
    assert committed == _generator().render(), "docs/hooks.md is stale: run scripts/gen_hook_reference.py"
    for name in _generator().hook_names():
        assert f"## `{name}(" in committed


def test_plugin_guide_mentions_every_hook():
    guide = (REPO / "docs" / "plugin-authors.md").read_text(encoding="utf-8")
    missing = [n for n in _generator().hook_names() if n not in guide]
    assert not missing, f"docs/plugin-authors.md does not mention {missing}"
