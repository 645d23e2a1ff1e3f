"""Experimental designs: distributions over addresses and the samplers that place runs in them.

Every sampler first draws points in the unit hypercube (scipy.stats.qmc for Latin hypercube
and Sobol sequences, SALib for the Saltelli and Morris schemes, numpy for Monte Carlo), then
each parameter maps its column through its inverse CDF. Integers, levels and dates are
discretised there, so every design honours them the same way. The unit sample is kept: the
Morris analysis needs it, and it makes a design reproducible and checkable.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats import qmc

from sim.space import as_date

DESIGNS = ("grid", "monte_carlo", "lhs", "sobol", "saltelli", "morris")
DISTRIBUTIONS = ("uniform", "normal", "triangular", "levels")


@dataclass(frozen=True)
class Distribution:
    """One varied address: its distribution over values (numbers, integers, dates as decimal years, levels)."""

    address: str
    role: str
    """'uncertainty' or 'lever' (EMA's vocabulary: what we do not know, what we choose)."""
    kind: str
    type: str
    """The address's type: number, integer, bool or date."""
    low: float = math.nan
    high: float = math.nan
    mode: float = math.nan
    mean: float = math.nan
    sd: float = math.nan
    levels: tuple = ()

    def value(self, u: np.ndarray) -> list[Any]:
        """Values for unit-interval draws ``u`` (inverse CDF), in the form a scenario file gives them."""
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if self.kind == "levels":
            index = np.minimum((u * len(self.levels)).astype(int), len(self.levels) - 1)
            return [self.levels[i] for i in index]
        if self.type == "integer":  # equal mass on each integer from low to high
            span = int(self.high) - int(self.low) + 1
            return [int(self.low) + int(i) for i in np.minimum((u * span).astype(int), span - 1)]
        if self.kind == "uniform":
            x = self.low + u * (self.high - self.low)
        elif self.kind == "triangular":
            width = self.high - self.low
            x = stats.triang.ppf(u, (self.mode - self.low) / width, loc=self.low, scale=width)
        else:  # normal, truncated to [low, high] (the address's bounds unless narrower ones are given)
            a, b = (self.low - self.mean) / self.sd, (self.high - self.mean) / self.sd
            x = stats.truncnorm.ppf(u, a, b, loc=self.mean, scale=self.sd)
        if self.type == "date":
            return [as_date(float(year)) for year in x]
        return [float(v) for v in x]

    def grid(self, points: int) -> list[Any]:
        """The grid design's values: every level, or ``points`` values spanning the range (quantiles for normal)."""
        if self.kind == "levels":
            return list(self.levels)
        if self.type == "integer":
            span = int(self.high) - int(self.low) + 1
            return sorted(set(self.value((np.arange(min(points, span)) + 0.5) / min(points, span))))
        u = (np.arange(points) + 0.5) / points if self.kind == "normal" else np.linspace(0.0, 1.0, points)
        return self.value(u)


@dataclass(frozen=True)
class Design:
    """Design points: one row per point, values in file form; ``unit`` holds the unit-cube sample."""

    method: str
    names: tuple[str, ...]
    points: list[dict[str, Any]]
    unit: np.ndarray
    second_order: bool = False
    levels: int = 4

    def problem(self) -> dict[str, Any]:
        """The SALib problem the unit sample was drawn for (bounds [0, 1]; values mapped afterwards)."""
        return {"num_vars": len(self.names), "names": list(self.names), "bounds": [[0.0, 1.0]] * len(self.names)}


def sample(
    method: str,
    parameters: list[Distribution],
    samples: int,
    seed: int,
    points: int = 3,
    second_order: bool = False,
    levels: int = 4,
) -> Design:
    """Draw a design; the same arguments give the same design."""
    names = tuple(p.address for p in parameters)
    d = len(parameters)
    if method == "grid":
        columns = [p.grid(points) for p in parameters]
        rows = [dict(zip(names, combo)) for combo in itertools.product(*columns)]
        return Design(method, names, rows, np.full((len(rows), d), np.nan))
    problem = {"num_vars": d, "names": list(names), "bounds": [[0.0, 1.0]] * d}
    if method == "monte_carlo":
        unit = np.random.default_rng(seed).random((samples, d))
    elif method == "lhs":
        unit = qmc.LatinHypercube(d=d, seed=seed).random(samples)
    elif method == "sobol":
        unit = qmc.Sobol(d=d, scramble=True, seed=seed).random(samples)
    elif method == "saltelli":
        from SALib.sample import sobol as saltelli

        unit = saltelli.sample(problem, samples, calc_second_order=second_order, seed=seed)
    elif method == "morris":
        from SALib.sample import morris

        unit = morris.sample(problem, samples, num_levels=levels, seed=seed)
    else:
        raise ValueError(f"unknown design {method!r}")
    columns = [p.value(unit[:, j]) for j, p in enumerate(parameters)]
    rows = [dict(zip(names, values)) for values in zip(*columns)]
    return Design(method, names, rows, unit, second_order, levels)


def csv_value(value: Any) -> str:
    """A design value as design.csv writes it (dates ISO, bools lower case, numbers in full precision)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dt.date):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)
