"""Benchmark: what importing the library costs — the one-line import of the five constructs
from ``constructs_lib`` against ``import constructs_lib.ingress`` (one construct module).

Each measurement runs in a fresh interpreter: the import's own time (``perf_counter``
around the statement), then, with the process still alive, the resident memory of its
whole tree (Python and the jsii Node.js child) read from /proc. Prints the median and
the range of each, and the ratio of the medians.

    python -m bench.import_bench [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.synth_bench import tree_rss

REPO = Path(__file__).resolve().parent.parent
STATEMENTS = {
    "import constructs_lib.ingress": "import constructs_lib.ingress",
    "from constructs_lib import <five constructs>": (
        "from constructs_lib import ServerlessIngress, ServerlessIngressProps, "
        "GpuEksCluster, KarpenterGpuPool, KedaSqsScaler, SdRuntime"),
}
_CHILD = (
    "import json, sys, time\n"
    "start = time.perf_counter()\n"
    "{statement}\n"
    "seconds = time.perf_counter() - start\n"
    "print(json.dumps({{'seconds': seconds}}), flush=True)\n"
    "sys.stdin.read()\n"  # stay alive until the parent has read the memory
)


def measure(statement: str) -> tuple[float, int]:
    """(seconds the import took, bytes resident in the process tree after it)."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(statement=statement)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the child failed before measuring: {statement}")
        seconds = json.loads(line)["seconds"]
        rss = tree_rss(proc.pid)
        proc.stdin.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return seconds, rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    measure(STATEMENTS["import constructs_lib.ingress"])  # warm the bytecode caches
    medians = {}
    print(f"{'statement':48} {'time s (median, min-max)':>28} {'tree RSS MB (median)':>22}")
    for label, statement in STATEMENTS.items():
        runs = [measure(statement) for _ in range(args.runs)]
        times = [t for t, _ in runs]
        rss = [r / 1e6 for _, r in runs]
        medians[label] = (statistics.median(times), statistics.median(rss))
        print(f"{label:48} {medians[label][0]:>10.2f} ({min(times):.2f}-{max(times):.2f})"
              f"{'':>6} {medians[label][1]:>16.0f}")
    (base_t, base_m), (one_t, one_m) = medians.values()
    print(f"one-line import / ingress import: time x{one_t / base_t:.2f}, "
          f"memory x{one_m / base_m:.2f} ({args.runs} fresh interpreters each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
