"""Entry points of the ``mlps`` group, found without importing plugins, pluggy or importlib.metadata."""

from __future__ import annotations

import os
import sys

ENTRY_POINT_GROUP = "mlps"


class EntryPoint:
    """One ``mlps`` entry point found on ``sys.path``: ``name = module[:attr]`` from a distribution.
    (A plain class: dataclasses would pull inspect into ``mlps --help``.)"""

    __slots__ = ("name", "value", "dist_name", "dist_path")

    def __init__(self, name: str, value: str, dist_name: str | None, dist_path: str):
        self.name, self.value, self.dist_name, self.dist_path = name, value, dist_name, dist_path

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def version(self) -> str | None:
        return metadata_field(self.dist_path, "Version")

    def load(self):
        import importlib

        module_name, _, attr = self.value.partition(":")
        obj = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def entry_points() -> list[EntryPoint]:
    """Entry points of the ``mlps`` group, read straight from ``*.dist-info/entry_points.txt`` on sys.path.

    ``importlib.metadata`` does the same but imports the email parser and reads every distribution's metadata,
    which costs more than the rest of ``mlps --help``; only the few matching distributions are read here.
    The first distribution of a name on sys.path wins, as for imports.
    """
    found: dict[str, EntryPoint] = {}
    seen_dists: set[str] = set()
    for entry in sys.path or ():
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            dist_path = os.path.join(entry or ".", name)
            try:
                with open(os.path.join(dist_path, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            dist_key = name[: -len(".dist-info")].rsplit("-", 1)[0].lower().replace("-", "_")
            if dist_key in seen_dists:
                continue
            seen_dists.add(dist_key)
            for ep_name, value in _group_entries(text, ENTRY_POINT_GROUP):
                if ep_name not in found:
                    found[ep_name] = EntryPoint(ep_name, value, metadata_field(dist_path, "Name"), dist_path)
    return list(found.values())


def _group_entries(text: str, group: str) -> list[tuple[str, str]]:
    entries, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line.strip("[]").strip() == group
            continue
        if inside and "=" in line:
            key, _, value = line.partition("=")
            entries.append((key.strip(), value.strip()))
    return entries


def metadata_field(dist_path: str, field: str) -> str | None:
    """One header field (``Name``, ``Version``) of a distribution's METADATA file; the headers end at the
    first blank line, so the long description is never read."""
    prefix = field + ":"
    try:
        with open(os.path.join(dist_path, "METADATA"), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(prefix):
                    return line[len(prefix):].strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return None
