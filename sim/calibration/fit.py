"""Fitting the stock-and-flow block: a space-filling search, then an MCMC ensemble (emcee).

The agents' effects (jobs, institutions, levers) are recorded once from a full run of the
scenario; every candidate parameter set of the stock-and-flow block is then integrated on
them in batches (``sim.stockflow.replay``), so thousands of sets cost minutes. The
objective is a Gaussian log-likelihood of the targets' misfits in sigmas (their
tolerances) plus the log priors. emcee's affine-invariant ensemble sampler (vectorised:
one batch per step) draws the ensemble; its best point is the fit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import qmc

from sim.calibration.parameters import FreeParameter
from sim.calibration.targets import Target
from sim.errors import InputError
from sim.model import RECORDED, Model
from sim.scenario import Scenario
from sim.stockflow import STOCK_FLOW_OUTPUTS, AgentEffects, replay


@dataclass(frozen=True)
class Fit:
    """A calibrated ensemble: parameter sets (sample, parameter) with their log posterior; the best first."""

    parameters: tuple[FreeParameter, ...]
    samples: np.ndarray
    log_posterior: np.ndarray
    targets: tuple[str, ...]
    seed: int
    evaluations: int

    @property
    def best(self) -> dict[str, float]:
        return {p.address: float(v) for p, v in zip(self.parameters, self.samples[0])}

    def overrides(self) -> list[dict[str, float]]:
        return [{p.address: float(v) for p, v in zip(self.parameters, row)} for row in self.samples]


def record_effects(scenario: Scenario, seed: int) -> AgentEffects:
    """The agents' and the timeline's effects on the stocks in one full run."""
    model = Model(scenario, [seed], record_effects=True)
    model.run()
    return model.effects()


def replay_dataset(scenario: Scenario, effects: AgentEffects, overrides: Sequence[dict]):
    """Replay a batch of stock-and-flow parameter sets as a labeled dataset (time x run x ...)."""
    import xarray as xr

    times, values = replay(scenario, effects, overrides)
    codes = list(scenario.regions.codes)
    coords = {"time": times, "run": np.arange(len(overrides)), "region": codes, "destination": codes}
    return xr.Dataset(
        {name: (("time", "run", *RECORDED[name][1]), values[name]) for name in STOCK_FLOW_OUTPUTS}, coords=coords
    )


class StockFlowObjective:
    """Log posterior of stock-and-flow parameter sets, evaluated a batch at a time."""

    def __init__(
        self, scenario: Scenario, effects: AgentEffects, targets: dict[str, Target], free: Sequence[FreeParameter]
    ):
        self.scenario, self.effects, self.free = scenario, effects, tuple(free)
        self.targets = {k: t for k, t in targets.items() if t.output in STOCK_FLOW_OUTPUTS}
        self.evaluations = 0

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        return sum(p.log_prior(theta[:, i]) for i, p in enumerate(self.free))

    def misfits(self, theta: np.ndarray) -> np.ndarray:
        """Misfit in sigmas, (set, target); NaN rows for sets the model refuses (a 2014 trend it cannot meet)."""
        overrides = [{p.address: float(v) for p, v in zip(self.free, row)} for row in theta]
        self.evaluations += len(overrides)
        try:
            ds = replay_dataset(self.scenario, self.effects, overrides)
        except InputError:
            if len(overrides) == 1:
                return np.full((1, len(self.targets)), np.nan)
            return np.concatenate([self.misfits(row[None]) for row in theta])
        return np.stack([t.misfit(t.model_value(ds)) for t in self.targets.values()], axis=1)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(theta)
        prior = self.log_prior(theta)
        result = np.full(len(theta), -np.inf)
        ok = np.isfinite(prior)
        if ok.any():
            z = self.misfits(theta[ok])
            likelihood = -0.5 * (z**2).sum(axis=1)
            result[ok] = np.where(np.isfinite(likelihood), prior[ok] + likelihood, -np.inf)
        return result


def fit_stock_flow(
    scenario: Scenario,
    targets: dict[str, Target],
    free: Sequence[FreeParameter],
    seed: int = 0,
    design_points: int = 256,
    walkers: int = 32,
    steps: int = 100,
    burn: int = 50,
    thin: int = 5,
    progress: Callable[[str, int, int], None] | None = None,
) -> Fit:
    """Fit the stock-and-flow block to the targets: Latin-hypercube search, then an emcee ensemble."""
    import emcee

    scenario = replace(scenario, end=min(scenario.end, 2021))
    effects = record_effects(scenario, scenario.seed)
    objective = StockFlowObjective(scenario, effects, targets, free)
    k = len(objective.free)
    design = qmc.LatinHypercube(d=k, seed=seed).random(design_points)
    points = np.column_stack([p.from_unit(design[:, i]) for i, p in enumerate(objective.free)])
    scores = np.concatenate(
        [objective(points[i : i + walkers]) for i in range(0, design_points, walkers)]  # batches of one size
    )
    if progress:
        progress("search", design_points, design_points)
    order = np.argsort(-scores)
    if not np.isfinite(scores[order[0]]):
        raise InputError("calibration/free_parameters.toml", "bounds", "no parameter set in the bounds can be run")
    start = points[order[:walkers]]  # the best points of the search start the walkers
    sampler = emcee.EnsembleSampler(walkers, k, objective, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()  # emcee's moves draw from this stream
    for step, _ in enumerate(sampler.sample(start, iterations=steps), 1):
        if progress:
            progress("ensemble", step, steps)
    chain = sampler.get_chain(discard=burn, thin=thin, flat=True)
    logp = sampler.get_log_prob(discard=burn, thin=thin, flat=True)
    best = np.argmax(logp)
    if scores[order[0]] > logp[best]:  # the search found better than the sampler visited
        chain, logp = np.vstack([points[order[0]], chain]), np.concatenate([[scores[order[0]]], logp])
        best = 0
    ranked = np.concatenate([[best], np.delete(np.arange(len(logp)), best)])
    return Fit(
        tuple(objective.free),
        chain[ranked],
        logp[ranked],
        tuple(objective.targets),
        seed,
        objective.evaluations,
    )
