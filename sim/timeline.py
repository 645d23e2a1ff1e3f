"""The dated policy timeline and Xiong'an construction as discrete events (simpy).

Simulation time in simpy is months since the start of the run. Each policy of the
scenario becomes a simpy process that waits for its date and then changes the
levers in ``Levers`` (or hands the model an order, such as an institution move).
Construction programmes start projects that each take workers from a limited
construction workforce (a simpy ``Container``), hold them for the project's
duration, release them and hand back the housing and service capacity they built.

The model advances the timeline one month at a time (``advance``): an event dated
within a month acts from the start of that month's step. Every action is written to
``log`` as (month, policy, action), which the run folder keeps as ``events.csv``.

A ``Timeline`` holds one policy set. The runs of a batch may differ in their policies
(a sweep over a lever or a date), so ``BatchTimeline`` keeps one ``Timeline`` per
distinct policy set and hands the model every lever with the run axis first.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import simpy

from sim.errors import InputError
from sim.institutions import MoveOrder
from sim.regions import Regions
from sim.sectors import FIRM_SECTORS


@dataclass
class Levers:
    """The policy levers of one policy set in force now (arrays along regions; no run axis)."""

    coverage: np.ndarray  # catalogue share of would-be entrants refused (region, sector)
    control: np.ndarray  # admission control: utility penalty on arrivals from other provinces (region,)
    travel_time: np.ndarray  # hours (region, region)
    incentive: np.ndarray  # firms' destination utility bonus (region, sector)
    pharma_incentive: np.ndarray  # extra bonus for pharmaceutical firms (region,)
    housing_removal: np.ndarray  # share of housing capacity demolished per year (region,)
    commercial_removal: np.ndarray  # share of commercial floor space demolished per year (region,)
    build_rate: np.ndarray  # largest housing start rate set by land release, NaN = the parameter (region,)
    housing_cap: np.ndarray  # residents a cap policy allows the region's housing to hold, inf = none (region,)
    cap_time: np.ndarray  # years over which housing above the cap is removed (region,)
    dispersals: Mapping[str, tuple] = field(default_factory=dict)  # name -> (sector, rate, targeted, close, allowed)
    version: int = field(default=0, init=False, repr=False, compare=False)  # counts changes (``BatchTimeline``)

    def __setattr__(self, name: str, value: Any) -> None:
        """A lever changes only by being replaced (arrays read-only, mappings frozen once set), so ``version``
        counts every change and ``BatchTimeline.levers`` restacks only after one."""
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        elif isinstance(value, dict):
            value = MappingProxyType(dict(value))
        object.__setattr__(self, name, value)
        if name != "version":
            object.__setattr__(self, "version", self.version + 1)


@dataclass(frozen=True)
class Dispersal:
    """A dispersal programme across the runs of a batch: rate 0 in runs where it is not active."""

    name: str
    sector: int
    rate: np.ndarray  # 1/year (run,)
    targeted: np.ndarray  # bool (region,)
    close_share: np.ndarray  # (run,)
    allowed: np.ndarray  # destinations open to relocating units, bool (region,)


@dataclass(frozen=True)
class BatchLevers:
    """Every lever with the run axis first, as the model and the agents use them."""

    coverage: np.ndarray  # (run, region, sector)
    control: np.ndarray  # (run, region)
    travel_time: np.ndarray  # (run, region, region)
    incentive: np.ndarray  # (run, region, sector)
    pharma_incentive: np.ndarray  # (run, region)
    housing_removal: np.ndarray  # (run, region)
    commercial_removal: np.ndarray  # (run, region)
    build_rate: np.ndarray  # (run, region)
    housing_cap: np.ndarray  # (run, region)
    cap_time: np.ndarray  # (run, region)
    dispersals: tuple[Dispersal, ...]


@dataclass
class Completed:
    """Capacity delivered by finished projects, waiting for the model to take it (region,)."""

    housing: np.ndarray
    services: np.ndarray


class Timeline:
    """The scenario's policies and construction programmes on a simpy clock in months."""

    def __init__(
        self,
        policies: dict[str, dict[str, Any]],
        regions: Regions,
        start_year: int,
        workforce_capacity: float,
        source: str = "scenario",
    ) -> None:
        for name, policy in policies.items():
            if policy["kind"] == "construction" and policy["workers_per_project"] > workforce_capacity:
                raise InputError(
                    source,
                    f"policies.{name}.workers_per_project",
                    f"{policy['workers_per_project']:g} workers exceed construction.workforce_capacity "
                    f"({workforce_capacity:g}): the project could never start",
                )
        self.regions, self.start_year = regions, start_year
        n, s = len(regions), len(FIRM_SECTORS)
        self.levers = Levers(
            coverage=np.zeros((n, s)),
            control=np.zeros(n),
            travel_time=regions.travel_time.copy(),
            incentive=np.zeros((n, s)),
            pharma_incentive=np.zeros(n),
            housing_removal=np.zeros(n),
            commercial_removal=np.zeros(n),
            build_rate=np.full(n, np.nan),
            housing_cap=np.full(n, np.inf),
            cap_time=np.ones(n),
        )
        self.completed = Completed(np.zeros(n), np.zeros(n))
        self.delivered = False  # whether a project has finished since ``take_completed``
        self.orders: list[MoveOrder] = []
        self.log: list[tuple[float, str, str]] = []
        self.env = simpy.Environment()
        capacity = max(workforce_capacity, 1e-9)  # simpy needs a positive capacity; no project fits in 1e-9
        self.workforce = simpy.Container(self.env, capacity=capacity, init=capacity)
        self.on_site = 0.0
        for name, policy in policies.items():
            self.env.process(getattr(self, f"_{policy['kind']}")(name, policy))

    # -- clock ------------------------------------------------------------------------------
    def month(self, year: float | np.ndarray) -> float | np.ndarray:
        """Months since the start; rounded so that 1 August lands on its month, not a hair before it."""
        return np.round((year - self.start_year) * 12, 6)

    def _wait_until(self, year: float) -> simpy.Timeout:
        return self.env.timeout(max(self.month(year) - self.env.now, 0.0))

    def advance(self, month: int) -> None:
        """Process every event dated before the end of ``month`` (months since the start).

        A month with nothing scheduled before its end is skipped: ``run(until=...)`` would process no event
        (the clock may then lag; only processes read it, at their own events' times)."""
        if self.env.peek() < month + 1:
            self.env.run(until=month + 1)

    def take_orders(self) -> list[MoveOrder]:
        orders, self.orders = self.orders, []
        return orders

    def take_completed(self) -> Completed:
        done = self.completed
        self.completed = Completed(np.zeros_like(done.housing), np.zeros_like(done.services))
        self.delivered = False
        return done

    def _note(self, name: str, action: str) -> None:
        self.log.append((round(self.env.now, 6), name, action))

    def _mask(self, codes: list[str]) -> np.ndarray:
        return np.isin(self.regions.codes, codes)

    # -- policy kinds (fields: sim.policies.POLICY_KINDS) -------------------------------------
    def _catalogue(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["date"])
        central, beijing = self.regions.central_six, self.regions.beijing
        coverage = np.zeros_like(self.levers.coverage)
        coverage[central] = [p["coverage_central_six"][s] for s in FIRM_SECTORS]
        coverage[beijing & ~central] = [p["coverage_elsewhere"][s] for s in FIRM_SECTORS]
        self.levers.coverage = coverage
        self._note(name, "catalogue in force")

    def _dispersal(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["start"])
        sector = FIRM_SECTORS.index(p["sector"])
        programme = (sector, p["rate"], self._mask(p["regions"]), p["close_share"], self._mask(p["destinations"]))
        self.levers.dispersals = {**self.levers.dispersals, name: programme}
        self._note(name, f"dispersal of {p['sector']} starts")
        yield self._wait_until(p["end"])
        self.levers.dispersals = {k: v for k, v in self.levers.dispersals.items() if k != name}
        self._note(name, f"dispersal of {p['sector']} ends")

    def _admission_control(self, name: str, p: dict) -> Generator:
        """The penalty moves from its level at ``date`` to ``strength`` in equal monthly steps over the ramp."""
        yield self._wait_until(p["date"])
        mask = self._mask(p["regions"])
        months = max(int(round(p["ramp_years"] * 12)), 1)
        before = self.levers.control[mask].copy()
        if months > 1:
            self._note(name, f"admission control towards {p['strength']:g} over {months} months")
        for month in range(1, months + 1):
            control = self.levers.control.copy()
            control[mask] = before + (p["strength"] - before) * month / months
            self.levers.control = control
            if month < months:
                yield self.env.timeout(1)
        self._note(name, f"admission control {p['strength']:g}")

    def _demolition(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["start"])
        mask = self._mask(p["regions"])
        self.levers.housing_removal = self.levers.housing_removal + mask * p["housing_rate"]
        self.levers.commercial_removal = self.levers.commercial_removal + mask * p["commercial_rate"]
        self._note(name, "demolition starts")
        yield self._wait_until(p["end"])
        self.levers.housing_removal = self.levers.housing_removal - mask * p["housing_rate"]
        self.levers.commercial_removal = self.levers.commercial_removal - mask * p["commercial_rate"]
        self._note(name, "demolition ends")

    def _land_release(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["date"])
        self.levers.build_rate = np.where(self._mask(p["regions"]), p["housing_build_rate"], self.levers.build_rate)
        self._note(name, f"land released: housing starts up to {p['housing_build_rate']:g} a year")

    def _housing_cap(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["date"])
        region = self.regions.index(p["region"])
        housing_cap, cap_time = self.levers.housing_cap.copy(), self.levers.cap_time.copy()
        housing_cap[region], cap_time[region] = p["population"], p["years"]
        self.levers.housing_cap, self.levers.cap_time = housing_cap, cap_time
        self._note(name, f"housing capped for {p['population']:.0f} residents within {p['years']:g} years")

    def _rail(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["date"])
        i, j = self.regions.index(p["from"]), self.regions.index(p["to"])
        travel_time = self.levers.travel_time.copy()
        travel_time[i, j] = travel_time[j, i] = p["hours"]
        self.levers.travel_time = travel_time
        self._note(name, f"rail {p['from']}-{p['to']} opens: {p['hours']:g} h")

    def _incentive(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["start"])
        region = self.regions.index(p["region"])
        sectors = [FIRM_SECTORS.index(s) for s in p["sectors"]]
        change = np.zeros_like(self.levers.incentive)
        if p["pharma_only"]:
            self.levers.pharma_incentive = _added(self.levers.pharma_incentive, region, p["utility"])
        else:
            change[region, sectors] = p["utility"]
            self.levers.incentive = self.levers.incentive + change
        self._note(name, "incentive starts")
        if np.isfinite(p["end"]):
            yield self._wait_until(p["end"])
            if p["pharma_only"]:
                self.levers.pharma_incentive = _added(self.levers.pharma_incentive, region, -p["utility"])
            else:
                self.levers.incentive = self.levers.incentive - change
            self._note(name, "incentive ends")

    def _institution_move(self, name: str, p: dict) -> Generator:
        dates = np.linspace(p["start"], p["end"], p["count"]) if p["count"] > 1 else np.array([p["start"]])
        months, batch = np.unique(np.floor(self.month(dates) + 1e-9), return_counts=True)
        for month, count in zip(months, batch):
            yield self.env.timeout(max(month - self.env.now, 0.0))
            self.orders.append(MoveOrder(name, p["institution"], int(count), tuple(p["from"]), p["to"]))
            self._note(name, f"{count} {p['institution']} ordered to {p['to']}")

    def _construction(self, name: str, p: dict) -> Generator:
        starts = np.linspace(self.month(p["start"]), self.month(p["end"]), p["projects"])
        for number, start in enumerate(starts, 1):
            yield self.env.timeout(max(start - self.env.now, 0.0))
            self.env.process(self._project(f"{name} #{number}", p))

    def _project(self, name: str, p: dict) -> Generator:
        workers = p["workers_per_project"]
        if workers > 0:
            yield self.workforce.get(workers)
        self.on_site += workers
        self._note(name, f"starts with {workers:g} workers")
        yield self.env.timeout(p["duration_years"] * 12)
        if workers > 0:
            yield self.workforce.put(workers)
        self.on_site -= workers
        region = self.regions.index(p["region"])
        self.completed.housing[region] += p["housing_per_project"]
        self.completed.services[region] += p["services_per_project"]
        self.delivered = True
        self._note(name, "completed")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _added(lever: np.ndarray, at: int, change: float) -> np.ndarray:
    """A copy of ``lever`` with ``change`` added at ``at`` (levers are replaced, not changed in place)."""
    lever = lever.copy()
    lever[at] += change
    return lever


