"""The compiled month against the numpy month in one long-lived process (the explore server's case).

    python benchmarks/bench_compiled.py [--scenario scenarios/plan2021.toml] [--repeat 4]

One run of the scenario, CPU time (``time.process_time``) of ``Model.run`` after a warm-up of each
path, alternating: numpy (``compiled=False``) and the stocks' compiled month (``compiled=True``: the
stocks equal to rounding; the firms' month is numpy's on both, design record 57). Needs numba (the
``fast`` extra). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
import sim.stockflow_kernel  # noqa: E402, F401 - numba loaded, as in the explore server
from sim.model import Model  # noqa: E402

MODES = {"numpy": False, "stocks compiled": True}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--scenario", default=str(ROOT / "scenarios" / "plan2021.toml"))
    options.add_argument("--repeat", type=int, default=4)
    args = options.parse_args()
    scenario = sim.load_scenario(args.scenario)
    for compiled in MODES.values():
        Model(scenario, [1], compiled=compiled).run()  # numba's kernels compiled or read from the cache
    load = os.getloadavg()[0]
    cpu: dict[str, list[float]] = {name: [] for name in MODES}
    for _ in range(args.repeat):
        for name, compiled in MODES.items():
            started = time.process_time()
            Model(scenario, [scenario.seed], compiled=compiled).run()
            cpu[name].append(time.process_time() - started)
    print(f"{scenario.name}, one run, medians of {args.repeat}; load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    for name, times in cpu.items():
        print(f"| {name} | {statistics.median(times):.3f} s CPU |")


if __name__ == "__main__":
    main()
