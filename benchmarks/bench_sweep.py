"""Sweep throughput: runs per second and peak memory, 1 vs 2 worker processes, full model and stock-and-flow mode.

    python -m benchmarks.bench_sweep                  # prints a Markdown table for docs/performance.md
    python -m benchmarks.bench_sweep --full-runs 1000 --sd-runs 10000   # the issue's sizes (long)

A benchmark, not a test: numbers depend on the machine and its other load. Each sweep
writes a real sweep folder (chunk files, journal, joined results) in a temporary
directory; the full-model sweeps are Latin hypercubes over population parameters on the
historical scenario to 2035, the stock-and-flow sweep the same with the agents replayed.
Peak memory is the largest resident set of this process and of any worker process.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

from sim.experiments import sweep

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """
scenario = "{scenario}"
[uncertainties."population.jobs_weight"]
low = 1.0
high = 3.0
[uncertainties."population.housing_weight"]
low = 2.0
high = 6.0
[uncertainties."population.move_sensitivity"]
low = 0.4
high = 1.2
[uncertainties."population.out_migration_rate.bj_central"]
low = 0.03
high = 0.07
[design]
method = "lhs"
samples = {samples}
seed = 1
[outputs]
variables = ["population"]
times = "yearly"
[outputs.summaries.beijing_2035]
variable = "population"
regions = ["beijing"]
time = 2035
[execution]
mode = "{mode}"
chunk = {chunk}
"""


def peak_mb() -> tuple[float, float]:
    """Largest resident set so far of this process and of its (waited-for) children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def measure(folder: Path, mode: str, runs: int, chunk: int, backend: str, workers: int) -> tuple[float, float]:
    path = folder / f"{mode}-{runs}-{backend}-{workers}.toml"
    path.write_text(SWEEP.format(scenario=ROOT / "scenarios" / "historical.toml", samples=runs, mode=mode, chunk=chunk))
    started = time.perf_counter()
    result = sweep(path, folder / path.stem, backend=backend, workers=workers, analysis=False)
    elapsed = time.perf_counter() - started
    assert not result.failures, result.failures[:3]
    return elapsed, runs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full-runs", type=int, default=12, help="full-model runs per sweep")
    parser.add_argument("--sd-runs", type=int, default=2000, help="stock-and-flow runs per sweep")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for mode, runs, chunk in (("full", args.full_runs, 2), ("stock-flow", args.sd_runs, 500)):
            for backend, workers in (("serial", 1), ("processes", 1), ("processes", 2)):
                if mode == "stock-flow" and backend == "processes" and workers == 1:
                    continue
                elapsed, rate = measure(folder, mode, runs, chunk, backend, workers)
                own, children = peak_mb()
                rows.append((mode, runs, chunk, f"{backend} x{workers}", elapsed, rate, own, children))
                print(f"{rows[-1]}", flush=True)
    print(f"\n{platform.machine()}, Python {platform.python_version()}; historical 2014-2035, LHS over 4 parameters\n")
    print("| mode | runs | chunk | backend | wall time | runs/s | peak RSS main / workers |")
    print("|---|---|---|---|---|---|---|")
    for mode, runs, chunk, backend, elapsed, rate, own, children in rows:
        print(
            f"| {mode} | {runs} | {chunk} | {backend} | {elapsed:.1f} s | {rate:.2f} | {own:.0f} / {children:.0f} MB |"
        )


if __name__ == "__main__":
    main()
