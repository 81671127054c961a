"""`mlps --help` start-up cost with every installed plugin, against a bare `python -c pass`, side by side.

The help screen is normally served from mlps's help cache (refreshed by any real invocation); set
MLPS_NO_HELP_CACHE=1 to time a full plugin load instead. Prints the median wall time of each over N alternating runs, their ratio, and the peak RSS of `mlps --help`.
Usage: python benchmarks/cli_help_bench.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


# As installed by pip, modules are byte-compiled; a PYTHONDONTWRITEBYTECODE left in the environment would time
# the compiler instead (the warm-up runs write the __pycache__ files).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv) -> tuple[float, int, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime  # RSS in KiB on Linux


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    mlps = str(Path(sys.executable).with_name("mlps"))
    bare, help_, rss, bare_cpu, help_cpu = [], [], [], [], []
    for _ in range(2):  # warm the page cache and the help cache
        timed([sys.executable, "-c", "pass"]), timed([mlps, "--help"])
    for _ in range(n):
        t, _, c = timed([sys.executable, "-c", "pass"])
        bare.append(t)
        bare_cpu.append(c)
        t, r, c = timed([mlps, "--help"])
        help_.append(t)
        rss.append(r)
        help_cpu.append(c)
    plugins = subprocess.run([mlps, "plugins"], capture_output=True, text=True, env=ENV).stdout
    active = sum(1 for line in plugins.splitlines() if "[active]" in line)
    b, h = statistics.median(bare), statistics.median(help_)
    print(f"runs: {n} alternating; active plugins: {active}")
    print(f"python -c pass   median {b * 1000:7.1f} ms")
    print(f"mlps --help      median {h * 1000:7.1f} ms   ratio {h / b:4.2f}x (budget 4x)")
    bc, hc = statistics.median(bare_cpu), statistics.median(help_cpu)
    print(f"CPU time (user+sys, less sensitive to a loaded machine): pass {bc * 1000:.1f} ms, "
          f"--help {hc * 1000:.1f} ms, ratio {hc / bc:4.2f}x")
    print(f"mlps --help      peak RSS median {statistics.median(rss) / 1024:5.1f} MiB, max {max(rss) / 1024:5.1f} MiB (budget 45 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
