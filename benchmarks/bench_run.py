"""How long the model takes: a full historical run, batches of runs, and the stock-and-flow part alone.

    python benchmarks/bench_run.py            # prints a Markdown table for docs/performance.md

A benchmark, not a test: numbers depend on the machine. Each figure is the best of
``--repeat`` timings (the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

import sim
from sim.calibration.fit import record_effects
from sim.model import Model
from sim.stockflow import replay

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    args = options.parse_args()
    path = ROOT / "scenarios" / "historical.toml"
    scenario = sim.load_scenario(path)
    months = (scenario.end - scenario.start) * 12
    rows = [
        (
            "load and validate historical.toml",
            f"{best_of(args.repeat, lambda: sim.load_scenario(path)) * 1e3:.1f} ms",
            "",
        )
    ]
    model = Model(scenario, [scenario.seed])
    agents = f"{int(model.firms.alive.sum()):,} firms, {len(model.institutions.kind)} institutions"
    rows.append(("agents at the start (one run)", agents, ""))

    for batch in args.batches:
        seeds = list(range(batch))
        seconds = best_of(args.repeat if batch < 50 else 1, lambda seeds=seeds: sim.run_batch(scenario, seeds))
        rows.append((f"historical 2014-2035 monthly, batch of {batch}", f"{seconds:.2f} s", f"{seconds / batch:.2f} s"))

    runs = 1000
    effects = record_effects(scenario, scenario.seed)
    sets = [{"population.jobs_weight": w} for w in np.linspace(0.0, 5.0, runs)]
    seconds = best_of(args.repeat, lambda: replay(scenario, effects, sets, outputs=["population"]))
    rows.append(
        (
            f"stock-and-flow part alone (RK4, replayed agent effects), {runs} parameter sets",
            f"{seconds:.2f} s",
            f"{seconds / runs * 1e3:.2f} ms",
        )
    )

    print(
        f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}; {months} monthly steps.\n"
    )
    print("| what | time | per run |\n|---|---|---|")
    for what, value, per_run in rows:
        print(f"| {what} | {value} | {per_run} |")


if __name__ == "__main__":
    main()
