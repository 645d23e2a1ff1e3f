"""What the explore page draws: the key trajectories of a setting, from a replay or a full run.

Two views of one setting (address -> value over the scenario explored):

- **stock-and-flow view** (answers while a slider is dragged): the agents (firm and institution
  jobs, staff moved, institutions' service capacity) are held as they were in one full run of
  the explored scenario; the policy timeline is rerun alone for the setting (simpy only: levers,
  rail, construction and its workforce), and the population stocks are integrated from those
  inputs with the setting's parameters (``sim.stockflow.replay``, compiled when numba is there).
  At the explored setting it equals the full run exactly (tested); elsewhere it is an
  approximation that leaves out the agents' answer to the changed setting.
- **full model** (when the slider rests): ``sim.run`` of the changed scenario, the same numbers
  that ``python -m sim run`` gives for the saved scenario file. A newer request cancels it at
  its next month (``Cancelled``).
"""

from __future__ import annotations

import csv
import json
import threading
import time as clock
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.model import Model
from sim.outputs.observed import CALIBRATION, observed_for, plans_for
from sim.outputs.style import BEIJING, CENTRAL_SIX
from sim.scenario import Scenario
from sim.space import STOCK_FLOW_GROUPS, addresses, with_values
from sim.stockflow import AgentEffects, replay
from sim.timeline import Timeline

SERIES = {
    # key: (title, unit, regions summed | None for an agent or event output)
    "beijing": ("Beijing", "persons", BEIJING),
    "central_six": ("Six central districts", "persons", CENTRAL_SIX),
    "tongzhou": ("Tongzhou (sub-center)", "persons", ("bj_tongzhou",)),
    "xiongan": ("Xiong'an New Area", "persons", ("xiongan",)),
    "dispersed_firms": ("Firms dispersed from Beijing (cumulative)", "firms", None),
    "construction_workforce": ("Construction workers on site", "persons", None),
}
"""The charts, in page order: four population series (regions summed) and two of the agents and events."""
POPULATION_SERIES = tuple(k for k, (_, _, regions) in SERIES.items() if regions)
PAGE_OUTPUTS = ("population", "dispersed_firms_cum", "construction_workforce")
"""What a full run for the page records (``Model(outputs=...)``): the other outputs are neither computed nor kept."""


BAND_SETS = 200
"""Parameter sets of the calibration ensemble drawn as bands, at most (under a second of replay)."""
BAND_CHUNK = 20
"""Parameter sets replayed at a time for the bands: a newer request waits at most one chunk (about 50 ms).
Each set's replay is independent of the others in its batch, so the chunks give the same bands bit for bit."""


class Cancelled(Exception):
    """A newer request superseded this full run."""


def _compiled_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class TimelineInputs:
    """What the timeline alone hands the stocks, per month: levers, delivered capacity, workers on site."""

    start: dict[str, np.ndarray]
    months: list[dict[str, np.ndarray]]
    built_services: np.ndarray  # (month, run, region): service capacity of finished projects so far
    workforce: np.ndarray  # (month + 1,): workers on site at each observation


LEVER_FIELDS = ("control", "travel_time", "housing_removal", "build_rate", "housing_cap", "cap_time")


def timeline_inputs(scenario: Scenario) -> TimelineInputs:
    """Run the scenario's policy timeline on its own (no agents), recording what it hands the stocks.

    The same ``Timeline`` the coupled model runs (``BatchTimeline`` holds one per policy set), read
    at the same points of the month as ``Model.step`` and ``Model.observe`` read it.
    """
    key = json.dumps(
        [
            scenario.policies,
            float(scenario.parameters["construction.workforce_capacity"]),
            scenario.start,
            scenario.end,  # the months recorded
        ],
        sort_keys=True,
        default=str,
    )
    if key in _TIMELINES:
        return _TIMELINES[key]
    timeline = Timeline(
        scenario.policies,
        scenario.regions,
        scenario.start,
        float(scenario.parameters["construction.workforce_capacity"]),
        str(scenario.path),
    )

    def levers() -> dict[str, np.ndarray]:
        return {k: getattr(timeline.levers, k)[None].copy() for k in LEVER_FIELDS}

    months = (scenario.end - scenario.start) * 12
    start = levers()
    built = np.zeros((1, len(scenario.regions)))
    per_month, services, workforce = [], [], [timeline.on_site]
    for month in range(months):
        timeline.advance(month)
        done = timeline.take_completed()
        timeline.take_orders()  # institution moves are the agents' part: held as recorded
        built = built + done.services
        per_month.append({**levers(), "housing_added": done.housing[None]})
        services.append(built)
        workforce.append(timeline.on_site)
    if len(_TIMELINES) >= 64:
        _TIMELINES.pop(next(iter(_TIMELINES)))
    _TIMELINES[key] = TimelineInputs(start, per_month, np.array(services), np.array(workforce, float))
    return _TIMELINES[key]


_TIMELINES: dict[str, TimelineInputs] = {}
"""Timelines already run, by policy set: moving a parameter slider does not rerun the timeline."""


