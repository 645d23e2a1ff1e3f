"""``calibrate``: fit the free parameters to the targets and write the fit (API twin of the command)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim.calibration.figures import write_figures
from sim.calibration.fit import Budget, Checkpoint, Fit, fit_blocks
from sim.calibration.parameters import FREE_PARAMETERS, FreeParameter, load_free_parameters
from sim.calibration.report import fit_table, fitted_document, write_ensemble
from sim.calibration.targets import TARGETS, Target, load_targets
from sim.errors import InputError
from sim.runfolder import atomic_write
from sim.scenario import Scenario, load_scenario

BUDGETS = {  # stock-and-flow block and agents' block: design points, walkers, steps, burn-in, thinning
    # (emcee's moves need at least twice as many walkers as a block has parameters: 14 and 12 here);
    # polish: least-squares iterations and difference step (share of the bounds) per block;
    # ensemble: the joint ensemble's walkers per free parameter, steps and difference step
    "small": Budget(
        stock_flow=(32, 28, 6, 3, 1),
        full=(24, 24, 1, 0, 1),
        cycles=1,
        polish=((5, 0.002), (2, 0.03)),
        ensemble=(2, 2, 0.03),
    ),
    "full": Budget(
        stock_flow=(512, 32, 300, 150, 10),
        full=(72, 24, 20, 10, 1),
        cycles=2,
        polish=((60, 0.002), (8, 0.03)),
        ensemble=(2, 16, 0.03),
    ),
}
CHECKPOINT = ".calibration-checkpoint.npz"
"""The finished stages of an unfinished calibration, in its output folder."""
REPORT_MEMBERS = {"small": 4, "full": 32}
"""Ensemble members run in full for fit.md's 5-95 % column."""


