"""Output of ``reportgen``: ``results.json``, ``results.csv`` and the console report (text, json or csv).

CSV columns: the fixed ones in :data:`CSV_COLUMNS`, then one column per headline metric label found in the
report (sorted); a group row holds the mean of its runs' values. ``reasons`` joins the reasons with `` | ``. Files are written atomically (temporary file,
then rename) so a reader never sees half a report.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from pathlib import Path

from mlps.rules import Validation

CSV_COLUMNS = ("kind", "benchmark", "model", "accelerator", "command", "run_datetime", "runs", "verdict",
               "reasons", "path")
REPORT_SCHEMA = "mlps-report/1"
_SECTIONS = (Validation.INVALID, Validation.OPEN, Validation.CLOSED)


def report_dict(report) -> dict:
    return {
        "schema": REPORT_SCHEMA,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results_dir": report.results_dir,
        "summary": {"runs": report.counts(report.runs), "groups": report.counts(report.groups),
                    "problems": len(report.problems)},
        "problems": [p.to_dict() for p in report.problems],
        "runs": [r.to_dict() for r in report.runs],
        "groups": [g.to_dict() for g in report.groups],
    }


def json_text(data: dict) -> str:
    """Pretty enough to read, fast enough for 10,000 rows: one list element per line.

    ``json.dumps(indent=...)`` falls back to the pure-Python encoder, several times slower on big reports;
    each element is encoded compactly by the C encoder instead.
    """
    lines = ["{"]
    items = list(data.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if isinstance(value, list) and value:
            lines.append(f"  {json.dumps(key)}: [")
            lines.append(",\n".join("    " + json.dumps(item, default=str) for item in value))
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, default=str)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def metric_columns(report) -> list[str]:
    labels: set[str] = set()
    for row in report.runs + report.groups:
        labels.update(row.metrics)
    return sorted(labels)


def csv_text(report) -> str:
    metrics = metric_columns(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(CSV_COLUMNS) + metrics)
    for row in report.runs + report.groups:
        data = row.to_dict()
        data["reasons"] = " | ".join(row.reasons)
        writer.writerow([data[c] for c in CSV_COLUMNS] + [_cell(row.metrics.get(m)) for m in metrics])
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # NaN stays blank
        return ""
    return str(value)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_outputs(report, output_dir: Path) -> dict[str, str]:
    """Write ``results.json`` and ``results.csv`` into ``output_dir`` (created if needed)."""
    from mlps.errors import FileSystemError

    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        json_path, csv_path = output_dir / "results.json", output_dir / "results.csv"
        _atomic_write(json_path, json_text(report_dict(report)))
        _atomic_write(csv_path, csv_text(report))
    except OSError as exc:
        raise FileSystemError(f"cannot write the report into {output_dir}: {exc.strerror or exc}",
                              path=output_dir, operation="write", code="E402",
                              suggestion="pass a writable --output-dir") from exc
    return {"json": str(json_path), "csv": str(csv_path)}


def format_text(report, *, max_rows: int | None = None) -> str:
    """The console report: summary counts, structure problems, then INVALID, OPEN and CLOSED sections."""
    lines = [f"Results report for {report.results_dir}", ""]
    runs, groups = report.counts(report.runs), report.counts(report.groups)
    lines.append("Summary")
    lines.append(f"  runs:   {_counts(runs)}")
    lines.append(f"  groups: {_counts(groups)}  (group = benchmark, model, accelerator, command)")
    lines.append(f"  problems in the tree: {len(report.problems)}")
    if report.problems:
        lines += ["", f"Problems in the results tree ({len(report.problems)})"]
        for problem in report.problems:
            lines.append(f"  - {problem.where}: {problem.what}")
            lines.append(f"      fix: {problem.fix}")
    for level in _SECTIONS:
        rows = [g for g in report.groups if g.verdict == level] + [r for r in report.runs if r.verdict == level]
        if not rows:
            continue
        lines += ["", f"{level.name} ({groups[level.name]} groups, {runs[level.name]} runs)"]
        shown = rows if max_rows is None else rows[:max_rows]
        for row in shown:
            lines.append(f"  {row.kind:<5} {row.label}{_metrics_text(row.metrics)}")
            for reason in row.reasons:
                lines.append(f"          - {reason}")
        if len(shown) < len(rows):
            lines.append(f"  ... {len(rows) - len(shown)} more (see results.json)")
    if report.outputs:
        lines += ["", f"Wrote {report.outputs.get('json')} and {report.outputs.get('csv')}"]
    return "\n".join(lines) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[v.name]} {v.name}" for v in (Validation.CLOSED, Validation.OPEN,
                                                              Validation.INVALID))


def _metrics_text(metrics: dict) -> str:
    if not metrics:
        return ""
    parts = []
    for key, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return "  [" + ", ".join(parts) + "]"


def render(report, fmt: str) -> str:
    """The report in ``text``, ``json`` or ``csv`` for the console."""
    if fmt == "json":
        return json_text(report_dict(report))
    if fmt == "csv":
        return csv_text(report)
    return format_text(report)
