"""Benchmark: `make synth` on the example config — warm wall time and peak RSS of the tree.

Runs ``python main.py`` (what ``make synth`` runs) several times in a fresh output
directory, samples the resident memory of the whole process tree (Python + the jsii Node.js
child) from /proc every 10 ms, and prints the figures with the targets:
wall time <= 5 s warm, peak RSS <= 1.2 GB.

    python bench/synth_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 5.0
TARGET_RSS_GB = 1.2


def _children(pid: int) -> list[int]:
    out = []
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        for task in tasks:
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_bytes(pid)
        stack.extend(_children(pid))
    return total


def run_once(env: dict[str, str]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**env, "CDKTF_OUTDIR": str(Path(tmp) / "cdktf.out")}
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(REPO / "main.py")], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate(timeout=300)
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"main.py failed:\n{err.decode()[-3000:]}")
        return elapsed, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--eager", action="store_true",
                        help="measure the eager provider import, for comparison")
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("SD_EAGER_PROVIDER_IMPORT", None)
    if args.eager:
        env["SD_EAGER_PROVIDER_IMPORT"] = "1"
    run_once(env)  # warm the page cache and __pycache__
    times, peaks = [], []
    for _ in range(args.runs):
        elapsed, peak = run_once(env)
        times.append(elapsed)
        peaks.append(peak)
    median = statistics.median(times)
    peak_gb = max(peaks) / 1e9
    mode = "eager provider import" if args.eager else "lazy provider import"
    print(f"synth benchmark ({mode}, {args.runs} warm runs of main.py on the example config)")
    print(f"  wall time   median {median:.2f} s   min {min(times):.2f} s   max {max(times):.2f} s"
          f"   target <= {TARGET_SECONDS:.1f} s   {'OK' if median <= TARGET_SECONDS else 'MISS'}")
    print(f"  peak RSS    {peak_gb:.3f} GB (Python + Node.js tree)"
          f"   target <= {TARGET_RSS_GB:.1f} GB   {'OK' if peak_gb <= TARGET_RSS_GB else 'MISS'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
