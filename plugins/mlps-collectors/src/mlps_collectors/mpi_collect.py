"""MPI collection: ``mpirun ... python -m mlps_collectors.mpi_collect --out FILE``.

Every rank reads its own host's files and builds a record; rank 0 gathers them, keeps one record per host
(several ranks may share a host) and writes the JSON to ``--out`` atomically, and also prints it on one
marked stdout line so the launcher gets it even when rank 0 ran on another machine. mpi4py is imported
inside :func:`main`, so importing this module never needs an MPI library.

The launcher side, :func:`collect_mpi`, builds the core's launch line (``mlps.mpi.mpi_prefix``) and never
raises for a broken MPI: it returns ``(records, error)``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

STDOUT_MARK = "MLPS-CLUSTER-JSON "


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def unique_by_hostname(hosts: list[dict]) -> list[dict]:
    """One record per host name, first seen wins (ranks sharing a machine send identical data)."""
    seen: dict[str, dict] = {}
    for host in hosts:
        seen.setdefault(host.get("hostname", ""), host)
    return list(seen.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlps_collectors.mpi_collect")
    parser.add_argument("--out", required=True, type=Path, help="JSON file rank 0 writes")
    args = parser.parse_args(argv)
    from mlps_collectors.host import collect_local, now_iso

    try:
        from mpi4py import MPI  # inside: the plugin must load where no MPI library exists
    except ImportError as exc:
        payload = {"mpi_import_error": f"{type(exc).__name__}: {exc}", "hosts": [],
                   "collection_method": "mpi"}
        if os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")) == "0":
            _write_atomic(args.out, json.dumps(payload))
        print(f"mpi_collect: mpi4py cannot be imported: {exc}", file=sys.stderr)
        return 3
    comm = MPI.COMM_WORLD
    record = collect_local().to_dict()
    gathered = comm.gather(record, root=0)
    if comm.Get_rank() == 0:
        payload = {"hosts": unique_by_hostname(gathered), "num_ranks": comm.Get_size(),
                   "collection_method": "mpi", "collection_timestamp": now_iso()}
        text = json.dumps(payload)
        _write_atomic(args.out, text)
        print(STDOUT_MARK + text, flush=True)
    return 0


def collect_mpi(hosts: Sequence, *, out_dir: Path, num_processes: int | None = None, timeout: float = 60,
                mpi_bin: str = "mpirun", oversubscribe: bool = False, allow_run_as_root: bool = False,
                mpi_params: Sequence[str] = (), python: str | None = None) -> tuple[list, str | None]:
    """Run the MPI collector over ``hosts`` (``mlps.Host`` records). By default one rank per distinct host.

    Returns ``(host records, None)`` on success or ``([], reason)`` when mpirun is missing, fails, times out
    or rank 0 wrote nothing.
    """
    from mlps import Host
    from mlps.mpi import mpi_prefix
    from mlps_collectors.records import HostInfo

    names = list(dict.fromkeys(h.name for h in hosts))
    if num_processes is None:
        launch_hosts, n = [Host(name, 1) for name in names], len(names)
    else:
        launch_hosts, n = list(hosts), num_processes
    out = Path(out_dir) / "mpi_cluster_info.json"
    argv = mpi_prefix(launch_hosts, n, mpi_bin=mpi_bin, oversubscribe=oversubscribe,
                      allow_run_as_root=allow_run_as_root, mpi_params=mpi_params)
    argv += [python or sys.executable, "-m", "mlps_collectors.mpi_collect", "--out", str(out)]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", start_new_session=True)
    except OSError as exc:
        return [], f"cannot run {argv[0]}: {exc.strerror or exc}"
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return [], f"MPI collection timed out after {timeout:g} s"
    payload = _payload(out, stdout)
    if payload is None or proc.returncode != 0:
        detail = _summary(stderr) or f"exit status {proc.returncode}"
        if payload and payload.get("mpi_import_error"):
            detail = f"mpi4py cannot be imported: {payload['mpi_import_error']}"
        return [], f"MPI collection failed (exit {proc.returncode}): {detail}"
    return [HostInfo.from_dict(h) for h in payload.get("hosts", [])], None


def mpi4py_problem(python: str | None = None, timeout: float = 30) -> str | None:
    """Why mpi4py cannot load its MPI library, or None. Checked in a child process without MPI_Init:
    ``find_spec`` alone misses an installed mpi4py whose libmpi is gone."""
    code = "import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI; MPI.Get_library_version()"
    try:
        proc = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot check mpi4py: {exc}"
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]


def _summary(stderr: str) -> str:
    """First and last meaningful lines of mpirun's stderr (its banners are framed by dashes)."""
    lines = [line.strip() for line in stderr.splitlines() if any(c.isalnum() for c in line)]
    if not lines:
        return ""
    text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return text[:300]


def _payload(out: Path, stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith(STDOUT_MARK):
            return json.loads(line[len(STDOUT_MARK):])
    try:
        return json.loads(out.read_text())
    except (OSError, ValueError):
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    # mpirun and its ranks share the session we started; end them all, then reap
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()


if __name__ == "__main__":
    sys.exit(main())
