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
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from sim.errors import InputError
from sim.institutions import MoveOrder
from sim.regions import Regions
from sim.sectors import FIRM_SECTORS


@dataclass
class Levers:
    """The policy levers in force now; scenario-wide (the same in every run of a batch)."""

    coverage: np.ndarray  # catalogue share of would-be entrants refused (region, sector)
    control: np.ndarray  # admission-control utility penalty (region,)
    travel_time: np.ndarray  # hours (region, region)
    incentive: np.ndarray  # firms' destination utility bonus (region, sector)
    pharma_incentive: np.ndarray  # extra bonus for pharmaceutical firms (region,)
    dispersals: dict[str, tuple] = field(default_factory=dict)  # name -> (sector, rate, targeted, close, allowed)


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
        self.levers = Levers(np.zeros((n, s)), np.zeros(n), regions.travel_time.copy(), np.zeros((n, s)), np.zeros(n))
        self.completed = Completed(np.zeros(n), np.zeros(n))
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
        """Process every event dated before the end of ``month`` (months since the start)."""
        self.env.run(until=month + 1)

    def take_orders(self) -> list[MoveOrder]:
        orders, self.orders = self.orders, []
        return orders

    def take_completed(self) -> Completed:
        done = self.completed
        self.completed = Completed(np.zeros_like(done.housing), np.zeros_like(done.services))
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
        self.levers.dispersals[name] = programme
        self._note(name, f"dispersal of {p['sector']} starts")
        yield self._wait_until(p["end"])
        del self.levers.dispersals[name]
        self._note(name, f"dispersal of {p['sector']} ends")

    def _admission_control(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["date"])
        self.levers.control = np.where(self._mask(p["regions"]), p["strength"], self.levers.control)
        self._note(name, f"admission control {p['strength']:g}")

    def _rail(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["date"])
        i, j = self.regions.index(p["from"]), self.regions.index(p["to"])
        self.levers.travel_time = self.levers.travel_time.copy()
        self.levers.travel_time[i, j] = self.levers.travel_time[j, i] = p["hours"]
        self._note(name, f"rail {p['from']}-{p['to']} opens: {p['hours']:g} h")

    def _incentive(self, name: str, p: dict) -> Generator:
        yield self._wait_until(p["start"])
        region = self.regions.index(p["region"])
        sectors = [FIRM_SECTORS.index(s) for s in p["sectors"]]
        change = np.zeros_like(self.levers.incentive)
        if p["pharma_only"]:
            self.levers.pharma_incentive[region] += p["utility"]
        else:
            change[region, sectors] = p["utility"]
            self.levers.incentive = self.levers.incentive + change
        self._note(name, "incentive starts")
        if np.isfinite(p["end"]):
            yield self._wait_until(p["end"])
            if p["pharma_only"]:
                self.levers.pharma_incentive[region] -= p["utility"]
            else:
                self.levers.incentive = self.levers.incentive - change
            self._note(name, "incentive ends")

    def _institution_move(self, name: str, p: dict) -> Generator:
        dates = np.linspace(p["start"], p["end"], p["count"]) if p["count"] > 1 else np.array([p["start"]])
        months, batch = np.unique(np.floor(self.month(dates) + 1e-9), return_counts=True)
        for month, count in zip(months, batch):
            yield self.env.timeout(max(month - self.env.now, 0.0))
            self.orders.append(MoveOrder(name, p["institution"], int(count), tuple(p["from"]), p["to"]))
            self._note(name, f"{count} {p['institution']} to {p['to']}")

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
        self._note(name, "completed")
