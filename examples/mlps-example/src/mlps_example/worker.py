"""The example's workload: spin for N seconds (with a child process beside it, so the process group holds
more than one process), report progress, write a result file."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--ignore-sigterm", action="store_true", help="makes the core escalate to SIGKILL")
    args = parser.parse_args()
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    print(f"worker {os.getpid()} started, helper {helper.pid}", flush=True)
    start = time.monotonic()
    iterations = 0
    next_report = start
    while time.monotonic() - start < args.seconds:
        iterations += 1
        if time.monotonic() >= next_report:
            print(f"progress {time.monotonic() - start:.1f}s", flush=True)
            next_report += 0.5
        time.sleep(0.001)
    elapsed = time.monotonic() - start
    helper.terminate()
    helper.wait()
    if args.exit_code:
        print("worker failing on request", file=sys.stderr, flush=True)
        return args.exit_code
    with open(args.out, "w") as handle:
        json.dump({"elapsed_seconds": round(elapsed, 3), "iterations": iterations}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
