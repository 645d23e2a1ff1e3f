"""Calibration time: wall clock and CPU of ``calibrate`` at a budget, by stage.

    python -m benchmarks.bench_calibrate                # the full budget (the issue's "within 30 minutes")
    python -m benchmarks.bench_calibrate --budget small

A benchmark, not a test: the wall clock depends on the machine's other load, so the CPU time
of this process and its worker processes is printed beside it, with the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from sim.calibration.run import calibrate

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="full", choices=("small", "full"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    stages: dict[str, float] = {}
    started = time.perf_counter()
    last = [started]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        key = stage.rsplit(" ", 1)[0] if stage.endswith(("search", "ensemble")) else stage
        stages[key] = stages.get(key, 0.0) + now - last[0]
        last[0] = now

    with tempfile.TemporaryDirectory() as out:
        fit = calibrate(ROOT / "scenarios" / "historical.toml", out, 0, args.budget, progress, workers=args.workers)
    wall = time.perf_counter() - started
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print("| budget | parameter sets | wall | CPU (all processes) |\n|---|---|---|---|")
    print(f"| {args.budget} | {fit.evaluations} | {wall / 60:.1f} min | {cpu / 60:.1f} min |")
    for stage, seconds in stages.items():
        print(f"  {stage}: {seconds / 60:.1f} min")


if __name__ == "__main__":
    main()
