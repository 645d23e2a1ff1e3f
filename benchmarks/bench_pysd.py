"""The stock-and-flow part against PySD on the same model (the XMILE export): one run and a 200-run sweep.

    python -m pip install pysd          # the `xmile` extra
    python benchmarks/bench_pysd.py     # prints a Markdown table for docs/performance.md

Both sides integrate the historical scenario's stock-and-flow part, 2014-2035, with Euler at
dt = 1/12 year, driven by the same agent effects recorded in one coupled run; PySD runs the
file ``sim.xmile`` exports. The sweep varies ``population.move_sensitivity`` (which leaves the
fitted region constants unchanged, so both sides compute the same 200 trajectories; the script
checks that they agree). The project integrates the sweep as one batch with
``sim.stockflow.replay`` (its time includes stacking the parameters and fitting the region
constants of every run); PySD runs it as 200 ``model.run`` calls (translation excluded, timed
once). Timings are medians of ``--repeat`` interleaved rounds (project, PySD, project sweep);
the PySD sweep is timed once per round over ``--pysd-runs`` runs and scaled to 200 if fewer.
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
from sim.stockflow import replay  # noqa: E402
from sim.xmile import project_stocks, record_effects, xmile_text  # noqa: E402

STOCK_OUTPUTS = (
    "population",
    "migrant_population",
    "housing_capacity",
    "service_capacity",
    "births_cum",
    "deaths_cum",
    "in_from_outside_cum",
    "out_to_outside_cum",
)
SWEEP = 200


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


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

    times: dict[str, list[float]] = {"ours_1": [], "pysd_1": [], "ours_sweep": [], "pysd_sweep": []}
    for _ in range(args.repeat):
        seconds, ours_one = timed(lambda: replay(scenario, effects, [overrides[0]], STOCK_OUTPUTS))
        times["ours_1"].append(seconds)
        seconds, theirs_one = timed(lambda: pysd_run(float(sensitivities[0])))
        times["pysd_1"].append(seconds)
        seconds, ours_sweep = timed(lambda: replay(scenario, effects, overrides, STOCK_OUTPUTS))
        times["ours_sweep"].append(seconds)
        seconds, theirs_sweep = timed(pysd_sweep)
        times["pysd_sweep"].append(seconds * SWEEP / len(theirs_sweep))
    # the same model: PySD's last sweep run and ours agree (Euler on both sides)
    last = len(theirs_sweep) - 1
    for r, code in enumerate(regions):
        ours = ours_sweep[1]["population"][:, last, r]
        theirs = theirs_sweep[last][f"registered_{code}"].to_numpy() + theirs_sweep[last][f"migrant_{code}"].to_numpy()
        np.testing.assert_allclose(theirs, ours, rtol=1e-6, err_msg=code)
    np.testing.assert_allclose(
        theirs_one[f"registered_{regions[0]}"].to_numpy() + theirs_one[f"migrant_{regions[0]}"].to_numpy(),
        ours_one[1]["population"][:, 0, 0],
        rtol=1e-6,
    )
    median = {k: statistics.median(v) for k, v in times.items()}
    months = len(effects.months)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"PySD {pysd.__version__}; historical {scenario.start}-{scenario.end}, {months} monthly Euler steps, "
        f"{len(names)} stocks; medians of {args.repeat} interleaved rounds; load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
    )
    scaled = "" if args.pysd_runs == SWEEP else f" ({args.pysd_runs} runs timed, scaled)"
    rows = [
        ("PySD: translate the XMILE file (once)", f"{translate:.1f} s", ""),
        ("one run: sim (replay)", f"{median['ours_1'] * 1e3:.0f} ms", ""),
        ("one run: PySD", f"{median['pysd_1'] * 1e3:.0f} ms", f"{median['pysd_1'] / median['ours_1']:.0f}x"),
        (f"{SWEEP}-run sweep: sim (one batch)", f"{median['ours_sweep']:.2f} s", ""),
        (
            f"{SWEEP}-run sweep: PySD{scaled}",
            f"{median['pysd_sweep']:.0f} s",
            f"{median['pysd_sweep'] / median['ours_sweep']:.0f}x",
        ),
    ]
    print("| what | time | PySD / sim |\n|---|---|---|")
    for what, value, ratio in rows:
        print(f"| {what} | {value} | {ratio} |")
    print("\nall rounds (s):", {k: [round(x, 3) for x in v] for k, v in times.items()})


if __name__ == "__main__":
    main()
