"""Results-tree validation and loading for ``mlps reports reportgen``.

The core writes ``<results-dir>/<benchmark>/<model>/<command>/<YYYYMMDD_HHMMSS>/<benchmark>_<ts>_metadata.json``.
:func:`validate_tree` walks such a tree and reports every structural problem it finds (it never stops at the
first bad run and never follows a symlink loop); :func:`load_runs` returns the same walk's loadable runs.
Grading lives in :mod:`mlps.reports_grade`, output formats in :mod:`mlps.reports_output`, and
:func:`generate_report` ties the three together.

Only the standard library is imported here: ``mlps --help`` imports the CLI modules that reference this one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

#: Leaf directory names: the run timestamp, optionally bumped with a numeric suffix when two runs collide.
TIMESTAMP_DIR = re.compile(r"^\d{8}_\d{6}(?:[_.-]\d+)?$")
#: Keys a metadata file must have for its run to be identified and graded. ``model`` may be null (a
#: benchmark without models); the core then names the directory ``default``.
REQUIRED_KEYS = ("benchmark_type", "command", "run_datetime")
#: Directories and files at the top of a results tree that are not benchmarks.
TOP_LEVEL_IGNORED = frozenset({"results.json", "results.csv"})
METADATA_SUFFIX = "_metadata.json"
#: Depth of a leaf below the benchmark directory: <model>/<command>/<timestamp>.
LEAF_DEPTH = 3


@dataclass
class Problem:
    """One thing wrong with a results tree or the environment: where, what, and how to fix it."""

    kind: str
    where: str
    what: str
    fix: str

    def __str__(self) -> str:
        fix = self.fix.replace("\n", "\n       ")
        return f"{self.where}: {self.what}\n  fix: {fix}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "where": self.where, "what": self.what, "fix": self.fix}


@dataclass
class RunRecord:
    """A run found in the tree: where its leaf is and the metadata loaded from it."""

    path: Path
    metadata_file: Path
    metadata: dict[str, Any]
    rel_path: str = ""

    @property
    def benchmark(self) -> str:
        return str(self.metadata.get("benchmark_type") or "")

    def field(self, key: str) -> str:
        value = self.metadata.get(key)
        return "" if value is None else str(value)

    @property
    def model(self) -> str:
        """The metadata's model, else the <model> directory name of a canonical leaf."""
        return self.field("model") or self.dir_model

    dir_model: str = ""


