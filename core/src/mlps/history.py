"""The command history of a results directory: ``<results-dir>/.mlps/history``.

One line per benchmark invocation: ``<id>,<YYYYMMDD_HHMMSS>,<command line>``. The command line is the full
argv joined with shell quoting (``shlex.join``), so a recorded command re-parses to the same argv. The id is
the last valid id + 1. Appends hold an exclusive ``fcntl`` lock on the file, so concurrent runs never
interleave or reuse an id. A corrupt line (a crash mid-write, a hand edit) is skipped by readers, never fatal.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

HISTORY_RELPATH = Path(".mlps") / "history"
_LINE = re.compile(r"^(\d+),(\d{8}_\d{6}),(.*)$")
#: How much of the file's end is read to find the last id (the whole file is read if no id is in it).
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    timestamp: str
    command: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)

    def line(self) -> str:
        return f"{self.id},{self.timestamp},{self.command}"

    def __str__(self) -> str:
        return f"{self.id} : {self.timestamp} : {self.command}"


def history_path(results_dir) -> Path:
    return Path(results_dir).expanduser() / HISTORY_RELPATH


def parse_line(line: str) -> HistoryEntry | None:
    match = _LINE.match(line.rstrip("\r\n"))
    if not match or not match.group(3).strip():
        return None
    return HistoryEntry(int(match.group(1)), match.group(2), match.group(3))


def _command_text(argv: Sequence[str]) -> str:
    # A newline inside an argument would split the record; such arguments are recorded with spaces instead.
    return shlex.join(str(a).replace("\r", " ").replace("\n", " ") for a in argv)


def _last_id(handle) -> int:
    size = handle.seek(0, os.SEEK_END)
    for start in (max(0, size - _TAIL_BYTES), 0):
        handle.seek(start)
        data = handle.read().decode("utf-8", errors="replace")
        lines = data.splitlines()
        if start:
            lines = lines[1:]  # the first line of a tail read may be cut
        ids = [e.id for e in map(parse_line, lines) if e is not None]
        if ids:
            return max(ids)
        if start == 0:
            break
    return 0


def append(results_dir, argv: Sequence[str], *, timestamp: str | None = None) -> HistoryEntry:
    """Record one invocation; safe when several processes append at once. Returns the new entry.

    :raises mlps.FileSystemError: the history file cannot be created or written.
    """
    from mlps.errors import FileSystemError

    path = history_path(results_dir)
    timestamp = timestamp or time.strftime("%Y%m%d_%H%M%S")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                entry = HistoryEntry(_last_id(handle) + 1, timestamp, _command_text(argv))
                size = handle.seek(0, os.SEEK_END)
                prefix = b""
                if size:
                    handle.seek(size - 1)
                    if handle.read(1) != b"\n":  # a writer died mid-line: do not glue onto its remains
                        prefix = b"\n"
                handle.write(prefix + (entry.line() + "\n").encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        raise FileSystemError(f"cannot record the command in {path}: {exc.strerror or exc}", path=path,
                              operation="append", code="E402",
                              suggestion="check that the results directory is writable") from exc
    return entry


def read_entries(results_dir) -> tuple[list[HistoryEntry], list[int]]:
    """All valid entries in file order, and the 1-based numbers of lines that could not be parsed."""
    path = history_path(results_dir)
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)  # never read half an append
            try:
                data = handle.read()
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        from mlps.errors import FileSystemError

        raise FileSystemError(f"cannot read {path}: {exc.strerror or exc}", path=path, operation="read",
                              code="E402", suggestion="check the file's permissions") from exc
    entries, bad = [], []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        entry = parse_line(line)
        if entry is None:
            bad.append(number)
        else:
            entries.append(entry)
    return entries, bad


def show(results_dir, n: int | None = None, id: int | None = None) -> list[HistoryEntry]:
    """The last ``n`` entries (all when None), or just entry ``id`` (unknown id: ConfigurationError)."""
    if id is not None:
        return [get(results_dir, id)]
    entries, _ = read_entries(results_dir)
    if n is not None:
        entries = entries[-n:] if n > 0 else []
    return entries


def get(results_dir, id: int) -> HistoryEntry:
    """The entry with this id. :raises mlps.ConfigurationError: (exit 2) no such id."""
    from mlps.errors import ConfigurationError

    entries, _ = read_entries(results_dir)
    for entry in reversed(entries):
        if entry.id == id:
            return entry
    known = f"ids {entries[0].id}..{entries[-1].id}" if entries else "no entries"
    raise ConfigurationError(f"no history entry with id {id} in {history_path(results_dir)} ({known})",
                             parameter="id", actual=id, code="E101",
                             suggestion="list the recorded commands with: mlps history show")


def rerun_argv(entry: HistoryEntry, program: str = "mlps") -> list[str]:
    """The recorded argv without the program name, ready for the CLI's ``main(argv)``."""
    argv = entry.argv
    if argv and os.path.basename(argv[0]) in (program, f"{program}.exe"):
        argv = argv[1:]
    return argv
