"""Checked states: no run reports a negative or non-finite stock as if it were a result.

After every month the model's stocks (every array of its stock-and-flow state: population, housing,
housing in construction, local services, households following, cumulative flows) and the
agents' tallies (firms, jobs) are checked. A value that is not finite, or negative beyond
round-off, is a failure of that run: a single run stops with a ``StateError`` that names the
variable, region, time and the parameters most likely responsible; in a batch the run is
masked (NaN from the failing month on, its stocks held at the last good month so the
others finish) and reported in ``StateCheck.failures``.

"Most likely responsible": among the parameters that drive the failing variable, those
furthest from their default as a share of their allowed range (a failure at allowed values
is a model problem to report; the ranking points at where to look).
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import StateError
from sim.scenario import PARAMETERS

ROUND_OFF = 1e-9  # relative: a stock below -ROUND_OFF * its run's largest value is negative


def _group(*groups: str) -> tuple[str, ...]:
    return tuple(f"{group}.{name}" for group in groups for name in PARAMETERS.get(group, {}))


_FIRMS = ("firms.entry_rate", "firms.exit_rate", "firms.young_exit_boost", "firms.high_end_entry_growth")
_POPULATION = (*_group("population"), *_FIRMS[:3])  # jobs come from the firms
SUSPECTS: dict[str, tuple[str, ...]] = {
    "population": _POPULATION,
    "housing": (*_group("housing"), *_POPULATION),
    "housing_in_construction": (*_group("housing"), *_POPULATION),
    "local_services": (*_group("services"), *_POPULATION),
    "households_following": _group("institutions"),
    "firms": _FIRMS,
    "jobs": _FIRMS,
}
"""Variable -> the parameters that drive it (others: the population parameters)."""


def _parameter_table() -> dict[str, dict[str, Any]]:
    return {f"{group}.{name}": spec for group, table in PARAMETERS.items() for name, spec in table.items()}


FITTED = Path(__file__).resolve().parents[1] / "calibration" / "fitted.toml"


@functools.cache
def shipped_defaults() -> dict[str, Any]:
    """Parameter defaults as shipped: parameters.toml's values, the fitted ones (calibration/fitted.toml) over them."""
    values = {key: spec["value"] for key, spec in _parameter_table().items()}
    if FITTED.is_file():
        with open(FITTED, "rb") as handle:
            fitted = tomllib.load(handle)
        for group, table in fitted.items():
            if group in PARAMETERS:
                for name, value in table.items():
                    key = f"{group}.{name}"
                    if isinstance(value, dict):  # some regions' entries: over the default's, region by region
                        value = _by_region(values[key]) | value
                    values[key] = value
    return values


def _by_region(value: Any) -> dict[str, Any]:
    """A region-keyed default as a table in the default regions' order (one number: the same for all)."""
    if isinstance(value, dict):
        return dict(value)
    from sim.regions import load_regions

    return dict.fromkeys(load_regions().codes, value)


