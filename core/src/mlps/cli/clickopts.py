"""Options as plain specs (dicts) and the click options made from them.

The same spec builds the real CLI and the help cache's copy of it, so ``mlps --help`` looks the same whether it
was served from the cache or from loaded plugins. Only click and the standard library are imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool", Path: "Path"}
_CLICK_TYPES = {"str": click.STRING, "int": click.INT, "float": click.FLOAT}


def option_spec(option) -> dict[str, Any]:
    """An :class:`mlps.Option` as a JSON-native dict (callable defaults are shown as text, never called)."""
    default = option.default
    if callable(default):
        shown = None
    elif option.multiple and default:
        shown = " ".join(map(str, default))
    else:
        shown = default
    return {"flags": list(option.flags), "dest": option.dest, "help": option.help, "type": _TYPE_NAMES[option.type],
            "shown_default": shown if isinstance(shown, (str, int, float, bool)) else None,
            "flag_default": default if option.type is bool else None,
            "choices": list(option.choices) if option.choices else None, "multiple": option.multiple,
            "min": option.min, "metavar": option.metavar, "secondary": option.secondary,
            "required": option.required}


def click_option(spec: dict[str, Any]) -> click.Option:
    """A click option from a spec. Values are left at None: defaults and ``required`` are applied after the
    config-file and environment layers, so a required value may come from either."""
    flags, dest = spec["flags"], spec["dest"]
    if spec["type"] == "bool":
        decls = [f"{flags[0]}/{spec['secondary']}", *flags[1:]] if spec["secondary"] else list(flags)
        return click.Option([*decls, dest], is_flag=True, default=spec["flag_default"], help=spec["help"])
    if spec["choices"]:
        ctype: Any = click.Choice(spec["choices"])
    elif spec["min"] is not None and spec["type"] in ("int", "float"):
        ctype = (click.IntRange if spec["type"] == "int" else click.FloatRange)(min=spec["min"])
    elif spec["type"] == "Path":
        ctype = click.Path(path_type=Path)
    else:
        ctype = _CLICK_TYPES[spec["type"]]
    help_text = spec["help"] or ""
    if spec["shown_default"] not in (None, ""):
        help_text = f"{help_text} [default: {spec['shown_default']}]".strip()
    if spec["required"]:
        help_text += " (required)"
    return click.Option([*flags, dest], type=ctype, multiple=spec["multiple"], default=None, help=help_text,
                        metavar=spec["metavar"])
