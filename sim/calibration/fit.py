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
from pathlib import Path

import numpy as np
from scipy.stats import qmc

from sim.calibration.parameters import FreeParameter, parameter_values
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
    acceptance: float | None = None  # the joint ensemble's sampler's acceptance rate (``joint_ensemble``)

    @property
    def best(self) -> dict[str, float]:
        return parameter_values(self.parameters, self.samples[0])

    def overrides(self) -> list[dict[str, float]]:
        return [parameter_values(self.parameters, row) for row in self.samples]


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


class Objective:
    """Log posterior of parameter sets of a block, a batch at a time: log priors plus a Gaussian
    log-likelihood of the targets' misfits in sigmas; ``misfits`` (set, target) is the subclass's."""

    free: tuple[FreeParameter, ...]

    def misfits(self, theta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        return sum(p.log_prior(theta[:, i]) for i, p in enumerate(self.free))

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(theta)
        prior = self.log_prior(theta)
        result = np.full(len(theta), -np.inf)
        ok = np.isfinite(prior)
        if ok.any():
            likelihood = -0.5 * (self.misfits(theta[ok]) ** 2).sum(axis=1)
            result[ok] = np.where(np.isfinite(likelihood), prior[ok] + likelihood, -np.inf)
        return result


class StockFlowObjective(Objective):
    """Log posterior of stock-and-flow parameter sets, evaluated a batch at a time."""

    def __init__(
        self, scenario: Scenario, effects: AgentEffects, targets: dict[str, Target], free: Sequence[FreeParameter]
    ):
        self.scenario, self.effects, self.free = scenario, effects, tuple(free)
        self.targets = {k: t for k, t in targets.items() if t.outputs <= set(STOCK_FLOW_OUTPUTS)}
        self.evaluations = 0

    def misfits(self, theta: np.ndarray) -> np.ndarray:
        """Misfit in sigmas, (set, target); NaN rows for sets the model refuses (a 2014 trend it cannot meet)."""
        overrides = [parameter_values(self.free, row) for row in theta]
        self.evaluations += len(overrides)
        try:
            ds = replay_dataset(self.scenario, self.effects, overrides)
        except InputError:
            if len(overrides) == 1:
                return np.full((1, len(self.targets)), np.nan)
            return np.concatenate([self.misfits(row[None]) for row in theta])
        return np.stack([t.misfit(t.model_value(ds)) for t in self.targets.values()], axis=1)


def search_and_sample(
    objective: Callable[[np.ndarray], np.ndarray],
    free: Sequence[FreeParameter],
    seed: int,
    design_points: int,
    walkers: int,
    steps: int,
    burn: int,
    thin: int,
    progress: Callable[[str, int, int], None] | None = None,
    stage: str = "",
    start: np.ndarray | None = None,
    polish: tuple[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A Latin-hypercube search over the priors, then an emcee ensemble from its best points.

    ``start`` (a point in the bounds, e.g. the scenario's values) is scored beside the design.
    ``polish`` (iterations, difference step as a share of the bounds) climbs from the chain's
    best to the posterior's mode (``polished``). Returns the samples and their log posterior, the best first.
    """
    import emcee

    k = len(free)
    if design_points < walkers:
        raise ValueError(f"the search ({design_points} points) must give every walker ({walkers}) a start")
    design = qmc.LatinHypercube(d=k, seed=seed).random(design_points)
    points = np.column_stack([p.from_unit(design[:, i]) for i, p in enumerate(free)])
    if start is not None:
        points = np.vstack([start, points])
    scores = np.concatenate([objective(points[i : i + walkers]) for i in range(0, len(points), walkers)])
    if progress:
        progress(f"{stage}search", len(points), len(points))
    order = np.argsort(-scores)
    if not np.isfinite(scores[order[0]]):
        raise InputError("calibration/free_parameters.toml", "bounds", "no parameter set in the bounds can be run")
    chosen = order[:walkers]  # the best points of the search start the walkers
    sampler = emcee.EnsembleSampler(walkers, k, objective, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()  # emcee's moves draw from this stream
    initial = emcee.State(points[chosen], log_prob=scores[chosen])  # the search scored them: no re-evaluation
    for step, _ in enumerate(sampler.sample(initial, iterations=steps), 1):
        if progress:
            progress(f"{stage}ensemble", step, steps)
    chain = sampler.get_chain(discard=burn, thin=thin, flat=True)
    logp = sampler.get_log_prob(discard=burn, thin=thin, flat=True)
    best = np.argmax(logp)
    if scores[order[0]] > logp[best]:  # the search found better than the sampler kept
        chain, logp = np.vstack([points[order[0]], chain]), np.concatenate([[scores[order[0]]], logp])
        best = 0
    if polish is not None and polish[0] > 0:
        point = polished(objective, free, chain[best], *polish)
        score = objective(point[None])[0]
        if score > logp[best]:  # the sampler's best is a sample, not the mode: keep the mode if it is higher
            chain, logp = np.vstack([point, chain]), np.concatenate([[score], logp])
            best = 0
        if progress:
            progress(f"{stage}polish", 1, 1)
    ranked = np.concatenate([[best], np.delete(np.arange(len(logp)), best)])
    return chain[ranked], logp[ranked]


class Residuals:
    """Misfits in sigmas and normal priors' z-scores of parameter sets given in units of their bounds (0 to 1).

    The log posterior is -1/2 their sum of squares (uniform priors add nothing inside the bounds),
    so the mode is a least-squares problem and the Gauss-Newton curvature ``J^T J`` its precision.
    """

    def __init__(self, objective: Objective, free: Sequence[FreeParameter]):
        self.objective = objective
        self.low = np.array([p.low for p in free])
        self.width = np.array([p.high for p in free]) - self.low
        self.normal = [i for i, p in enumerate(free) if p.prior == "normal"]
        self.mean = np.array([free[i].mean for i in self.normal], float)
        self.sd = np.array([free[i].sd for i in self.normal], float)

    def theta(self, units: np.ndarray) -> np.ndarray:
        return self.low + np.atleast_2d(units) * self.width

    def units(self, theta: np.ndarray) -> np.ndarray:
        return np.clip((theta - self.low) / self.width, 0, 1)

    def __call__(self, units: np.ndarray) -> np.ndarray:
        theta = self.theta(units)
        misfits = np.nan_to_num(self.objective.misfits(theta), nan=1e3)  # a set the model refuses is far off
        return np.hstack([misfits, (theta[:, self.normal] - self.mean) / self.sd])

    def jacobian(self, units: np.ndarray, step: float) -> np.ndarray:
        """Forward differences of ``step`` (a share of each parameter's bounds, inward at the upper bound),
        all the shifted sets in one batch."""
        steps = np.where(units + step <= 1, step, -step)
        values = self(np.vstack([units, units + np.diag(steps)]))
        return ((values[1:] - values[0]) / steps[:, None]).T


def polished(objective: Objective, free: Sequence[FreeParameter], start: np.ndarray, iterations: int, step: float):
    """The posterior's mode near ``start``, by bounded least squares (scipy's trust-region reflective).

    A short MCMC chain's best sample lies near the mode, not at it (the previous fit's best missed
    origins_tianjin by 1.0 sigma where the mode meets it). The Jacobian's sets are one batch
    (replayed together, or full runs spread over the workers); ``step`` is the finite difference
    as a share of each parameter's bounds (wide enough in the agents' block to see past the
    agents' integer noise).
    """
    from scipy.optimize import least_squares

    residuals = Residuals(objective, free)
    found = least_squares(
        lambda units: residuals(units)[0],
        residuals.units(start),
        jac=lambda units: residuals.jacobian(units, step),
        bounds=(0, 1),
        max_nfev=iterations,
    )
    return residuals.theta(found.x)[0]


UNIFORM_PRECISION = 4.0
"""Precision (in units of the bounds) a uniform prior adds to the proposal only: a parameter the targets
do not inform is proposed with a standard deviation of half its bounds, not an infinite one."""


def joint_ensemble(
    objective: Objective,
    free: Sequence[FreeParameter],
    best: np.ndarray,
    walkers: int,
    steps: int,
    step: float,
    seed: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """An ensemble of the joint posterior of all the free parameters: Laplace's approximation, then MCMC.

    The blocks are fitted in turns, each conditional on the other's best, so pairing their chains
    misses the correlations between them (the previous fit's pairs put Beijing's 2019 population
    below its best fit in every member). Here one batch of full runs gives the Jacobian of the
    residuals at ``best`` (``Residuals``); the Gauss-Newton precision ``J^T J`` (plus
    ``UNIFORM_PRECISION`` for uniform priors) makes a Gaussian truncated to the bounds, from
    which the ``walkers`` of emcee's sampler start; ``steps`` steps of full runs move them
    towards the joint posterior (the Gaussian alone is a poor fit to it: importance weights of
    64 of its draws had an effective size of 2). The second half of the steps is the ensemble,
    ``best`` first. Returns the samples, their log posterior and the sampler's acceptance rate.
    """
    import emcee

    centre, precision = laplace(objective, free, best, step)
    rng = np.random.default_rng(seed)
    start = Residuals(objective, free).theta(_truncated_normal(rng, centre, precision, walkers))
    scores = objective(np.vstack([best, start]))
    sampler = emcee.EnsembleSampler(walkers, len(free), objective, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()
    for done, _ in enumerate(sampler.sample(emcee.State(start, log_prob=scores[1:]), iterations=steps), 1):
        if progress:
            progress("joint ensemble", done, steps)
    chain = sampler.get_chain(discard=steps // 2, flat=True)
    logp = sampler.get_log_prob(discard=steps // 2, flat=True)
    return np.vstack([best, chain]), np.concatenate([scores[:1], logp]), float(np.mean(sampler.acceptance_fraction))


def laplace(
    objective: Objective, free: Sequence[FreeParameter], best: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Laplace's approximation at the mode ``best``, in units of the bounds: its centre and precision,
    the Gauss-Newton ``J^T J`` of ``Residuals`` plus ``UNIFORM_PRECISION`` for uniform priors."""
    residuals = Residuals(objective, free)
    centre = residuals.units(best[None])[0]
    jacobian = residuals.jacobian(centre, step)
    uniform = np.array([0.0 if p.prior == "normal" else UNIFORM_PRECISION for p in free])
    return centre, jacobian.T @ jacobian + np.diag(uniform)


def _truncated_normal(rng: np.random.Generator, mean: np.ndarray, precision: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws of a Gaussian (``mean``, inverse ``precision``) inside the unit cube, by rejection."""
    factor = np.linalg.cholesky(np.linalg.inv(precision))
    kept: list[np.ndarray] = []
    for _ in range(1000):
        batch = mean + rng.standard_normal((4096, len(mean))) @ factor.T
        kept.append(batch[((batch >= 0) & (batch <= 1)).all(axis=1)])
        if sum(len(k) for k in kept) >= n:
            return np.vstack(kept)[:n]
    raise ValueError("the joint ensemble's proposal lies almost wholly outside the bounds")


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
    polish: tuple[int, float] | None = None,
) -> Fit:
    """Fit the stock-and-flow block to the targets on the scenario's recorded agent effects."""
    scenario = replace(scenario, end=min(scenario.end, 2021))
    effects = record_effects(scenario, scenario.seed)
    objective = StockFlowObjective(scenario, effects, targets, free)
    samples, logp = search_and_sample(
        objective,
        objective.free,
        seed,
        design_points,
        walkers,
        steps,
        burn,
        thin,
        progress,
        "stock-and-flow ",
        polish=polish,
    )
    return Fit(tuple(objective.free), samples, logp, tuple(objective.targets), seed, objective.evaluations)


class FullObjective(Objective):
    """Log posterior of the agents' block: full runs of the window, a batch per call on an executor.

    Every run takes the ``fixed`` values (the stock-and-flow block's current fit) and one
    parameter set of the block; policy values ride on the run axis of one batch
    (``sim.space``). All runs share the scenario's seed (common random numbers), so two sets
    differ by their parameters, not by their draws.
    """

    def __init__(
        self,
        scenario: Scenario,
        targets: dict[str, Target],
        free: Sequence[FreeParameter],
        fixed: dict[str, float],
        backend: str = "processes",
        workers: int = 2,
    ):
        self.scenario, self.free, self.fixed = scenario, tuple(free), dict(fixed)
        self.targets, self.backend, self.workers = dict(targets), backend, workers
        self.outputs = tuple(sorted(set().union(*(t.outputs for t in self.targets.values()))))
        self.evaluations = 0

    def datasets(self, theta: np.ndarray):
        """Full runs of the parameter sets (dims run x time x ...); failed runs are NaN."""
        from sim.experiments import evaluate

        values = [self.fixed | parameter_values(self.free, row) for row in theta]
        self.evaluations += len(values)
        chunk = max(1, -(-len(values) // self.workers))  # one batch per worker
        dataset, _ = evaluate(
            self.scenario,
            values,
            [self.scenario.seed] * len(values),
            self.outputs,
            backend=self.backend if len(values) > 1 else "serial",
            workers=self.workers,
            chunk=chunk,
        )
        return dataset.transpose("time", "run", ...)

    def misfits(self, theta: np.ndarray) -> np.ndarray:
        ds = self.datasets(theta)
        return np.stack([t.misfit(t.model_value(ds)) for t in self.targets.values()], axis=1)


@dataclass(frozen=True)
class Budget:
    """Sizes of one calibration: the stock-and-flow block's and the agents' block's search and sampler."""

    stock_flow: tuple[int, int, int, int, int]  # design points, walkers, steps, burn-in, thinning
    full: tuple[int, int, int, int, int]
    cycles: int  # rounds of (stock-and-flow block, agents' block) before the last stock-and-flow fit
    polish: tuple[tuple[int, float], tuple[int, float]] = ((0, 0.0), (0, 0.0))  # per block: iterations, step
    # joint_ensemble: walkers per free parameter (emcee's moves need at least 2), steps, difference step
    ensemble: tuple[int, int, float] = (2, 2, 0.03)


class Checkpoint:
    """The finished stages of a calibration, saved as each ends, so that an interrupted one resumes after them.

    A stage is reused only if the fingerprint (scenario, targets, free parameters, budget, seed) is the
    one it was saved under; otherwise the calibration starts afresh. ``path`` None keeps nothing.
    """

    def __init__(self, path: Path | None, fingerprint: str) -> None:
        self.path, self.fingerprint = path, fingerprint
        self.stages: dict[str, dict[str, np.ndarray]] = {}
        if path is not None and path.exists():
            with np.load(path) as saved:
                if str(saved["fingerprint"]) == fingerprint:
                    for key in saved.files:
                        if key != "fingerprint":
                            stage, name = key.split("/")
                            self.stages.setdefault(stage, {})[name] = saved[key]

    def get(self, stage: str) -> dict[str, np.ndarray] | None:
        return self.stages.get(stage)

    def save(self, stage: str, **arrays: np.ndarray) -> None:
        self.stages[stage] = {k: np.asarray(v) for k, v in arrays.items()}
        if self.path is None:
            return
        from sim.runfolder import atomic_write

        flat = {
            f"{name}/{key}": value for name, stage_arrays in self.stages.items() for key, value in stage_arrays.items()
        }

        def write(path: Path) -> None:
            with open(path, "wb") as stream:  # a stream: np.savez would append .npz to a path
                np.savez(stream, fingerprint=np.asarray(self.fingerprint), **flat)

        atomic_write(self.path, write)


def fit_blocks(
    scenario: Scenario,
    targets: dict[str, Target],
    free: Sequence[FreeParameter],
    budget: Budget,
    seed: int = 0,
    backend: str = "processes",
    workers: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> Fit:
    """Fit both blocks by turns: stock-and-flow on replay, agents on full runs, then stock-and-flow again.

    Each block is fitted with the other held at its current best (block coordinate ascent);
    with both blocks free, the last two fits are then polished together by full runs (kept if
    better: each block's polish saw the other at an earlier best), and the ensemble is drawn
    from the joint posterior at that point (``joint_ensemble``: full runs, so the correlations
    between the blocks count), the best first; with the stock-and-flow block alone, it is that
    block's chain. Each finished stage goes into ``checkpoint``, and stages found there are not
    fitted again (resuming an interrupted calibration).
    """
    from sim.space import with_values

    checkpoint = checkpoint or Checkpoint(None, "")

    flow = [p for p in free if p.block == "stock_flow"]
    agents = [p for p in free if p.block == "full"]
    # every free parameter starts at its prior's centre: the fit does not depend on what the scenario holds
    current = parameter_values(free, [p.centre for p in free])
    window = replace(scenario, end=min(scenario.end, 2021))
    evaluations = 0
    agents_samples = np.array([[current[p.address] for p in agents]])
    for cycle in range(budget.cycles + 1):
        tag = f"round {cycle + 1}: "
        saved = checkpoint.get(f"stock_flow_{cycle}")
        if saved is not None:
            fitted_targets = tuple(k for k, t in targets.items() if t.outputs <= set(STOCK_FLOW_OUTPUTS))
            flow_fit = Fit(
                tuple(flow),
                saved["samples"],
                saved["log_posterior"],
                fitted_targets,
                seed + cycle,
                int(saved["evaluations"]),
            )
        else:
            flow_fit = fit_stock_flow(
                with_values(window, current, "calibration"),
                targets,
                flow,
                seed + cycle,
                *budget.stock_flow,
                progress=_tagged(progress, tag),
                polish=budget.polish[0],
            )
            checkpoint.save(
                f"stock_flow_{cycle}",
                samples=flow_fit.samples,
                log_posterior=flow_fit.log_posterior,
                evaluations=flow_fit.evaluations,
            )
        evaluations += flow_fit.evaluations
        current |= flow_fit.best
        if cycle == budget.cycles or not agents:
            break
        saved = checkpoint.get(f"agents_{cycle}")
        if saved is not None:
            agents_samples, agents_evaluations = saved["samples"], int(saved["evaluations"])
        else:
            objective = FullObjective(window, targets, agents, flow_fit.best, backend, workers)
            agents_samples, _ = search_and_sample(
                objective,
                agents,
                seed + 100 + cycle,
                *budget.full,
                _tagged(progress, tag + "agents "),
                start=np.array([current[p.address] for p in agents]),
                polish=budget.polish[1],
            )
            agents_evaluations = objective.evaluations
            checkpoint.save(f"agents_{cycle}", samples=agents_samples, evaluations=agents_evaluations)
        evaluations += agents_evaluations
        current |= parameter_values(agents, agents_samples[0])
    if not agents:
        return Fit(tuple(flow), flow_fit.samples, flow_fit.log_posterior, tuple(targets), seed, evaluations)
    joint = (*flow, *agents)
    saved = checkpoint.get("ensemble")
    if saved is None:
        objective = FullObjective(window, targets, joint, {}, backend, workers)
        best = np.concatenate([flow_fit.samples[0], agents_samples[0]])
        if budget.polish[1][0] > 0:  # the blocks' last fits, each at the other's best, polished together
            mode = polished(objective, joint, best, *budget.polish[1])
            scores = objective(np.vstack([best, mode]))
            best = mode if scores[1] > scores[0] else best
        per_parameter, steps, step = budget.ensemble
        walkers = per_parameter * len(joint)
        samples, logp, acceptance = joint_ensemble(objective, joint, best, walkers, steps, step, seed + 200, progress)
        saved = dict(samples=samples, log_posterior=logp, acceptance=acceptance, evaluations=objective.evaluations)
        checkpoint.save("ensemble", **saved)
    evaluations += int(saved["evaluations"])
    return Fit(
        joint,
        saved["samples"],
        saved["log_posterior"],
        tuple(targets),
        seed,
        evaluations,
        float(saved["acceptance"]),
    )


def _tagged(progress, tag: str):
    if progress is None:
        return None
    return lambda stage, done, total: progress(tag + stage, done, total)