def suspects(
    variable: str,
    parameters: Mapping[str, np.ndarray],
    run: int,
    top: int = 3,
    base: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The parameters of ``variable`` furthest from their reference in ``run`` (value, default, range).

    The reference is ``base`` where given, else the shipped defaults: sim/data/parameters.toml
    with the calibrated values of calibration/fitted.toml over it.
    """
    table = _parameter_table()
    base = shipped_defaults() if base is None else base
    found = []
    for key in SUSPECTS.get(variable, _POPULATION):
        if key not in parameters or key not in table:
            continue
        spec = table[key]
        low, high = spec["range"]
        value = np.atleast_1d(np.asarray(parameters[key][run], float))
        default = base.get(key, spec["value"])
        if isinstance(default, dict):
            default = list(default.values())
        reference = (
            np.broadcast_to(np.asarray(default, float), value.shape) if np.size(default) in (1, value.size) else None
        )
        if reference is None:
            reference = np.full(value.shape, float(np.mean(default)))
        distance = np.abs(value - reference) / max(high - low, 1e-12)
        at = int(np.argmax(distance))
        if distance[at] > 0:
            found.append(
                {
                    "parameter": key,
                    "value": float(value[at]) if value.size > 1 else float(value[0]),
                    "default": float(reference[at]),
                    "range": [low, high],
                    "distance": float(distance[at]),
                }
            )
    found.sort(key=lambda item: -item["distance"])
    return found[:top]


def _describe(found: list[dict[str, Any]]) -> str:
    if not found:
        return "all of its parameters are at their defaults"
    return ", ".join(
        f"{s['parameter']} = {s['value']:g} (default {s['default']:g}, range {s['range'][0]:g} to {s['range'][1]:g})"
        for s in found
    )


class StateCheck:
    """Checks a model's states month by month; ``mode`` 'raise' (one run) or 'mask' (a batch).

    ``model`` is the coupled ``Model`` or a bare ``StockFlow`` (a replay of recorded agent
    effects): anything with ``state``, ``scenario``, ``regions`` and ``runs``; firms, seeds
    and per-run parameters are used where it has them (or given here).
    """

    def __init__(
        self,
        model: Any,
        mode: str = "raise",
        seeds: Sequence[int] | None = None,
        parameters: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        if mode not in ("raise", "mask"):
            raise ValueError(f"mode must be 'raise' or 'mask', got {mode!r}")
        self.model, self.mode = model, mode
        streams = getattr(model, "streams", None)
        self.seeds = list(seeds if seeds is not None else streams.seeds if streams is not None else [])
        self.parameters = parameters if parameters is not None else getattr(model, "parameters", {})
        self.failed = np.zeros(model.runs, bool)
        self.failed_at: dict[int, int] = {}  # run -> index of the first bad recorded month
        self.failures: list[dict[str, Any]] = []
        self._look(0)

    def _stocks(self) -> Any:
        """What holds the stocks: the stock-and-flow part of the model (or the model itself)."""
        return getattr(self.model, "stockflow", self.model)

    def _arrays(self) -> dict[str, np.ndarray]:
        m = self.model
        arrays = dict(self._stocks().state)
        if getattr(m, "firms", None) is not None:
            arrays["firms"], arrays["jobs"] = m.firms.counts(), m.firms.jobs()
        if getattr(m, "built_services", None) is not None:
            arrays["built_services"] = m.built_services
        return arrays

    def _look(self, month: int) -> np.ndarray:
        """Find runs with a bad value now; record (or raise) each new one; return the bad runs."""
        bad_runs = np.zeros(self.model.runs, bool)
        for name, array in self._arrays().items():
            values = np.asarray(array, float).reshape(array.shape[0], -1)
            if values.size == 0 or (values.min() >= 0 and np.isfinite(values.max())):
                continue  # the usual month: all finite and non-negative (min is NaN if any value is)
            scale = np.nanmax(np.where(np.isfinite(values), np.abs(values), 0.0), axis=1, initial=1.0)
            bad = ~np.isfinite(values) | (values < -ROUND_OFF * scale[:, None])
            for run in np.flatnonzero(bad.any(axis=1) & ~self.failed & ~bad_runs):
                bad_runs[run] = True
                self._fail(name, array, run, int(np.flatnonzero(bad[run])[0]), month)
        return bad_runs

    def _fail(self, name: str, array: np.ndarray, run: int, flat: int, month: int) -> None:
        m = self.model
        index = np.unravel_index(flat, array.shape[1:])
        value = float(np.asarray(array)[(run, *index)])
        codes = m.regions.codes
        places = [codes[i] for i, size in zip(index, array.shape[1:]) if size == len(codes)]
        where = f" in {places[0]}" if len(places) == 1 else f" from {places[0]} to {places[1]}" if places else ""
        time = m.scenario.start + month / 12
        seed = self.seeds[run] if run < len(self.seeds) else None
        found = suspects(name, self.parameters, run)
        what = "not finite" if not np.isfinite(value) else "negative"
        message = (
            f"{name}{where} is {what} ({value:.4g}) at {time:.2f} (run {run}, seed {seed}, {m.scenario.method}); "
            f"parameters most likely responsible: {_describe(found)}"
        )
        record = {
            "run": int(run),
            "seed": None if seed is None else int(seed),
            "time": round(time, 6),
            "variable": name,
            "region": where.strip(),
            "value": repr(value),
            "error": message,
            "parameters": {s["parameter"]: s["value"] for s in found},
        }
        if self.mode == "raise":
            raise StateError(message, record)
        self.failures.append(record)
        self.failed[run] = True
        self.failed_at[int(run)] = month

    def step(self, month: int, advance: Callable[[], None] | None = None) -> None:
        """Month ``month`` (``model.step`` or ``advance()``), then the check; failed runs keep their last stocks."""
        holder = self._stocks()
        saved = {key: np.array(value, copy=True) for key, value in holder.state.items()}
        if advance is None:
            self.model.step(month)
        else:
            advance()
        self._look(month + 1)
        if self.failed.any():
            for key, value in holder.state.items():
                mask = self.failed.reshape(-1, *([1] * (np.ndim(value) - 1)))
                holder.state[key] = np.where(mask, saved[key], value)

    def finish(self, history: Any) -> Any:
        """Mask failed runs in the recorded history: NaN from their first bad month on."""
        self.mask(history.values)
        return history

    def mask(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Mask failed runs in recorded outputs, each (time, run, ...)."""
        for run, month in self.failed_at.items():
            for values in outputs.values():
                values[month:, run] = np.nan

    def attributes(self) -> dict[str, str]:
        """Dataset attributes: ``failures`` as JSON (a list of records, [] when every run passed)."""
        return {"failures": json.dumps(self.failures, allow_nan=False)}
