"""The coupled model: stock-and-flow population, firm and institution agents, simpy events.

One month, written once (``Model.step``), for the state at time t to the state at t + dt:

1. record the state at t (the value at t describes the state at t);
2. events: the timeline processes everything dated in this month (policy levers change,
   institution moves are ordered, finished construction delivers capacity);
3. institutions carry out move orders; their staff's households enter the follow delay;
4. firms act (exit, dispersal, relocation, entry, branches) on this month's levers and rents;
5. flows: the population model's rates are computed from the stocks, with jobs from the
   agents, service capacity including institutions, and this month's levers;
6. integration: the stocks advance by dt (Euler or RK4; agents' quantities held for the month).

Everything carries a leading run axis: a batch of parameter sets and seeds is one model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.checks import StateCheck
from sim.compiled import asked_for
from sim.errors import InputError
from sim.firms import FirmContext, FirmParams, Firms, load_firm_table
from sim.institutions import Institutions
from sim.parameters import pick
from sim.random import Streams
from sim.scenario import Scenario, suggest
from sim.sectors import FIRM_SECTORS, JOB_SECTORS
from sim.space import with_values
from sim.stockflow import DT, STOCK_FLOW_OUTPUTS, AgentEffects, MonthInputs, StockFlow
from sim.timeline import BatchLevers, BatchTimeline

RECORDED: dict[str, tuple[str, tuple[str, ...], str]] = {
    # name: (units, dims after (time, run), meaning)
    "population": ("persons", ("region",), "resident population"),
    "migrant_population": ("persons", ("region",), "residents without the local registration (hukou)"),
    "jobs": ("jobs", ("region", "sector"), "jobs in firms (by sector) and public institutions (sector 'public')"),
    "firms": ("firms", ("region", "sector"), "firms; for wholesale_logistics, markets and logistics centres"),
    "housing_capacity": ("persons", ("region",), "housing capacity in residents it can house"),
    "service_capacity": (
        "persons served",
        ("region",),
        "public-service capacity: local services, institutions and finished projects",
    ),
    "dispersed_firms_cum": (
        "firms",
        ("sector",),
        "firms dispersed from Beijing (closed or relocated) by dispersal programmes since the start",
    ),
    "dispersed_closed_cum": ("firms", ("sector",), "dispersed firms that closed"),
    "relocated_firms_cum": ("firms", ("sector", "region"), "dispersed firms that relocated, by destination"),
    "relocated_pharma_cum": ("firms", ("region",), "dispersed pharmaceutical firms that relocated, by destination"),
    "spontaneous_moves_cum": ("firms", ("sector",), "firms that moved region of their own accord since the start"),
    "moves_from_beijing_cum": (
        "firms",
        ("sector", "region"),
        "firms that moved from a Beijing region to another region (dispersed or of their own accord), by destination",
    ),
    "cooperation_projects_cum": (
        "projects",
        (),
        "industrial cooperation and transfer projects into Tongzhou and the northern three counties (K2)",
    ),
    "refused_registrations_cum": (
        "applications",
        (),
        "new registrations and changes of registration refused by Beijing's catalogue since the start (F1)",
    ),
    "refused_changes_cum": (
        "applications",
        (),
        "changes of registration (moves into a Beijing region) refused by the catalogue, part of F1",
    ),
    "floor_space": ("workplaces", ("region",), "commercial floor space, in the space one job occupies"),
    "commercial_rent": ("1", ("region",), "commercial rent relative to the core's 2014 rent"),
    "diverted_registrations_cum": (
        "firms",
        ("region",),
        "refused would-be entrants registered outside Beijing instead",
    ),
    "branches_opened_cum": ("firms", ("region",), "branches of Zhongguancun firms opened outside Beijing (N2)"),
    "high_end_share_new_entrants": (
        "1",
        (),
        "share of Beijing's new market entrants in high-end sectors, preceding 12 months",
    ),
    "firm_entries_cum": ("firms", ("sector",), "firm entries since the start (admitted, diverted and branches)"),
    "firm_exits_cum": ("firms", ("sector",), "firm closures since the start (dispersal closures included)"),
    "institutions": ("institutions", ("region", "institution"), "public institutions by region and kind"),
    "institutions_moved_cum": ("institutions", (), "public institutions relocated since the start"),
    "staff_moved_cum": ("persons", (), "staff of relocated institutions since the start"),
    "construction_workforce": (
        "persons",
        (),
        "construction workers on site (Xiong'an unless a project names another region)",
    ),
    "births_cum": ("persons", ("region",), "births since the start"),
    "deaths_cum": ("persons", ("region",), "deaths since the start"),
    "in_from_outside_cum": ("persons", ("region",), "migrants from the rest of China since the start"),
    "out_to_outside_cum": ("persons", ("region",), "migrants to the rest of China since the start"),
    "net_migration": (
        "persons/year",
        ("region",),
        "net migration rate into the region: internal, outside and households following relocated staff",
    ),
    "migration": (
        "persons/year",
        ("region", "destination"),
        "migration rate between regions, from region to destination (households following staff excluded)",
    ),
    "in_from_outside": ("persons/year", ("region",), "migration rate from the rest of China"),
    "out_to_outside": ("persons/year", ("region",), "migration rate to the rest of China"),
    "admission_control": ("utility", ("region",), "admission-control penalty on arrivals from other provinces"),
}


def check_outputs(outputs: Iterable[str] | None, where: str = "outputs") -> tuple[str, ...]:
    """The recorded outputs asked for, in ``RECORDED``'s order (None: all of them).

    A caller that needs a few series (the explore page, a sweep's kept outputs) does not pay for
    computing and storing the others; an unknown name is an ``InputError`` listing the known ones.
    """
    if outputs is None:
        return tuple(RECORDED)
    if isinstance(outputs, str | bytes) or not isinstance(outputs, Iterable):
        raise InputError(where, "", f"expected a list of output names, got {outputs!r}")
    asked = list(outputs)
    for name in asked:
        if name not in RECORDED:
            raise InputError(where, str(name), f"unknown output; {suggest(str(name), tuple(RECORDED))}")
    return tuple(k for k in RECORDED if k in asked)


@dataclass
class History:
    """Recorded variables: time axis (decimal years), arrays (time, run, ...) and each run's event log."""

    time: np.ndarray
    values: dict[str, np.ndarray]
    events: list[list[tuple[float, str, str]]]


class Model:
    """A batch of runs of one scenario: the SD stocks, the agents and the timeline on one clock."""

    def __init__(
        self,
        scenario: Scenario,
        seeds: Sequence[int],
        overrides: Sequence[Mapping[str, Any]] | None = None,
        record_effects: bool = False,
        compiled: bool | None = None,
        outputs: Iterable[str] | None = None,
    ):
        """``outputs``: the recorded variables ``run`` keeps (names of ``RECORDED``; None: all), the others
        are neither computed nor stored. ``compiled``: the stocks' compiled month (``sim.stockflow_kernel.advance``,
        equal to rounding). None: with ``SIM_COMPILED=1`` (``sim.compiled``); True: compiled; False: numpy.
        The firms' month is numpy's in every case (design record 57)."""
        self.outputs = check_outputs(outputs)
        overrides = list(overrides) if overrides is not None else [{} for _ in seeds]
        if len(overrides) != len(seeds):
            raise ValueError("give one parameter override mapping per seed")
        self.scenario, self.regions = scenario, scenario.regions
        where = f"overrides of {scenario.path}"
        # each run's scenario: any address of the space (parameters, policy fields, dates) may differ by run
        per_run = [with_values(scenario, o, f"{where}: run {i}") if o else scenario for i, o in enumerate(overrides)]
        values = {
            key: np.stack([np.broadcast_to(np.asarray(r.parameters[key], float), np.shape(base)) for r in per_run])
            for key, base in scenario.parameters.items()
        }
        self.parameters = values  # per-run values, for the state checks' error messages
        self.streams = Streams(seeds)
        self.runs, n = len(seeds), len(self.regions)
        self.timeline = BatchTimeline(
            [r.policies for r in per_run],
            values["construction.workforce_capacity"],
            self.regions,
            scenario.start,
            str(scenario.path),
        )
        self.compiled_stocks = asked_for(compiled)
        self.firms = Firms(
            self.regions,
            load_firm_table(self.regions),
            FirmParams(**pick(FirmParams, values, "firms")),
            self.streams,
            f"overrides of {scenario.path}",
        )
        self.institutions = Institutions(self.regions, self.streams)
        for run in per_run:
            self.institutions.check_orders(run.policies, str(scenario.path))
        self.built_services = np.zeros((self.runs, n))  # service capacity delivered by construction projects
        levers = self.timeline.levers()
        self.start_inputs = self._month_inputs(levers)
        self.stockflow = StockFlow(scenario, values, self.start_inputs)
        self.recorded: list[MonthInputs] | None = [] if record_effects else None
        self.firms.seed_entrant_history(self._firm_context(scenario.start, levers))

    # -- coupling helpers --------------------------------------------------------------------
    def _month_inputs(self, levers: BatchLevers, staff_moved=None, housing_added=None) -> MonthInputs:
        """What the agents and the timeline hand the stocks this month."""
        n = len(self.regions)
        return MonthInputs(
            jobs=self.firms.jobs().sum(axis=2) + self.institutions.jobs(),
            # capacity that does not follow local population: institutions and finished projects
            services=self.institutions.service_capacity() + self.built_services,
            control=levers.control,
            travel_time=levers.travel_time,
            housing_removal=levers.housing_removal,
            build_rate=levers.build_rate,
            housing_cap=levers.housing_cap,
            cap_time=levers.cap_time,
            staff_moved=np.zeros((self.runs, n, n)) if staff_moved is None else staff_moved,
            housing_added=np.zeros((self.runs, n)) if housing_added is None else housing_added,
        )

    def _firm_context(self, time: float, levers: BatchLevers) -> FirmContext:
        space_removed = -levers.commercial_removal * self.firms.space * DT  # demolition campaigns this month
        return FirmContext(
            time,
            DT,
            levers.travel_time,
            levers.coverage,
            levers.incentive,
            levers.pharma_incentive,
            levers.dispersals,
            self.stockflow.total,
            space_removed,
        )

    # -- the month ---------------------------------------------------------------------------
    def step(self, month: int) -> None:
        """Advance one month (order in the module docstring)."""
        time = self.scenario.start + month * DT
        self.streams.begin_month(month)
        self.timeline.advance(month)
        levers = self.timeline.levers()
        done = self.timeline.take_completed()
        self.built_services = self.built_services + done.services

        staff_moved = np.zeros((self.runs, len(self.regions), len(self.regions)))
        for order, runs in self.timeline.take_orders():
            staff_moved += self.institutions.move(order, runs)

        self.firms.step(self._firm_context(time, levers))
        inputs = self._month_inputs(levers, staff_moved, done.housing)
        self.stockflow.receive(inputs)  # housing delivered at the month's start (the agents do not read housing)
        if self.recorded is not None:
            self.recorded.append(inputs)
        if self.compiled_stocks:
            from sim.stockflow_kernel import advance

            advance(self.stockflow, time, inputs)
        else:
            self.stockflow.advance(time, inputs)

    def observe(self, time: float, outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The recorded variables now (the model's ``outputs`` unless named here), each (run, ...)."""
        outputs = self.outputs if outputs is None else outputs
        f, c = self.firms, self.firms.counters
        n = len(self.regions)
        pad, region_pad = np.zeros((self.runs, 1)), np.zeros((self.runs, 1, n))
        sector_pad = lambda a: np.concatenate([a, pad], axis=1)  # noqa: E731 - firm sectors -> job sectors
        agents = {
            "jobs": lambda: np.concatenate([f.jobs(), self.institutions.jobs()[..., None]], axis=2),
            "firms": lambda: np.concatenate([f.counts(), np.zeros((self.runs, n, 1))], axis=2),
            "dispersed_firms_cum": lambda: sector_pad(c.dispersed),
            "dispersed_closed_cum": lambda: sector_pad(c.dispersed_closed),
            "relocated_firms_cum": lambda: np.concatenate([c.relocated, region_pad], axis=1),
            "relocated_pharma_cum": lambda: c.relocated_pharma,
            "spontaneous_moves_cum": lambda: sector_pad(c.spontaneous_moves),
            "moves_from_beijing_cum": lambda: np.concatenate([c.moves_from_beijing, region_pad], axis=1),
            "cooperation_projects_cum": f.projects,
            "refused_registrations_cum": lambda: c.refused + c.refused_changes,
            "refused_changes_cum": lambda: c.refused_changes,
            "floor_space": lambda: f.space,
            "commercial_rent": f.rent,
            "diverted_registrations_cum": lambda: c.diverted,
            "branches_opened_cum": lambda: c.branches,
            "high_end_share_new_entrants": c.high_end_share,
            "firm_entries_cum": lambda: sector_pad(c.entries),
            "firm_exits_cum": lambda: sector_pad(c.exits),
            "institutions": self.institutions.counts,
            "institutions_moved_cum": lambda: self.institutions.moved_count,
            "staff_moved_cum": lambda: self.institutions.staff_moved,
            "construction_workforce": self.timeline.on_site,
        }
        stocks = [k for k in outputs if k in STOCK_FLOW_OUTPUTS]
        out = self.stockflow.observe(time, self._month_inputs(self.timeline.levers()), stocks) if stocks else {}
        return {k: out[k] if k in out else agents[k]() for k in outputs}

    def run(self, progress=None, failures: str = "raise") -> History:
        """Run every month; a bad state raises StateError (``failures='raise'``) or masks its run ('mask')."""
        self.check = StateCheck(self, failures)
        months = (self.scenario.end - self.scenario.start) * 12
        frames: dict[str, np.ndarray] = {}  # (time, run, ...), filled month by month (no copies to stack)
        for month in range(months + 1):
            for key, value in self.observe(self.scenario.start + month * DT).items():
                if key not in frames:
                    frames[key] = np.empty((months + 1, *np.shape(value)))
                frames[key][month] = value
            if month < months:
                self.check.step(month)
            if progress is not None:
                progress(month, months)
        time = self.scenario.start + np.arange(months + 1) * DT
        history = History(time, {k: frames[k] for k in self.outputs}, self.timeline.logs())
        return self.check.finish(history)

    def effects(self) -> AgentEffects:
        """The agents' and the timeline's effects on the stocks so far (needs ``record_effects=True``)."""
        if self.recorded is None:
            raise ValueError("construct the Model with record_effects=True to record the agents' effects")
        return AgentEffects(self.start_inputs, tuple(self.recorded))


__all__ = ["DT", "FIRM_SECTORS", "JOB_SECTORS", "RECORDED", "History", "Model", "check_outputs"]