def calibrate(
    scenario_path: str | Path = "scenarios/historical.toml",
    out: str | Path = "calibration",
    seed: int = 0,
    budget: str = "full",
    progress: Callable[[str, int, int], None] | None = None,
    backend: str = "processes",
    workers: int = 2,
    until: float | None = None,
    free_parameters: str | Path | None = None,
    targets_file: str | Path | None = None,
) -> Fit:
    """Fit both blocks by turns, then write ``fitted.toml``, ``ensemble.csv`` and ``fit.md`` into ``out``.

    ``until`` (a decimal year) fits only the targets observed by then; fit.md still compares
    every target, so the others are out-of-sample predictions. Finished stages are kept in
    ``out/.calibration-checkpoint.npz`` until the fit is written: run the same command again
    after an interruption and it resumes after the last finished stage.
    """
    import emcee  # noqa: F401  (the calibration extra: missing, the command says so before any work)

    started = time.perf_counter()
    scenario = load_scenario(scenario_path)
    targets = load_targets(Path(targets_file or TARGETS))
    used = {k: t for k, t in targets.items() if until is None or (t.time != "max" and t.time <= until + 1e-6)}
    free_path = Path(free_parameters or FREE_PARAMETERS)
    free = load_free_parameters(free_path)
    check_against_space(free, scenario, free_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT
    fingerprint = repr((scenario.config_hash, sorted(used.items()), free, BUDGETS[budget], seed))
    checkpoint = Checkpoint(checkpoint_path, hashlib.sha256(fingerprint.encode()).hexdigest())
    if progress and checkpoint.stages:
        progress(f"resuming: {len(checkpoint.stages)} finished stage(s) in {checkpoint_path}", 1, 1)
    fit = fit_blocks(scenario, used, free, BUDGETS[budget], seed, backend, workers, progress, checkpoint)
    best, ensemble = full_runs(scenario, targets, fit, REPORT_MEMBERS[budget], backend, workers)

    command = f"python -m sim calibrate {scenario_path} --seed {seed} --budget {budget}"
    command += f" --until {until:g}" if until is not None else ""
    kinds = {name: policy["kind"] for name, policy in scenario.document.get("policies", {}).items()}
    atomic_write(out / "fitted.toml", fitted_document(fit, command, kinds))  # each file appears whole or not at all
    atomic_write(out / "ensemble.csv", lambda path: write_ensemble(fit, path))
    minutes = (time.perf_counter() - started) / 60
    atomic_write(
        out / "fit.md",
        "# Calibration fit\n\n"
        f"Made by `{command}` in {minutes:.1f} minutes ({fit.evaluations} parameter sets: stock-and-flow\n"
        "sets replayed on recorded agent effects, agents' sets in full runs; docs/calibration.md). The\n"
        + (
            f"ensemble is drawn from the joint posterior by full runs (acceptance rate {fit.acceptance:.2f}). The\n"
            if fit.acceptance is not None
            else ""
        )
        + f"columns are full runs of 2014-2020: the best fit, and {len(next(iter(ensemble.values())))} members "
        "of the ensemble for the\n5-95 % range. Misfits are in sigmas of each target's tolerance.\n\n"
        + (
            f"Fitted to the targets observed by {until:g} only; the rows marked out-of-sample are predictions.\n\n"
            if until is not None
            else ""
        )
        + "Figures: `fit_series.png` (each yearly series against its data, every other target's misfit),\n"
        "`fit_posteriors.png` (each parameter's ensemble over its bounds), `fit_correlations.png` (the\n"
        "ensemble's pairwise correlations: the trade-offs the targets cannot resolve).\n\n"
        + fit_table(targets, best, ensemble, set(used))
        + "\n## Parameters\n\n| parameter | block | prior | best | ensemble 5-95 % |\n|---|---|---|---|---|\n"
        + "".join(
            f"| `{p.address}`{_tied(p)} | {p.block} | {_prior(p)} | {fit.samples[0, i]:.4g} | "
            f"{np.percentile(fit.samples[:, i], 5):.4g} to {np.percentile(fit.samples[:, i], 95):.4g} |\n"
            for i, p in enumerate(fit.parameters)
        ),
    )
    write_figures(fit, targets, best, ensemble, out)
    checkpoint_path.unlink(missing_ok=True)  # the fit is written: nothing left to resume
    return fit


def check_against_space(free: list[FreeParameter], scenario: Scenario, path: Path) -> None:
    """Every free parameter an address of the scenario's parameter space, its bounds within the address's range."""
    from sim.space import addresses, unknown_address

    space = addresses(scenario)
    spans: dict[str, tuple[float, float]] = {}  # the values runs may take: a step's added to its base's
    for p in free:
        base_low, base_high = spans[p.added_to] if p.added_to else (0.0, 0.0)
        least, most = spans[p.address] = (base_low + p.low, base_high + p.high)
        for address in p.addresses:
            if address not in space:
                raise InputError(path, p.address, unknown_address(address, space, scenario))
            low, high = space[address].low, space[address].high
            if (low is not None and least < low) or (high is not None and most > high):
                raise InputError(
                    path,
                    f"{p.address}.bounds",
                    f"[{p.low:g}, {p.high:g}]{_added(p)} must lie within {address}'s range {low:g} to {high:g}",
                )


def _tied(p: FreeParameter) -> str:
    return f" (also {', '.join(a.rsplit('.', 1)[-1] for a in p.tied)})" if p.tied else _added(p)


def _added(p: FreeParameter) -> str:
    return f" (added to `{p.added_to}`)" if p.added_to else ""


def _prior(p: FreeParameter) -> str:
    shape = "uniform" if p.prior == "uniform" else f"normal {p.mean:g} ± {p.sd:g}"
    return f"{shape} on [{p.low:g}, {p.high:g}]"


def full_runs(
    scenario: Scenario, targets: dict[str, Target], fit: Fit, members: int, backend: str, workers: int
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Every target from full runs of 2014-2020: at the best fit, and at ``members`` sets spread over the ensemble."""
    from sim.experiments import evaluate

    window = replace(scenario, end=min(scenario.end, 2021))
    chosen = np.unique(np.linspace(1, len(fit.samples) - 1, min(len(fit.samples) - 1, members)).astype(int))
    overrides = [fit.overrides()[i] for i in [0, *chosen]]
    outputs = sorted(set().union(*(t.outputs for t in targets.values())))
    chunk = max(1, -(-len(overrides) // workers))
    ds, _ = evaluate(
        window, overrides, [window.seed] * len(overrides), outputs, backend=backend, workers=workers, chunk=chunk
    )
    ds = ds.transpose("time", "run", ...)
    values = {name: np.asarray(t.model_value(ds), float) for name, t in targets.items()}
    return {k: float(v[0]) for k, v in values.items()}, {k: v[1:] if len(v) > 1 else v for k, v in values.items()}
