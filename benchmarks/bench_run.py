"""How long the model takes: a full historical run, batches of runs, and the population model alone.

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
from sim.engine import integrate
from sim.model import Model

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def population_only(scenario: sim.Scenario, runs: int):
    """The stock-and-flow part alone for ``runs`` copies of the start state, agents' inputs held fixed."""
    model = Model(scenario, [scenario.seed])

    def tile(value):
        return np.repeat(value, runs, axis=0) if np.ndim(value) >= 1 and np.shape(value)[0] == 1 else value

    params = model.population_params
    model.population_params = type(params)(**{k: tile(v) for k, v in params.__dict__.items()})
    model.follow = {k: np.repeat(v, runs) for k, v in model.follow.items()}
    inputs = {k: tile(v) for k, v in model._inputs(model.timeline.levers).items()}
    return model.rates(inputs), {k: tile(v) for k, v in model.state.items()}


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
    derivative, state = population_only(scenario, runs)
    seconds = best_of(args.repeat, lambda: integrate(derivative, state, 2014.0, 1 / 12, months, "rk4", ["population"]))
    rows.append(
        (f"population model alone (RK4), {runs} parameter sets", f"{seconds:.2f} s", f"{seconds / runs * 1e3:.2f} ms")
    )

    print(
        f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}; {months} monthly steps.\n"
    )
    print("| what | time | per run |\n|---|---|---|")
    for what, value, per_run in rows:
        print(f"| {what} | {value} | {per_run} |")


if __name__ == "__main__":
    main()
