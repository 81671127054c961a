"""Write docs/hooks.md from the hookspecs' docstrings (a test fails when the file is out of date)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from mlps import hookspecs

HEADER = """# Hook reference

Generated from `core/src/mlps/hookspecs.py` by `scripts/gen_hook_reference.py`; do not edit by hand.
Implement a hook with a module-level function of the same name marked `@mlps.hookimpl`. An implementation may
take fewer arguments than listed. Owner hooks reach only the plugin that registered the run's benchmark.

"""


def hook_names() -> list[str]:
    return [name for name, obj in vars(hookspecs).items() if name.startswith("mlps_") and inspect.isfunction(obj)]


def render() -> str:
    module_doc = inspect.cleandoc(hookspecs.__doc__ or "")
    parts = [HEADER, "## Overview\n\n", module_doc, "\n"]
    for name in hook_names():
        func = getattr(hookspecs, name)
        opts = getattr(func, "mlps_spec", {}) or {}
        flags = []
        if opts.get("firstresult"):
            flags.append("first result wins")
        if name in hookspecs.OWNER_HOOKS:
            flags.append("owner hook")
        tag = f" ({', '.join(flags)})" if flags else ""
        parts.append(f"\n## `{name}{inspect.signature(func)}`{tag}\n\n{inspect.cleandoc(func.__doc__ or '')}\n")
    return "".join(parts)


def main() -> int:
    target = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
