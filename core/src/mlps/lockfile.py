"""Lockfiles: pin the installed mlps distributions and their dependency closure; verify an environment.

Format (pip requirements syntax, so ``pip install -r`` works on it)::

    # mlps lockfile (mlps-lock/1)
    # python 3.11.2 linux
    click==8.1.7
    # local: mlps-core==0.1.0 @ file:///src/core (editable)

Distributions installed from a local directory cannot be fetched from an index, so they are recorded as
``# local:`` comment lines: pip skips them, :func:`verify` still checks them and prints ``pip install -e``
for them. The closure follows ``Requires-Dist`` with environment markers and requested extras.
"""

from __future__ import annotations

import json
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlps.reports import Problem

SCHEMA = "mlps-lock/1"
DEFAULT_LOCKFILE = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*([^\s;#]+)\s*(?:;.*)?(?:#.*)?$")
_LOCAL = re.compile(r"^#\s*local:\s*([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s+@\s+(\S+)(\s+\(editable\))?\s*$")
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def normalize(name: str) -> str:
    """PEP 503 name normalisation (``Mlps_Core`` -> ``mlps-core``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: str | None = None  # file:// URL of a local install
    editable: bool = False

    def line(self) -> str:
        if self.source:
            return f"# local: {self.name}=={self.version} @ {self.source}" + (" (editable)" if self.editable else "")
        return f"{self.name}=={self.version}"


def _installed() -> dict:
    """Installed distributions by normalised name (the first one on sys.path wins, as for imports)."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and normalize(name) not in found:
            found[normalize(name)] = dist
    return found


def _local_source(dist) -> tuple[str | None, bool]:
    try:
        info = json.loads(dist.read_text("direct_url.json") or "null")
    except (ValueError, OSError):
        return None, False
    if not isinstance(info, dict) or not str(info.get("url", "")).startswith("file://"):
        return None, False
    return info["url"], bool((info.get("dir_info") or {}).get("editable"))


def _requirements(dist, extras: set[str]) -> list[tuple[str, set[str]]]:
    """(name, extras) of the dependencies that apply here: markers evaluated, requested extras included."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging is nearly always present (pip and hatchling ship it); degrade gracefully
        Requirement = None
    result = []
    for text in dist.requires or []:
        if Requirement is not None:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None:
                envs = [{"extra": e} for e in sorted(extras)] or [{"extra": ""}]
                if not any(req.marker.evaluate(env) for env in envs):
                    continue
            result.append((req.name, set(req.extras)))
            continue
        if "extra ==" in text and not any(f'"{e}"' in text or f"'{e}'" in text for e in extras):
            continue
        match = _REQ_NAME.match(text)
        if match:
            result.append((match.group(1), {x.strip() for x in (match.group(2) or "").split(",") if x.strip()}))
    return result


def collect_pins(prefixes=("mlps-",)) -> list[Pin]:
    """The installed distributions whose names start with ``prefixes``, and everything they depend on."""
    installed = _installed()
    todo = [(name, set()) for name in installed if name.startswith(tuple(prefixes))]
    done: dict[str, set] = {}
    while todo:
        name, extras = todo.pop()
        key = normalize(name)
        if key in done and extras <= done[key]:
            continue
        done[key] = done.get(key, set()) | extras
        dist = installed.get(key)
        if dist is None:
            continue  # a marker-less dependency that is not installed: verify will not demand it either
        todo.extend(_requirements(dist, done[key]))
    pins = []
    for key in sorted(done):
        dist = installed.get(key)
        if dist is None:
            continue
        source, editable = _local_source(dist)
        pins.append(Pin(dist.metadata["Name"], dist.version, source, editable))
    return pins


def generate(output=None, *, prefixes=("mlps-",)) -> str:
    """Build the lockfile text; write it to ``output`` when given. Returns the text."""
    pins = collect_pins(prefixes)
    header = [f"# mlps lockfile ({SCHEMA}): installed {', '.join(p + '*' for p in prefixes)} distributions "
              "and their dependencies",
              f"# generated {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
              f"# python {platform.python_version()} {sys.platform}",
              "# install: python -m pip install -r <this file>; check: mlps lockfile verify -l <this file>"]
    text = "\n".join(header + [p.line() for p in pins]) + "\n"
    if output is not None:
        from mlps.errors import FileSystemError

        path = Path(output)
        try:
            path.write_text(text)
        except OSError as exc:
            raise FileSystemError(f"cannot write {path}: {exc.strerror or exc}", path=path, operation="write",
                                  code="E402", suggestion="choose a writable path with -o") from exc
    return text


def read_lockfile(lockfile) -> tuple[list[Pin], str | None]:
    """The pins of a lockfile and the Python version it was made with (None if not recorded)."""
    from mlps.errors import ConfigurationError, FileSystemError

    path = Path(lockfile)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FileSystemError(f"lockfile {path} does not exist", path=path, operation="read", code="E103",
                              suggestion="create one with: mlps lockfile generate -o " + str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FileSystemError(f"cannot read lockfile {path}: {exc}", path=path, operation="read") from exc
    pins, python = [], None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        local = _LOCAL.match(line)
        if local:
            pins.append(Pin(local.group(1), local.group(2), local.group(3), bool(local.group(4))))
            continue
        if line.startswith("#"):
            if line.startswith("# python "):
                python = line.split()[2]
            continue
        if line.startswith("-"):  # pip options (--index-url ...) are not pins
            continue
        pin = _PIN.match(line)
        if not pin:
            raise ConfigurationError(f"{path}:{number}: not a pinned requirement: {line!r}", parameter="lockfile",
                                     expected="name==version", actual=line, code="E104",
                                     suggestion="regenerate the file with: mlps lockfile generate -o " + str(path))
        pins.append(Pin(pin.group(1), pin.group(2)))
    return pins, python


@dataclass
class LockCheck:
    lockfile: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fix_commands: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        if self.ok:
            lines = [f"environment matches {self.lockfile} ({self.checked} packages)"]
        else:
            lines = [f"environment does not match {self.lockfile}: {len(self.problems)} mismatch(es)"]
            lines += [f"  - {p.where}: {p.what}" for p in self.problems]
            lines += ["fix with:"] + [f"  {c}" for c in self.fix_commands]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _fix_for(pin: Pin) -> str:
    if pin.source:
        target = pin.source[len("file://"):] if pin.source.startswith("file://") else pin.source
        return f"{sys.executable} -m pip install {'-e ' if pin.editable else ''}'{target}'"
    return f"{sys.executable} -m pip install '{pin.name}=={pin.version}'"


def verify(lockfile, *, prefixes=("mlps-",)) -> LockCheck:
    """Compare the running environment with a lockfile; each mismatch comes with the command that fixes it."""
    pins, python = read_lockfile(lockfile)
    installed = _installed()
    check = LockCheck(lockfile=str(lockfile), checked=len(pins))
    for pin in pins:
        dist = installed.get(normalize(pin.name))
        if dist is None:
            check.problems.append(Problem("missing_package", pin.name, f"not installed (lockfile: {pin.version})",
                                          _fix_for(pin)))
        elif dist.version != pin.version:
            check.problems.append(Problem("version_mismatch", pin.name,
                                          f"installed {dist.version}, lockfile pins {pin.version}", _fix_for(pin)))
    locked = {normalize(p.name) for p in pins}
    for name, dist in sorted(installed.items()):
        if name.startswith(tuple(prefixes)) and name not in locked:
            check.problems.append(Problem("extra_package", dist.metadata["Name"],
                                          f"installed ({dist.version}) but not in the lockfile",
                                          f"{sys.executable} -m pip uninstall -y {dist.metadata['Name']}"))
    check.fix_commands = list(dict.fromkeys(p.fix for p in check.problems))
    if any(p.kind != "extra_package" and not p.fix.count(" -e ") for p in check.problems) and pins:
        check.fix_commands.append(f"# or all index packages at once: {sys.executable} -m pip install -r {lockfile}")
    here = ".".join(platform.python_version_tuple()[:2])
    if python and ".".join(python.split(".")[:2]) != here:
        check.warnings.append(f"the lockfile was made with Python {python}, this is Python {platform.python_version()}")
    return check


def verify_or_raise(lockfile) -> LockCheck:
    """For ``--verify-lockfile``: raise :class:`mlps.DependencyError` listing the fix commands on a mismatch."""
    check = verify(lockfile)
    if not check.ok:
        from mlps.errors import DependencyError

        raise DependencyError(
            f"installed packages do not match {lockfile}: {len(check.problems)} mismatch(es)",
            suggestion="\n".join([f"{p.where}: {p.what}" for p in check.problems] + ["fix with:"]
                                 + check.fix_commands),
            details={"problems": [p.to_dict() for p in check.problems]})
    return check
