"""``calibrate``: fit the free parameters to the targets and write the fit (API twin of the command)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim.calibration.fit import Fit, fit_stock_flow, record_effects, replay_dataset
from sim.calibration.parameters import FREE_PARAMETERS, load_free_parameters
from sim.calibration.report import fit_table, fitted_document, write_ensemble
from sim.calibration.targets import TARGETS, load_targets
from sim.runfolder import atomic_write
from sim.scenario import load_scenario

BUDGETS = {  # design points, walkers, steps, burn-in, thinning
    "small": (64, 16, 20, 10, 2),
    "full": (512, 32, 300, 150, 10),
}


def calibrate(
    scenario_path: str | Path = "scenarios/historical.toml",
    out: str | Path = "calibration",
    seed: int = 0,
    budget: str = "full",
    progress: Callable[[str, int, int], None] | None = None,
) -> Fit:
    """Fit the stock-and-flow block, then write ``fitted.toml``, ``ensemble.csv`` and ``fit.md`` into ``out``."""
    started = time.perf_counter()
    scenario = load_scenario(scenario_path)
    targets = load_targets(TARGETS)
    free = load_free_parameters(FREE_PARAMETERS, block="stock_flow")
    points, walkers, steps, burn, thin = BUDGETS[budget]
    fit = fit_stock_flow(scenario, targets, free, seed, points, walkers, steps, burn, thin, progress)

    window = replace(scenario, end=min(scenario.end, 2021))
    effects = record_effects(window, window.seed)
    chosen = np.unique(np.linspace(0, len(fit.samples) - 1, min(len(fit.samples), 64)).astype(int))
    ds = replay_dataset(window, effects, [fit.overrides()[i] for i in [0, *chosen]])
    used = {name: targets[name] for name in fit.targets}
    best = {name: float(t.model_value(ds)[0]) for name, t in used.items()}
    ensemble = {name: np.asarray(t.model_value(ds)[1:]) for name, t in used.items()}

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    command = f"python -m sim calibrate {scenario_path} --seed {seed} --budget {budget}"
    atomic_write(out / "fitted.toml", fitted_document(fit, command))  # each file appears whole or not at all
    atomic_write(out / "ensemble.csv", lambda path: write_ensemble(fit, path))
    minutes = (time.perf_counter() - started) / 60
    atomic_write(
        out / "fit.md",
        "# Calibration fit (stock-and-flow block)\n\n"
        f"Made by `{command}` in {minutes:.1f} minutes ({fit.evaluations} parameter sets). The agents' effects\n"
        "are recorded from one full run of the scenario and held fixed while the stock-and-flow parameters\n"
        "vary (docs/calibration.md). Misfits are in sigmas of each target's tolerance.\n\n"
        + fit_table(used, best, ensemble)
        + "\n## Parameters\n\n| parameter | prior | best | ensemble 5-95 % |\n|---|---|---|---|\n"
        + "".join(
            f"| `{p.address}` | {p.prior} on [{p.low:g}, {p.high:g}] | {fit.samples[0, i]:.4g} | "
            f"{np.percentile(fit.samples[:, i], 5):.4g} to {np.percentile(fit.samples[:, i], 95):.4g} |\n"
            for i, p in enumerate(fit.parameters)
        ),
    )
    return fit
