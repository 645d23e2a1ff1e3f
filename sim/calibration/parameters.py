"""The free parameters calibration fits (``calibration/free_parameters.toml``): bounds, priors, blocks."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from sim.errors import InputError

FREE_PARAMETERS = Path(__file__).resolve().parents[2] / "calibration" / "free_parameters.toml"
BLOCKS = ("stock_flow", "full")


@dataclass(frozen=True)
class FreeParameter:
    address: str  # as in the parameter space: "population.jobs_weight", "policies.NAME.FIELD"
    low: float
    high: float
    prior: str  # "uniform" or "normal" (truncated to the bounds)
    block: str
    informs: tuple[str, ...]
    mean: float | None = None
    sd: float | None = None
    tied: tuple[str, ...] = ()  # further addresses that take the same value (one rate for Beijing's four regions)
    added_to: str | None = None  # an earlier free parameter whose value this one's is added to (a step up from it)

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every address the parameter sets: its own and the tied ones."""
        return (self.address, *self.tied)

    def log_prior(self, value: np.ndarray) -> np.ndarray:
        """Log prior density (up to a constant); -inf outside the bounds."""
        value = np.asarray(value, float)
        inside = (value >= self.low) & (value <= self.high)
        density = np.zeros_like(value) if self.prior == "uniform" else stats.norm.logpdf(value, self.mean, self.sd)
        return np.where(inside, density, -np.inf)

    @property
    def centre(self) -> float:
        """Where a calibration starts, whatever a scenario holds: the prior's mean, or the middle of the bounds."""
        return float(self.mean) if self.prior == "normal" else (self.low + self.high) / 2

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map points of the unit interval to the prior (inverse CDF), for space-filling designs."""
        if self.prior == "uniform":
            return self.low + np.asarray(u) * (self.high - self.low)
        a, b = stats.norm.cdf([self.low, self.high], self.mean, self.sd)
        return stats.norm.ppf(a + np.asarray(u) * (b - a), self.mean, self.sd)


def parameter_values(free: Sequence[FreeParameter], row: Sequence[float]) -> dict[str, float]:
    """One parameter set as values by address: a tied parameter's value at each of its addresses, and a
    parameter ``added_to`` another as the sum of the two (its bounds and prior are the step's)."""
    values: dict[str, float] = {}
    for p, value in zip(free, row):
        values |= dict.fromkeys(p.addresses, float(value) + (values[p.added_to] if p.added_to else 0.0))
    return values


def load_free_parameters(path: Path = FREE_PARAMETERS, block: str | None = None) -> list[FreeParameter]:
    """The free parameters of the file (of one block if given), in file order."""
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(path, "", f"cannot be read: {error}") from None
    found = []
    for address, entry in _entries(table):
        low, high = entry.get("bounds", (None, None))
        if low is None or not low < high:
            raise InputError(path, f"{address}.bounds", "expected [low, high] with low < high")
        if entry.get("prior") not in ("uniform", "normal"):
            raise InputError(path, f"{address}.prior", 'expected "uniform" or "normal"')
        if entry.get("block") not in BLOCKS:
            raise InputError(path, f"{address}.block", f"expected one of {', '.join(BLOCKS)}")
        if entry["prior"] == "normal" and not (entry.get("sd", 0) > 0 and "mean" in entry):
            raise InputError(path, address, "a normal prior needs a mean and a positive sd")
        tied = entry.get("same_value_for", [])
        if not (isinstance(tied, list) and all(isinstance(a, str) for a in tied)):
            raise InputError(path, f"{address}.same_value_for", "expected a list of addresses")
        added_to = entry.get("added_to")
        if added_to is not None and added_to not in [q.address for q in found if q.block == entry["block"]]:
            raise InputError(path, f"{address}.added_to", "expected an earlier free parameter of its block")
        found.append(
            FreeParameter(
                address,
                float(low),
                float(high),
                entry["prior"],
                entry["block"],
                tuple(entry.get("informs", ())),
                entry.get("mean"),
                entry.get("sd"),
                tuple(tied),
                added_to,
            )
        )
    return [p for p in found if block is None or p.block == block]


def _entries(table: dict, prefix: str = ""):
    """(address, entry) for every table holding a ``block`` key, at any depth (policy fields are three deep)."""
    for key, value in table.items():
        if isinstance(value, dict):
            if "block" in value or "bounds" in value:
                yield prefix + key, value
            else:
                yield from _entries(value, f"{prefix}{key}.")
