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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine import material_delay, smooth, step
from sim.errors import InputError
from sim.firms import FirmContext, FirmParams, Firms, load_firm_table
from sim.institutions import Institutions
from sim.parameters import pick, stack_parameters
from sim.population import (
    MIGRANT,
    REGISTERED,
    PopulationParams,
    base_move_rates,
    fit_region_constants,
    housing_removed,
    housing_starts,
    migration,
    regrouped,
)
from sim.random import Streams
from sim.scenario import Scenario
from sim.sectors import FIRM_SECTORS, JOB_SECTORS
from sim.timeline import BatchLevers, BatchTimeline

DT = 1 / 12  # years: one month
DELAY_ORDER = 3

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


@dataclass
class History:
    """Recorded variables: time axis (decimal years), arrays (time, run, ...) and each run's event log."""

    time: np.ndarray
    values: dict[str, np.ndarray]
    events: list[list[tuple[float, str, str]]]


class Model:
    """A batch of runs of one scenario: the SD stocks, the agents and the timeline on one clock."""

    def __init__(self, scenario: Scenario, seeds: Sequence[int], overrides: Sequence[Mapping[str, Any]] | None = None):
        overrides = list(overrides) if overrides is not None else [{} for _ in seeds]
        if len(overrides) != len(seeds):
            raise ValueError("give one parameter override mapping per seed")
        self.scenario, self.regions = scenario, scenario.regions
        values = stack_parameters(scenario, overrides)
        self.streams = Streams(seeds)
        self.runs, n = len(seeds), len(self.regions)
        regions = self.regions
        self.timeline = BatchTimeline(
            [scenario.policies] * self.runs,
            values["construction.workforce_capacity"],
            regions,
            scenario.start,
            str(scenario.path),
        )
        self.firms = Firms(
            regions,
            load_firm_table(regions),
            FirmParams(**pick(FirmParams, values, "firms")),
            self.streams,
            f"overrides of {scenario.path}",
        )
        self.institutions = Institutions(regions, self.streams)
        self.follow = {
            k: values[f"institutions.{k}"] for k in ("household_follow_share", "household_size", "follow_time")
        }

        self.built_services = np.zeros((self.runs, n))  # service capacity delivered by construction projects
        self.max_build_rate = values["housing.max_build_rate"]  # (run, region), unless land release overrides it
        total = np.tile(regions.population_2014, (self.runs, 1))
        migrants = total * regions.migrant_share_2014
        population = np.stack([total - migrants, migrants], axis=1)  # (run, group, region)
        housing = total / regions.occupancy_2014
        service_total = total * regions.services_per_resident_2014
        local_services = service_total - self.institutions.service_capacity()
        if (local_services <= 0).any():
            raise InputError(
                "sim/data/institutions_2014.csv",
                "capacity_each",
                "institutions exceed a region's 2014 service capacity",
            )
        params = PopulationParams(
            **pick(PopulationParams, values, "population"),
            **pick(PopulationParams, values, "housing", {"adjustment_time": "housing_adjustment_time"}),
            service_adjustment_time=values["services.adjustment_time"],
            same_province=regions.same_province,
            local_service_norm=local_services / total,
            region_constant=np.zeros((self.runs, n)),
            move_gap_2014=np.zeros((self.runs, n)),
            elsewhere_utility=np.zeros(self.runs),
        )
        self.base_rates = base_move_rates(params, regions.migrant_share_2014)
        self.state: dict[str, np.ndarray] = {
            "population": population,
            "housing": housing,
            "housing_in_construction": np.zeros((self.runs, n, DELAY_ORDER)),
            "local_services": local_services,
            "households_following": np.zeros((self.runs, n, n, DELAY_ORDER)),
            **{
                k: np.zeros((self.runs, n))
                for k in ("births_cum", "deaths_cum", "in_from_outside_cum", "out_to_outside_cum")
            },
        }
        levers = self.timeline.levers()
        start_inputs = self._inputs(scenario.start, levers)
        self.population_params = fit_region_constants(
            params,
            self.base_rates,
            population,
            housing,
            start_inputs["jobs"],
            service_total,
            start_inputs["control"],
            start_inputs["travel_time"],
            np.tile(regions.net_migration_2014, (self.runs, 1)),
            codes=regions.codes,
            source=str(scenario.path),
        )
        self.firms.seed_entrant_history(self._firm_context(scenario.start, levers))

    # -- coupling helpers --------------------------------------------------------------------
    def _inputs(
        self, time: float, levers: BatchLevers, follow_inflow: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """What the agents, the data and the timeline hand the population model for this month."""
        jobs = self.firms.jobs().sum(axis=2) + self.institutions.jobs()
        n = len(self.regions)
        births, deaths = self.regions.vital_rates(time)
        return {
            "years": np.array(time - self.scenario.start),
            "birth_rate": births,
            "death_rate": deaths,
            "jobs": jobs,
            # capacity that does not follow local population: institutions and finished projects
            "services": self.institutions.service_capacity() + self.built_services,
            "control": levers.control,
            "travel_time": levers.travel_time,
            "housing_removal": levers.housing_removal,
            "build_rate": np.where(np.isnan(levers.build_rate), self.max_build_rate, levers.build_rate),
            "housing_cap": levers.housing_cap,
            "cap_time": levers.cap_time,
            "follow_inflow": np.zeros((self.runs, n, n)) if follow_inflow is None else follow_inflow,
        }

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
            self.state["population"].sum(axis=1),
            space_removed,
        )

    def rates(self, inputs: dict[str, np.ndarray]):
        """The population model's derivative for this month's inputs (pure: RK4 calls it four times)."""
        p, same = self.population_params, self.regions.same_province

        def derivative(t: float, s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            population, housing = s["population"], s["housing"]
            total = population.sum(axis=1)
            services = s["local_services"] + inputs["services"]
            flows = migration(
                p,
                self.base_rates,
                population,
                housing,
                inputs["jobs"],
                services,
                inputs["control"],
                inputs["travel_time"],
                inputs["years"],
            )
            d_following, arriving = material_delay(
                inputs["follow_inflow"], s["households_following"], self.follow["follow_time"][:, None, None]
            )
            births = inputs["birth_rate"] * population
            deaths = inputs["death_rate"] * population
            registering = p.registration_rate * population[:, MIGRANT]
            change = births - deaths + regrouped(flows, same)
            change[:, REGISTERED] += registering - arriving.sum(axis=2) + (arriving * same).sum(axis=1)
            change[:, MIGRANT] += -registering + (arriving * ~same).sum(axis=1)
            in_construction = s["housing_in_construction"].sum(axis=-1)
            starts = housing_starts(p, total, housing, in_construction, inputs["build_rate"], inputs["housing_cap"])
            d_construction, completions = material_delay(
                starts, s["housing_in_construction"], p.construction_time[:, None]
            )
            removed = housing_removed(p, housing, inputs["housing_removal"], inputs["housing_cap"], inputs["cap_time"])
            return {
                "population": change,
                "housing": completions - removed,
                "housing_in_construction": d_construction,
                "local_services": smooth(
                    p.local_service_norm * total, s["local_services"], p.service_adjustment_time[:, None]
                ),
                "households_following": d_following,
                "births_cum": births.sum(axis=1),
                "deaths_cum": deaths.sum(axis=1),
                "in_from_outside_cum": flows.from_outside,
                "out_to_outside_cum": flows.to_outside.sum(axis=1),
                "_flows": flows,
            }

        return derivative

    # -- the month ---------------------------------------------------------------------------
    def step(self, month: int) -> None:
        """Advance one month (order in the module docstring)."""
        time = self.scenario.start + month * DT
        self.timeline.advance(month)
        levers = self.timeline.levers()
        done = self.timeline.take_completed()
        self.state["housing"] = self.state["housing"] + done.housing
        self.built_services = self.built_services + done.services

        staff_flows = np.zeros((self.runs, len(self.regions), len(self.regions)))
        for order, runs in self.timeline.take_orders():
            staff_flows += self.institutions.move(order, runs)
        follow_share, size = self.follow["household_follow_share"], self.follow["household_size"]
        follow_inflow = staff_flows * (follow_share * size)[:, None, None] / DT  # persons/year over this month

        self.firms.step(self._firm_context(time, levers))
        inputs = self._inputs(time, levers, follow_inflow)
        self.state = step(_stocks_only(self.rates(inputs)), time, self.state, DT, self.scenario.method)

    def observe(self, time: float) -> dict[str, np.ndarray]:
        """The recorded variables now, each (run, ...)."""
        s, f, c = self.state, self.firms, self.firms.counters
        levers = self.timeline.levers()
        inputs = self._inputs(time, levers)
        n = len(self.regions)
        pad = np.zeros((self.runs, 1))
        jobs = np.concatenate([f.jobs(), self.institutions.jobs()[..., None]], axis=2)
        sector_pad = lambda a: np.concatenate([a, pad], axis=1)  # noqa: E731 - firm sectors -> job sectors
        rates = self.rates(inputs)(0.0, s)  # the population equation itself, so nothing is left out
        flows = rates["_flows"]
        net_migration = rates["population"].sum(axis=1) - rates["births_cum"] + rates["deaths_cum"]
        return {
            "population": s["population"].sum(axis=1),
            "migrant_population": s["population"][:, MIGRANT],
            "jobs": jobs,
            "firms": np.concatenate([f.counts(), np.zeros((self.runs, n, 1))], axis=2),
            "housing_capacity": s["housing"],
            "service_capacity": s["local_services"] + inputs["services"],
            "dispersed_firms_cum": sector_pad(c.dispersed),
            "dispersed_closed_cum": sector_pad(c.dispersed_closed),
            "relocated_firms_cum": np.concatenate([c.relocated, np.zeros((self.runs, 1, n))], axis=1),
            "relocated_pharma_cum": c.relocated_pharma,
            "spontaneous_moves_cum": sector_pad(c.spontaneous_moves),
            "moves_from_beijing_cum": np.concatenate([c.moves_from_beijing, np.zeros((self.runs, 1, n))], axis=1),
            "cooperation_projects_cum": f.projects(),
            "refused_registrations_cum": c.refused + c.refused_changes,
            "refused_changes_cum": c.refused_changes,
            "floor_space": f.space,
            "commercial_rent": f.rent(),
            "diverted_registrations_cum": c.diverted,
            "branches_opened_cum": c.branches,
            "high_end_share_new_entrants": c.high_end_share(),
            "firm_entries_cum": sector_pad(c.entries),
            "firm_exits_cum": sector_pad(c.exits),
            "institutions": self.institutions.counts(),
            "institutions_moved_cum": self.institutions.moved_count,
            "staff_moved_cum": self.institutions.staff_moved,
            "construction_workforce": self.timeline.on_site(),
            "births_cum": s["births_cum"],
            "deaths_cum": s["deaths_cum"],
            "in_from_outside_cum": s["in_from_outside_cum"],
            "out_to_outside_cum": s["out_to_outside_cum"],
            "net_migration": net_migration,
            "migration": flows.between.sum(axis=1),
            "in_from_outside": flows.from_outside,
            "out_to_outside": flows.to_outside.sum(axis=1),
            "admission_control": levers.control,
        }

    def run(self, progress=None) -> History:
        months = (self.scenario.end - self.scenario.start) * 12
        frames: dict[str, list[np.ndarray]] = {k: [] for k in RECORDED}
        for month in range(months + 1):
            for key, value in self.observe(self.scenario.start + month * DT).items():
                frames[key].append(np.array(value, float, copy=True))
            if month < months:
                self.step(month)
            if progress is not None:
                progress(month, months)
        time = self.scenario.start + np.arange(months + 1) * DT
        return History(time, {k: np.stack(v) for k, v in frames.items()}, self.timeline.logs())


def _stocks_only(derivative):
    """The derivative without its diagnostic entries (names starting with '_'), for the integrator."""

    def stocks(t: float, s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v for k, v in derivative(t, s).items() if not k.startswith("_")}

    return stocks


__all__ = ["DT", "FIRM_SECTORS", "JOB_SECTORS", "RECORDED", "History", "Model"]
