"""The stock-and-flow part against PySD on the same model (the XMILE export): one run and a 200-run sweep.

    python -m pip install pysd numba    # the `xmile` and `fast` extras
    python benchmarks/bench_pysd.py     # prints a Markdown table for docs/performance.md

Both sides integrate the historical scenario's stock-and-flow part, 2014-2035, with Euler at
dt = 1/12 year, driven by the same agent effects recorded in one coupled run; PySD runs the
file ``sim.xmile`` exports. The sweep varies ``population.move_sensitivity`` (which leaves the
fitted region constants unchanged, so both sides compute the same 200 trajectories; the script
checks that they agree). The project integrates the sweep as one batch with
``sim.stockflow.replay``, with numpy and compiled (numba, ``compiled=True``); its time includes
stacking the parameters and fitting the region constants of every run. PySD runs it as 200
``model.run`` calls. One-time preparation is not timed: PySD's translation (timed once and
printed) and the compiled path's first call (compilation or cache load, inputs stacked over
months). Timings are medians of ``--repeat`` interleaved rounds; the PySD sweep is timed once
per round over ``--pysd-runs`` runs and scaled to 200 if fewer. Wall-clock and CPU time are
both reported: on a shared machine CPU time is the steadier.
A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's sim, whatever is installed

import numpy as np  # noqa: E402

import sim  # noqa: E402
from sim.stockflow import STOCK_OUTPUTS, replay  # noqa: E402
from sim.xmile import project_stocks, record_effects, xmile_text  # noqa: E402

SWEEP = 200


def timed(work) -> tuple[tuple[float, float], object]:
    """(wall-clock seconds, CPU seconds of this process) and the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians are reported)")
    options.add_argument("--pysd-runs", type=int, default=SWEEP, help="PySD runs timed per sweep (scaled to 200)")
    options.add_argument("--end", type=int, default=2035, help="last year (a shorter horizon runs faster)")
    args = options.parse_args()
    import pysd

    warnings.simplefilter("ignore")  # PySD's pandas deprecation warnings
    load_before = os.getloadavg()
    scenario = replace(sim.load_scenario(ROOT / "scenarios" / "historical.toml"), method="euler", end=args.end)
    effects = record_effects(scenario)
    folder = Path(tempfile.mkdtemp(prefix="bench_pysd_"))
    path = folder / "historical.xmile"
    path.write_text(xmile_text(scenario, effects, scenario.seed), encoding="utf-8")
    translate, model = timed(lambda: pysd.read_xmile(str(path)))
    names = list(project_stocks(scenario, effects))
    regions = scenario.regions.codes
    sensitivities = np.linspace(0.2, 2.0, SWEEP)
    overrides = [{"population.move_sensitivity": float(v)} for v in sensitivities]

    def pysd_run(value: float):
        return model.run(params={"move_sensitivity": value}, return_columns=names)

    def pysd_sweep():
        return [pysd_run(float(v)) for v in sensitivities[: args.pysd_runs]]

    def ours(runs: list, compiled: bool):
        return replay(scenario, effects, runs, STOCK_OUTPUTS, compiled=compiled)

    ours([overrides[0]], True)  # compile (or load numba's cache) before timing
    keys = ("ours_1", "fast_1", "pysd_1", "ours_sweep", "fast_sweep", "pysd_sweep")
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in keys}
    for _ in range(args.repeat):
        seconds, ours_one = timed(lambda: ours([overrides[0]], False))
        times["ours_1"].append(seconds)
        seconds, fast_one = timed(lambda: ours([overrides[0]], True))
        times["fast_1"].append(seconds)
        seconds, theirs_one = timed(lambda: pysd_run(float(sensitivities[0])))
        times["pysd_1"].append(seconds)
        seconds, ours_sweep = timed(lambda: ours(overrides, False))
        times["ours_sweep"].append(seconds)
        seconds, fast_sweep = timed(lambda: ours(overrides, True))
        times["fast_sweep"].append(seconds)
        seconds, theirs_sweep = timed(pysd_sweep)
        times["pysd_sweep"].append(tuple(x * SWEEP / len(theirs_sweep) for x in seconds))
    # the same model: PySD's last sweep run and ours agree (Euler on both sides)
    last = len(theirs_sweep) - 1
    for r, code in enumerate(regions):
        theirs = theirs_sweep[last][f"registered_{code}"].to_numpy() + theirs_sweep[last][f"migrant_{code}"].to_numpy()
        for mine in (ours_sweep, fast_sweep):
            np.testing.assert_allclose(theirs, mine[1]["population"][:, last, r], rtol=1e-6, err_msg=code)
        one = theirs_one[f"registered_{code}"].to_numpy() + theirs_one[f"migrant_{code}"].to_numpy()
        for mine in (ours_one, fast_one):
            np.testing.assert_allclose(one, mine[1]["population"][:, 0, r], rtol=1e-6, err_msg=code)
    wall = {k: statistics.median(x[0] for x in v) for k, v in times.items()}
    cpu = {k: statistics.median(x[1] for x in v) for k, v in times.items()}
    months = len(effects.months)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"PySD {pysd.__version__}; historical {scenario.start}-{scenario.end}, {months} monthly Euler steps, "
        f"{len(names)} stocks; medians of {args.repeat} interleaved rounds; load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
    )
    scaled = "" if args.pysd_runs == SWEEP else f" ({args.pysd_runs} runs timed, scaled)"

    def row(what: str, key: str, unit: float, suffix: str, against: str | None = None) -> str:
        cells = [f"{m[key] * unit:.{1 if m[key] * unit < 10 else 0}f} {suffix}" for m in (wall, cpu)]
        ratios = [f"{m[against] / m[key]:.0f}x" if against else "" for m in (wall, cpu)]
        return f"| {what} | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} |"

    print(f"PySD translation of the file (once): {translate[0]:.1f} s wall.\n")
    print("| what | wall | CPU | PySD / this (wall) | PySD / this (CPU) |\n|---|---|---|---|---|")
    print(row("one run: PySD", "pysd_1", 1e3, "ms"))
    print(row("one run: sim, numpy (`replay`)", "ours_1", 1e3, "ms", "pysd_1"))
    print(row("one run: sim, compiled (`replay(compiled=True)`)", "fast_1", 1e3, "ms", "pysd_1"))
    print(row(f"{SWEEP}-run sweep: PySD{scaled}", "pysd_sweep", 1, "s"))
    print(row(f"{SWEEP}-run sweep: sim, numpy (one batch)", "ours_sweep", 1e3, "ms", "pysd_sweep"))
    print(row(f"{SWEEP}-run sweep: sim, compiled (one batch)", "fast_sweep", 1e3, "ms", "pysd_sweep"))
    print("\nall rounds (wall, CPU s):", {k: [(round(a, 3), round(b, 3)) for a, b in v] for k, v in times.items()})


if __name__ == "__main__":
    main()