class BatchTimeline:
    """The timelines of a batch: one ``Timeline`` per distinct policy set, levers stacked by run.

    Runs with the same policies and workforce share one simpy timeline, so a batch of seeds
    or of model parameters costs one timeline, and a sweep over a lever costs one per level.
    """

    def __init__(
        self,
        run_policies: Sequence[dict[str, dict[str, Any]]],
        workforce: np.ndarray,
        regions: Regions,
        start_year: int,
        source: str = "scenario",
    ) -> None:
        keys = [
            json.dumps([policies, float(w)], sort_keys=True, default=str)
            for policies, w in zip(run_policies, workforce)
        ]
        first = {key: run for run, key in reversed(list(enumerate(keys)))}
        unique = list(dict.fromkeys(keys))
        self.group = np.array([unique.index(key) for key in keys])
        self.timelines = [
            Timeline(run_policies[first[key]], regions, start_year, float(workforce[first[key]]), source)
            for key in unique
        ]
        self.regions = regions
        self._stacked: tuple[tuple[int, ...], BatchLevers] | None = None  # (versions of the levers, stacked)
        self._nothing: Completed | None = None  # what a month without finished projects delivers

    @property
    def runs(self) -> int:
        return len(self.group)

    def members(self, group: int) -> np.ndarray:
        """Mask of the runs that follow timeline ``group``."""
        return self.group == group

    def advance(self, month: int) -> None:
        for timeline in self.timelines:
            timeline.advance(month)

    def levers(self) -> BatchLevers:
        """Every lever in force now, with the run axis first (read-only arrays: the same object until a
        lever changes, so the month's users may keep what they derive from it)."""
        versions = tuple(t.levers.version for t in self.timelines)
        if self._stacked is None or self._stacked[0] != versions:
            self._stacked = versions, self._stack()
        return self._stacked[1]

    def _stack(self) -> BatchLevers:
        groups = [t.levers for t in self.timelines]

        def stack(name: str) -> np.ndarray:
            return _read_only(np.stack([getattr(levers, name) for levers in groups])[self.group])

        programmes: dict[tuple, dict[int, tuple]] = {}
        for g, levers in enumerate(groups):
            for name, (sector, rate, targeted, close, allowed) in levers.dispersals.items():
                key = (name, sector, targeted.tobytes(), allowed.tobytes())
                programmes.setdefault(key, {})[g] = (rate, close, targeted, allowed)
        dispersals = []
        for (name, sector, _, _), by_group in programmes.items():
            rate = _read_only(np.array([by_group[g][0] if g in by_group else 0.0 for g in self.group]))
            close = _read_only(np.array([by_group[g][1] if g in by_group else 0.0 for g in self.group]))
            _, _, targeted, allowed = next(iter(by_group.values()))
            dispersals.append(Dispersal(name, sector, rate, targeted, close, allowed))
        return BatchLevers(
            **{name: stack(name) for name in BatchLevers.__dataclass_fields__ if name != "dispersals"},
            dispersals=tuple(dispersals),
        )

    def take_orders(self) -> list[tuple[MoveOrder, np.ndarray]]:
        """Institution move orders of this month, each with the mask of the runs it applies to."""
        return [(order, self.members(g)) for g, t in enumerate(self.timelines) for order in t.take_orders()]

    def take_completed(self) -> Completed:
        """Capacity delivered this month by finished projects, (run, region) (read-only)."""
        if not any(t.delivered for t in self.timelines):  # most months: nothing to stack
            if self._nothing is None:
                zeros = _read_only(np.zeros((self.runs, len(self.regions))))
                self._nothing = Completed(zeros, zeros)
            return self._nothing
        done = [t.take_completed() for t in self.timelines]
        return Completed(
            np.stack([d.housing for d in done])[self.group], np.stack([d.services for d in done])[self.group]
        )

    def on_site(self) -> np.ndarray:
        """Construction workers on site, (run,)."""
        return np.array([t.on_site for t in self.timelines])[self.group]

    def logs(self) -> list[list[tuple[float, str, str]]]:
        """The event log of each run (runs of one timeline share one list)."""
        return [self.timelines[g].log for g in self.group]
