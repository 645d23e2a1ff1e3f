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


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    args = options.parse_args()
    scenario = sim.load_scenario(ROOT / "scenarios" / "historical.toml")
    months = (scenario.end - scenario.start) * 12
    rows = []

    load = best_of(args.repeat, lambda: sim.load_scenario(ROOT / "scenarios" / "historical.toml"))
    rows.append(("load and validate historical.toml", f"{load * 1e3:.1f} ms", ""))
    model = Model(scenario, [scenario.seed])
    rows.append(("agents at the start (one run)", f"{int(model.firms.alive.sum()):,} firms", "+ institutions"))

    for batch in args.batches:
        seconds = best_of(args.repeat if batch < 50 else 1, lambda: sim.run_batch(scenario, list(range(batch))))
        rows.append(
            (f"historical 2014-2035 monthly, batch of {batch}", f"{seconds:.2f} s", f"{seconds / batch:.2f} s per run")
        )

    # the stock-and-flow population model alone, many parameter sets as one array
    runs = 1000
    derivative_model = Model(scenario, [0])
    inputs = derivative_model._inputs(derivative_model.timeline.levers)
    state = {k: np.repeat(v, runs, axis=0) for k, v in derivative_model.state.items()}
    params = derivative_model.population_params
    params = type(params)(
        **{k: np.repeat(v, runs, axis=0) if np.ndim(v) and len(v) == 1 else v for k, v in params.__dict__.items()}
    )
    derivative_model.population_params = params
    derivative_model.runs = runs
    batched = {
        k: np.repeat(v, runs, axis=0) if np.ndim(v) >= 2 and k != "travel_time" else v for k, v in inputs.items()
    }
    derivative_model.follow = {k: np.repeat(v, runs) for k, v in derivative_model.follow.items()}
    f = derivative_model.rates(batched)
    seconds = best_of(args.repeat, lambda: integrate(f, state, 2014.0, 1 / 12, months, "rk4", record=["population"]))
    rows.append(
        (
            f"population model alone (RK4), {runs} parameter sets",
            f"{seconds:.2f} s",
            f"{seconds / runs * 1e3:.2f} ms per run",
        )
    )

    print(
        f"Machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}; {months} monthly steps.\n"
    )
    print("| what | time | per run |\n|---|---|---|")
    for what, value, note in rows:
        print(f"| {what} | {value} | {note} |")


if __name__ == "__main__":
    main()