def swap_timeline(effects: AgentEffects, recorded: TimelineInputs, new: TimelineInputs) -> AgentEffects:
    """The recorded agent effects with the timeline's part replaced by another timeline's."""
    months = tuple(
        replace(
            inputs,
            services=inputs.services - recorded.built_services[m] + new.built_services[m],
            **new.months[m],
        )
        for m, inputs in enumerate(effects.months)
    )
    return AgentEffects(replace(effects.start, **new.start), months)


@dataclass
class Trajectories:
    """Yearly-sampled series of one setting: key -> values, plus the decimal years."""

    time: list[float]
    series: dict[str, list[float]]
    seconds: float

    def json(self, with_time: bool = False) -> dict[str, Any]:
        """As the page reads it (answers leave out the time axis, which the page has from the reference)."""
        return {**({"time": self.time} if with_time else {}), "series": self.series, "seconds": round(self.seconds, 4)}


def population_series(population: np.ndarray, codes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The population charts from a (time, ..., region) array, regions summed."""
    index = {code: i for i, code in enumerate(codes)}
    return {key: population[..., [index[c] for c in SERIES[key][2]]].sum(axis=-1) for key in POPULATION_SERIES}


def _listed(values: np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in values]


class Explorer:
    """One explored scenario: its reference full run, recorded effects, and answers for settings."""

    def __init__(self, scenario: Scenario, seed: int | None = None, ensemble: Path | None = None) -> None:
        self.scenario, self.seed = scenario, scenario.seed if seed is None else seed
        self.space = addresses(scenario)
        self.compiled = _compiled_available()
        started = clock.perf_counter()
        self.run_compiled = True if self.compiled else None  # every full run on the same path (sim.compiled)
        model = Model(scenario, [self.seed], record_effects=True, compiled=self.run_compiled)
        history = model.run()
        self.reference_seconds = clock.perf_counter() - started
        self.effects = model.effects()
        self.recorded_timeline = timeline_inputs(scenario)
        self._swapped: dict[int, tuple[TimelineInputs, AgentEffects]] = {}
        self._views: dict[str, Trajectories] = {}
        self._views_lock = threading.Lock()
        self.time = history.time
        self.reference = Trajectories(
            [round(float(t), 4) for t in self.time],
            {k: _listed(v) for k, v in self._full_series(history.values).items()},
            self.reference_seconds,
        )
        self.ensemble_path = CALIBRATION / "ensemble.csv" if ensemble is None else ensemble
        self.ensemble = load_ensemble(self.ensemble_path, self.space)

    # -- the views ---------------------------------------------------------------------------
    def _changed(self, values: Mapping[str, Any]) -> Scenario:
        """The scenario at this setting; whole numbers given for integer fields (JSON has one number type) count."""
        typed = {
            k: int(v)
            if k in self.space and self.space[k].type == "integer" and isinstance(v, float) and v.is_integer()
            else v
            for k, v in values.items()
        }
        return with_values(self.scenario, typed, "explore")

    def _effects(self, changed: Scenario) -> tuple[AgentEffects, TimelineInputs]:
        """The recorded effects with the setting's timeline, the same object for the same timeline.

        The compiled replay keeps the stacked inputs of the effects it last saw (by identity), so
        steps of a parameter slider (the timeline unchanged) skip restacking 252 months.
        """
        timeline = timeline_inputs(changed)
        hit = self._swapped.get(id(timeline))
        if hit is None or hit[0] is not timeline:
            if len(self._swapped) >= 4:
                self._swapped.pop(next(iter(self._swapped)))
            hit = self._swapped[id(timeline)] = (
                timeline,
                swap_timeline(self.effects, self.recorded_timeline, timeline),
            )
        return hit[1], timeline

    def _replay(self, values: Mapping[str, Any], overrides: list[dict[str, Any]]) -> tuple[Scenario, np.ndarray]:
        """Population (time, run, region) of parameter sets over the setting's timeline and the recorded agents."""
        changed = self._changed(values)
        effects, _ = self._effects(changed)
        _, frames = replay(changed, effects, overrides, outputs=["population"], compiled=self.compiled)
        return changed, frames["population"]

    def stockflow(self, values: Mapping[str, Any]) -> Trajectories:
        """The stock-and-flow view of a setting (agents held as in the reference run).

        The last few answers are kept by setting: a full run states its gap to the view the page
        drew for the same setting a moment before, without replaying it again.
        """
        key = json.dumps(values, sort_keys=True, default=str)
        with self._views_lock:  # the page's requests and a full run's gap come from different threads
            if key in self._views:
                return self._views[key]
        view = self._stockflow(values)
        with self._views_lock:
            if len(self._views) >= 8:
                self._views.pop(next(iter(self._views)))
            self._views[key] = view
        return view

    def _stockflow(self, values: Mapping[str, Any]) -> Trajectories:
        started = clock.perf_counter()
        changed = self._changed(values)
        effects, new_timeline = self._effects(changed)
        _, frames = replay(changed, effects, [{}], outputs=["population"], compiled=self.compiled)
        series = population_series(frames["population"][:, 0], changed.regions.codes)
        series["construction_workforce"] = new_timeline.workforce
        return Trajectories(
            self.reference.time, {k: _listed(v) for k, v in series.items()}, clock.perf_counter() - started
        )

    def full(self, values: Mapping[str, Any], still_wanted: Callable[[], bool] = lambda: True) -> Trajectories:
        """A full run of the setting; raises ``Cancelled`` as soon as ``still_wanted()`` turns false."""
        started = clock.perf_counter()
        changed = self._changed(values)

        def progress(month: int, months: int) -> None:
            if not still_wanted():
                raise Cancelled

        history = Model(changed, [self.seed], compiled=self.run_compiled, outputs=PAGE_OUTPUTS).run(progress)
        series = self._full_series(history.values)
        return Trajectories(
            self.reference.time, {k: _listed(v) for k, v in series.items()}, clock.perf_counter() - started
        )

    def grid(
        self, levels: Mapping[str, list[float]], chunk: int = 25, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """Full runs over every combination of ``levels`` (address -> values), row-major, for the static export."""
        import itertools

        names = list(levels)
        settings = [dict(zip(names, combo)) for combo in itertools.product(*(levels[a] for a in names))]
        runs: list[dict[str, list[float]]] = []
        for first in range(0, len(settings), chunk):
            part = settings[first : first + chunk]
            model = Model(
                self.scenario, [self.seed] * len(part), part, compiled=self.run_compiled, outputs=PAGE_OUTPUTS
            )
            history = model.run()
            for run in range(len(part)):
                one = {k: v[:, run : run + 1] for k, v in history.values.items()}
                runs.append({k: _listed(v) for k, v in self._full_series(one).items()})
            if progress is not None:
                progress(len(runs), len(settings))
        return {"addresses": names, "levels": [list(map(float, levels[a])) for a in names], "runs": runs}

    def _full_series(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        series = population_series(values["population"][:, 0], self.scenario.regions.codes)
        series["dispersed_firms"] = values["dispersed_firms_cum"][:, 0].sum(axis=1)
        series["construction_workforce"] = values["construction_workforce"][:, 0]
        return series

    def bands(
        self, values: Mapping[str, Any], still_wanted: Callable[[], bool] = lambda: True
    ) -> dict[str, Any] | None:
        """5-95 % over the calibration ensemble's parameter sets at this setting (stock-and-flow view), or None.

        Each set replaces the setting's values of the parameters it holds (a slider of one of them
        moves the line, not the band); everything else is the setting's. Replayed ``BAND_CHUNK``
        sets at a time; raises ``Cancelled`` between chunks as soon as ``still_wanted()`` turns false.
        """
        if self.ensemble is None:
            return None
        started = clock.perf_counter()
        parts = []
        for first in range(0, len(self.ensemble), BAND_CHUNK):
            if not still_wanted():
                raise Cancelled
            parts.append(self._replay(values, self.ensemble[first : first + BAND_CHUNK])[1])
        population = np.concatenate(parts, axis=1)
        out = {}
        for key, runs in population_series(population, self.scenario.regions.codes).items():
            low, high = np.percentile(runs, [5, 95], axis=1)
            out[key] = [_listed(low), _listed(high)]
        return {"runs": population.shape[1], "bands": out, "seconds": round(clock.perf_counter() - started, 4)}

    # -- what the page draws beside the model --------------------------------------------------
    def observed(self) -> dict[str, Any]:
        """Observed population points and plan levels for the population charts."""
        out = {}
        for key in POPULATION_SERIES:
            regions = SERIES[key][2]
            out[key] = {
                "points": [[o.time, o.value, o.kind] for o in observed_for(regions)],
                "plans": [[p.start, p.end, p.low, p.high, p.meaning] for p in plans_for(regions)],
            }
        return out


def gap(approx: Trajectories, full: Trajectories) -> dict[str, dict[str, float]]:
    """How far the stock-and-flow view is from the full run, per chart both draw: largest absolute and relative gap."""
    out = {}
    for key in approx.series:
        a, f = np.array(approx.series[key]), np.array(full.series[key])
        diff = np.abs(a - f)
        relative = float(np.max(diff / np.maximum(np.abs(f), 1.0)))
        out[key] = {"absolute": round(float(diff.max()), 1), "relative": round(relative, 6)}
    return out


def load_ensemble(path: Path, space: Mapping[str, Any]) -> list[dict[str, float]] | None:
    """The ensemble's stock-and-flow parameter sets (address -> value); None when the file is absent or has none."""
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    columns = [c for c in rows[0] if c in space and c.split(".")[0] in STOCK_FLOW_GROUPS]
    if not columns:
        return None
    rows = rows[:: -(-len(rows) // BAND_SETS)]  # evenly spread, at most BAND_SETS (one replay batch)
    return [{c: float(row[c]) for c in columns} for row in rows]


__all__ = ["SERIES", "Cancelled", "Explorer", "Trajectories", "gap"]