@dataclass
class TreeScan:
    """Everything a walk of a results tree found."""

    root: Path
    runs: list[RunRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    leaves_seen: int = 0


def _check_root(results_dir) -> Path:
    from mlps.errors import FileSystemError

    root = Path(results_dir).expanduser()
    if not root.exists():
        raise FileSystemError(f"results directory {root} does not exist", path=root, operation="read",
                              suggestion="pass the --results-dir that your runs wrote to", code="E401")
    if not root.is_dir():
        raise FileSystemError(f"results directory {root} is not a directory", path=root, operation="read",
                              suggestion="pass the directory that holds <benchmark>/<model>/<command>/<timestamp>/",
                              code="E404")
    return root


def scan_tree(results_dir, benchmarks: Iterable[str] | None = None, *, on_leaf=None, exclude=()) -> TreeScan:
    """Walk a results tree once: collect loadable runs and every problem.

    :param benchmarks: the benchmark directory names that are known (registered by plugins); None accepts any.
    :param on_leaf: optional callable invoked once per leaf directory visited (progress reporting).
    :param exclude: top-level directories to skip (a report's own output directory inside the tree).
    :raises mlps.FileSystemError: the path does not exist or is not a directory.
    """
    root = _check_root(results_dir)
    known = None if benchmarks is None else set(benchmarks)
    scan = TreeScan(root=root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise _unreadable(root, exc) from exc
    visited = {_dir_key(root)}
    skipped = {_dir_key(p) for p in exclude if Path(p).is_dir()}
    ancestors = frozenset(visited)
    for entry in entries:
        if entry.name.startswith(".") or entry.name in TOP_LEVEL_IGNORED:
            continue
        path = Path(entry.path)
        if not _is_dir(entry):
            if not _broken_link(entry, scan, root):
                scan.problems.append(Problem(
                    "stray_file", _rel(path, root), "a file at the top of the results tree",
                    f"move it out of {root}; only <benchmark>/ directories belong here"))
            continue
        if _dir_key(path) in skipped:
            continue
        if known is not None and entry.name not in known:
            scan.problems.append(Problem(
                "unknown_benchmark", _rel(path, root),
                f"unknown benchmark directory '{entry.name}' (known: {', '.join(sorted(known)) or 'none'})",
                f"install the plugin that provides '{entry.name}', or move {path} out of the results tree"))
            continue
        _walk(path, 0, scan, root, visited, ancestors, on_leaf)
    if not scan.runs and not scan.problems:
        scan.problems.append(Problem(
            "empty_tree", str(root), "no runs found in the results directory",
            "run a benchmark with --results-dir pointing here, or pass the directory your runs wrote to"))
    return scan


def validate_tree(results_dir, benchmarks: Iterable[str] | None = None) -> list[Problem]:
    """Every structural problem of a results tree (path, what is wrong, how to fix it)."""
    return scan_tree(results_dir, benchmarks).problems


def load_runs(results_dir, benchmarks: Iterable[str] | None = None) -> list[RunRecord]:
    """The runs of a results tree whose metadata could be loaded (problems are skipped; see validate_tree)."""
    return scan_tree(results_dir, benchmarks).runs


# --- the walk -------------------------------------------------------------------------------------------

def _dir_key(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _broken_link(entry: os.DirEntry, scan: TreeScan, root: Path) -> bool:
    """Report a symlink whose target is missing or loops on itself; True when it was one."""
    if not entry.is_symlink():
        return False
    try:
        os.stat(entry.path)
        return False
    except OSError as exc:
        loop = getattr(exc, "errno", None) == 40  # ELOOP
        what = "symlink loop" if loop else f"dangling symlink (target {os.readlink(entry.path)!r} is missing)"
        scan.problems.append(Problem("symlink_loop" if loop else "dangling_symlink", _rel(Path(entry.path), root),
                                     what, f"remove the link: rm {entry.path}"))
        return True


def _unreadable(path: Path, exc: OSError):
    from mlps.errors import FileSystemError

    return FileSystemError(f"cannot read {path}: {exc.strerror or exc}", path=path, operation="read",
                           code="E402", suggestion="check the directory's permissions")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _walk(path: Path, depth: int, scan: TreeScan, root: Path, visited: set, ancestors: frozenset,
          on_leaf) -> None:
    """Visit ``path`` at ``depth`` below its benchmark directory (0 = the benchmark dir itself).

    ``visited`` holds every directory seen (by device and inode), ``ancestors`` those on the current path: a
    directory that is its own ancestor is a symlink loop, one seen elsewhere would count its runs twice.
    """
    try:
        key = _dir_key(path)
    except OSError as exc:
        scan.problems.append(Problem("unreadable", _rel(path, root), f"cannot stat: {exc.strerror or exc}",
                                     "check the path and its permissions"))
        return
    if key in ancestors:
        scan.problems.append(Problem(
            "symlink_loop", _rel(path, root), "symlink loop: this link points back to a directory above it",
            f"remove the link: rm {path}"))
        return
    if key in visited:
        scan.problems.append(Problem(
            "duplicate_dir", _rel(path, root),
            "this directory was already reached through another path (a symlink); skipped so it counts once",
            f"remove whichever of the two paths is a symlink (ls -l {path.parent})"))
        return
    visited.add(key)
    ancestors = ancestors | {key}
    try:
        entries = list(os.scandir(path))
    except OSError as exc:
        scan.problems.append(Problem("unreadable", _rel(path, root), f"cannot list: {exc.strerror or exc}",
                                     f"check the permissions of {path}"))
        return
    metadata_files = [e for e in entries if e.name.endswith(METADATA_SUFFIX) and not _is_dir(e)]
    subdirs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if _is_dir(entry):
            subdirs.append(entry)
        else:
            _broken_link(entry, scan, root)
    if metadata_files or (TIMESTAMP_DIR.match(path.name) and depth >= LEAF_DEPTH - 1):
        if on_leaf is not None:
            on_leaf()
        _visit_leaf(path, depth, metadata_files, scan, root)
        return
    if not subdirs:
        if depth == LEAF_DEPTH:
            scan.problems.append(Problem(
                "missing_metadata", _rel(path, root), "run directory without a *_metadata.json file",
                f"the run did not finish writing its metadata; re-run it or remove {path}"))
        else:
            scan.problems.append(Problem(
                "empty_dir", _rel(path, root), "empty directory: no runs below it",
                f"remove it (rmdir {path}) or re-run the benchmark"))
        return
    if depth == LEAF_DEPTH:  # subdirectories where a run's files should be
        scan.problems.append(Problem(
            "unexpected_dir", _rel(path, root),
            "directory nested below the <benchmark>/<model>/<command>/ level without run metadata",
            "runs live in <benchmark>/<model>/<command>/<YYYYMMDD_HHMMSS>/; move or remove it"))
    for entry in sorted(subdirs, key=lambda e: e.name):
        _walk(Path(entry.path), depth + 1, scan, root, visited, ancestors, on_leaf)


def _visit_leaf(path: Path, depth: int, metadata_files: list, scan: TreeScan, root: Path) -> None:
    scan.leaves_seen += 1
    rel = _rel(path, root)
    if not TIMESTAMP_DIR.match(path.name):
        scan.problems.append(Problem(
            "non_timestamp_leaf", rel, f"run directory name '{path.name}' is not a YYYYMMDD_HHMMSS timestamp",
            f"rename it to the run's run_datetime, e.g. mv {path} {path.parent}/<YYYYMMDD_HHMMSS>"))
    elif depth != LEAF_DEPTH:
        scan.problems.append(Problem(
            "misplaced_leaf", rel, f"run directory at depth {depth + 1}, expected <benchmark>/<model>/<command>/<ts>",
            "move it under <benchmark>/<model>/<command>/"))
    if not metadata_files:
        scan.problems.append(Problem(
            "missing_metadata", rel, "run directory without a *_metadata.json file",
            f"the run did not finish writing its metadata; re-run it or remove {path}"))
        return
    if len(metadata_files) > 1:
        names = ", ".join(sorted(e.name for e in metadata_files))
        scan.problems.append(Problem(
            "multiple_metadata", rel, f"more than one metadata file ({names}); the run is skipped",
            "keep the one that matches the directory's timestamp and move the others away"))
        return
    meta_path = Path(metadata_files[0].path)
    metadata, problem = read_metadata(meta_path, _rel(meta_path, root))
    if problem is not None:
        scan.problems.append(problem)
        return
    missing = [k for k in REQUIRED_KEYS if not metadata.get(k)]
    if missing:
        scan.problems.append(Problem(
            "incomplete_metadata", _rel(meta_path, root), f"metadata lacks required keys: {', '.join(missing)}",
            "the file was not written by mlps or was edited; re-run the benchmark to regenerate it"))
        return
    record = RunRecord(path=path, metadata_file=meta_path, metadata=metadata, rel_path=rel)
    _check_consistency(record, depth, scan, root)
    scan.runs.append(record)


def read_metadata(meta_path: Path, shown: str | None = None) -> tuple[dict | None, Problem | None]:
    """Load one metadata file; on failure return a Problem saying whether it is empty, binary or truncated."""
    shown = shown or str(meta_path)
    regenerate = f"re-run the benchmark, or remove {meta_path.parent} if the run is not needed"
    try:
        raw = meta_path.read_bytes()
    except OSError as exc:
        return None, Problem("unreadable", shown, f"cannot read metadata: {exc.strerror or exc}",
                             f"check the permissions of {meta_path}")
    if not raw.strip():
        return None, Problem("malformed_metadata", shown, "metadata file is empty", regenerate)
    if b"\x00" in raw:
        return None, Problem("binary_metadata", shown, "metadata file holds binary data, not JSON", regenerate)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Problem("binary_metadata", shown,
                             f"metadata file is not UTF-8 text (bad byte at offset {exc.start})", regenerate)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = not text[exc.pos:].strip()
        what = ("truncated JSON (the file ends before the document does; the write was interrupted)" if truncated
                else f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        return None, Problem("truncated_metadata" if truncated else "malformed_metadata", shown, what, regenerate)
    if not isinstance(data, dict):
        return None, Problem("malformed_metadata", shown,
                             f"metadata is a JSON {type(data).__name__}, expected an object", regenerate)
    return data, None


def _check_consistency(record: RunRecord, depth: int, scan: TreeScan, root: Path) -> None:
    """The directory names must agree with the metadata (a copied or renamed run is misleading)."""
    meta = record.metadata
    if meta.get("exit_status") not in (None, "success", 0):
        scan.problems.append(Problem(
            "run_failed", record.rel_path, f"run did not succeed (exit_status={meta.get('exit_status')!r}): "
            "it has no results", f"re-run it, or remove {record.path} so it is not reported"))
    elif meta.get("command") == "run" and not meta.get("metrics"):
        scan.problems.append(Problem(
            "no_results", record.rel_path, "run finished but recorded no metrics",
            f"check the logs in {record.path} and re-run the benchmark"))
    if depth != LEAF_DEPTH:
        return
    parts = record.path.relative_to(root).parts
    record.dir_model = parts[1]
    for key, actual in (("model", parts[1]), ("command", parts[2])):
        if meta.get(key) is None and key == "model":
            continue
        if str(meta.get(key)) != actual:
            scan.problems.append(Problem(
                "path_mismatch", record.rel_path,
                f"directory says {key} '{actual}' but the metadata says '{meta.get(key)}'",
                "the run was moved or renamed; put it back under the directory its metadata names"))


def generate_report(results_dir, pm=None, *, benchmarks: Iterable[str] | None = None, output_dir=None,
                    progress: bool = True):
    """Validate, load and grade a results tree, then write ``results.json`` and ``results.csv``.

    :param pm: the plugin manager whose rules hooks grade the runs (None: structure-only grading).
    :param benchmarks: known benchmark directory names; None asks ``pm`` (see :func:`known_benchmarks`).
    :param output_dir: where to write the two files (default: ``results_dir``).
    :returns: a :class:`mlps.reports_grade.Report`.
    """
    from mlps.progress import progress_bar
    from mlps.reports_grade import grade_runs
    from mlps.reports_output import write_outputs

    if benchmarks is None and pm is not None:
        benchmarks = known_benchmarks(pm)
    root = _check_root(results_dir)
    exclude = [output_dir] if output_dir else []
    with progress_bar("Scanning results", enabled=progress) as bar:
        scan = scan_tree(root, benchmarks, on_leaf=bar.advance, exclude=exclude)
    with progress_bar("Grading runs", total=len(scan.runs), enabled=progress) as bar:
        report = grade_runs(scan, pm, on_run=bar.advance)
    report.outputs = write_outputs(report, Path(output_dir) if output_dir else root)
    return report


def known_benchmarks(pm) -> set[str] | None:
    """Benchmark directory names the plugins registered (names and benchmark types); None if none registered."""
    names: set[str] = set()

    def register(benchmark):
        names.add(benchmark.name)
        if getattr(benchmark, "benchmark_type", None):
            names.add(benchmark.benchmark_type)

    try:
        pm.hook.mlps_register_benchmarks(register=register)
    except Exception:  # a broken plugin must not stop a report; unknown dirs are then not flagged
        return None
    return names or None
