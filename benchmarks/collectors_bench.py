"""Figures for mlps-collectors (printed, not asserted). Run as root on a machine with openssh-server and
Open MPI:  python benchmarks/collectors_bench.py [--repeats 5] [--sampler-seconds 20]

1. SSH collection from 8 targets vs 1 target: 8 x 127.0.0.1 through a real loopback sshd (the test
   fixture's), forced onto the SSH path; medians of interleaved repeats and their ratio. Both sides of every
   connection (ssh client and sshd) run on this machine, so the 8-target figure also pays for 8 server
   handshakes here, which a real cluster spreads over 8 machines.
2. Sampler CPU cost at a 1 s interval over a window (default 20 s, shorter than the 60 s of the issue to keep
   the run short): this process's CPU time (all threads) during the window, as % of one core.
3. MPI collection with 2 ranks minus `mpirun -n 2 true` (mpirun's own start-up), medians of interleaved repeats.
4. The same sampler window for one remote host (the loopback sshd): one long-lived ssh session, its CPU
   (client + server session) as % of one core.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "collectors"))

from loopback_sshd import start_sshd  # noqa: E402

from mlps import Host  # noqa: E402
from mlps.mpi import mpi_prefix  # noqa: E402
from mlps_collectors.mpi_collect import collect_mpi  # noqa: E402
from mlps_collectors.sampler import TimeseriesSampler  # noqa: E402
from mlps_collectors.ssh import collect_ssh  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cpu_seconds(sshd_pid: int) -> float:
    """CPU of our reaped children (ssh clients) plus sshd's reaped children (the server sessions)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    fields = Path(f"/proc/{sshd_pid}/stat").read_text().rsplit(")", 1)[1].split()
    server = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime
    return usage.ru_utime + usage.ru_stime + server


def ssh_fan_out(repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mlps-bench-sshd-") as workdir:
        server = start_sshd(Path(workdir))
        options = ["-F", str(server.client_config)]
        try:
            def collect(n):
                hosts = collect_ssh(["127.0.0.1"] * n, force_ssh=True, ssh_options=options, timeout=60)
                failed = [h.errors for h in hosts if not h.reachable]
                if failed:
                    raise RuntimeError(f"ssh collection failed: {failed[0]}")

            collect(1)  # warm the page cache and sshd
            one, eight, cpu8 = [], [], []
            for _ in range(repeats):  # interleaved so drift hits both sides alike
                one.append(timed(lambda: collect(1)))
                before = _cpu_seconds(server.process.pid)
                eight.append(timed(lambda: collect(8)))
                cpu8.append(_cpu_seconds(server.process.pid) - before)
        finally:
            server.stop()
    m1, m8, c8 = statistics.median(one), statistics.median(eight), statistics.median(cpu8)
    cores = os.cpu_count() or 1
    print(f"SSH collection, 1 target:  median {m1:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in one)})")
    print(f"SSH collection, 8 targets: median {m8:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in eight)})")
    print(f"SSH 8-vs-1 ratio: {m8 / m1:.2f}x  (target <= 2x)")
    print(f"  8 targets burn {c8:.3f} s CPU (ssh clients + sshd sessions, all on this machine): on {cores} core(s) "
          f"that alone needs >= {c8 / cores:.3f} s, i.e. {c8 / cores / m1:.2f}x the 1-target time")


def sampler_cost(seconds: float) -> None:
    idle_start_cpu, idle_start = time.process_time(), time.monotonic()
    time.sleep(min(5.0, seconds))
    idle_cpu = (time.process_time() - idle_start_cpu) / (time.monotonic() - idle_start)
    sampler = TimeseriesSampler(["127.0.0.1"], interval=1.0, max_samples=100000)
    cpu0, wall0 = time.process_time(), time.monotonic()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    print(f"Sampler at 1 s interval over {wall:.1f} s (window shortened from 60 s): {sampler.num_samples} samples, "
          f"CPU {cpu * 1000:.1f} ms = {100 * cpu / wall:.3f}% of one core "
          f"(idle process baseline {100 * idle_cpu:.3f}%; target <= 1%)")


def remote_sampler_cost(seconds: float) -> None:
    """One remote host (the loopback sshd) sampled at 1 s: CPU of this process, the ssh client and the sshd
    session (which here also stands for the remote side's sh/cat work)."""
    with tempfile.TemporaryDirectory(prefix="mlps-bench-sshd-") as workdir:
        server = start_sshd(Path(workdir))
        try:
            before = _cpu_seconds(server.process.pid)
            cpu0, wall0 = time.process_time(), time.monotonic()
            sampler = TimeseriesSampler(["mlps-loopback"], interval=1.0, max_samples=100000,
                                        ssh_options=["-F", str(server.client_config)]).start()
            time.sleep(seconds)
            sampler.stop()
            time.sleep(1.5)  # let sshd reap the session so its CPU is counted
            wall = time.monotonic() - wall0
            ours = time.process_time() - cpu0
            others = _cpu_seconds(server.process.pid) - before
        finally:
            server.stop()
    print(f"Remote sampler (1 host over one ssh session) at 1 s over {seconds:.0f} s: {sampler.num_samples} samples, "
          f"this process {100 * ours / wall:.3f}% + ssh client and sshd session {100 * others / wall:.3f}% of one core")


def mpi_overhead(repeats: int) -> None:
    base = mpi_prefix([Host("127.0.0.1", 2)], 2, oversubscribe=True, allow_run_as_root=True)

    def bare():
        subprocess.run(base + ["true"], check=True, capture_output=True)

    def collect():
        with tempfile.TemporaryDirectory() as out:
            records, error = collect_mpi([Host("127.0.0.1", 2)], out_dir=Path(out), num_processes=2,
                                         oversubscribe=True, allow_run_as_root=True, timeout=120)
            if error:
                raise RuntimeError(error)

    bare()
    collect()
    bare_times, collect_times = [], []
    for _ in range(repeats):
        bare_times.append(timed(bare))
        collect_times.append(timed(collect))
    mb, mc = statistics.median(bare_times), statistics.median(collect_times)
    print(f"mpirun -n 2 true:           median {mb:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in bare_times)})")
    print(f"MPI collection, 2 ranks:    median {mc:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in collect_times)})")
    print(f"MPI collection beyond mpirun start-up: {mc - mb:.3f} s  (target <= 3 s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sampler-seconds", type=float, default=20.0)
    parser.add_argument("--only", choices=("ssh", "sampler", "mpi"))
    args = parser.parse_args()
    if args.only in (None, "ssh"):
        ssh_fan_out(args.repeats)
    if args.only in (None, "mpi"):
        mpi_overhead(args.repeats)
    if args.only in (None, "sampler"):
        sampler_cost(args.sampler_seconds)
        remote_sampler_cost(args.sampler_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
