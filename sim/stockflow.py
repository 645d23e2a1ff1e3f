"""The stock-and-flow part of the model on its own: residents, housing and services per region.

``StockFlow`` holds the population model's parameters and stocks for a batch of runs and
advances them one month given what the agents and the timeline hand it (``MonthInputs``).
The coupled model (``sim.model.Model``) drives it month by month; ``replay`` drives it from
the agents' effects recorded in one full run, so that a batch of parameter sets of the
stock-and-flow part (a sweep, a calibration, the XMILE export's cross-check) costs
milliseconds per run. Replaying a run's own effects with its own parameters reproduces its
stocks exactly; with other parameters it is an approximation that holds the agents'
behaviour fixed (they do not answer the changed population).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sim.engine import material_delay, smooth, step
from sim.errors import InputError
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
from sim.scenario import Scenario

DT = 1 / 12  # years: one month
DELAY_ORDER = 3

STOCK_FLOW_OUTPUTS = (
    "population",
    "migrant_population",
    "housing_capacity",
    "service_capacity",
    "births_cum",
    "deaths_cum",
    "in_from_outside_cum",
    "out_to_outside_cum",
    "net_migration",
    "migration",
    "in_from_outside",
    "out_to_outside",
    "admission_control",
)
"""The recorded outputs (``sim.model.RECORDED``) that the stock-and-flow part produces."""


@dataclass(frozen=True)
class MonthInputs:
    """What the agents and the timeline hand the stocks for one month; leading axis run (or 1: all runs)."""

    jobs: np.ndarray  # jobs in firms and institutions (run, region)
    services: np.ndarray  # service capacity of institutions and finished projects [persons served] (run, region)
    control: np.ndarray  # admission-control penalty [utility] (run, region)
    travel_time: np.ndarray  # hours (run, region, region)
    housing_removal: np.ndarray  # demolition rate [1/year] (run, region)
    build_rate: np.ndarray  # land-release build rate, NaN = the parameter [1/year] (run, region)
    housing_cap: np.ndarray  # residents a cap allows, inf = none (run, region)
    cap_time: np.ndarray  # years (run, region)
    staff_moved: np.ndarray  # staff of institutions moved this month (run, origin, destination)
    housing_added: np.ndarray  # capacity delivered by finished projects at the month's start (run, region)


class StockFlow:
    """The population stocks of a batch of runs, advanced one month at a time (docs/model.md sections 4-5)."""

    def __init__(
        self, scenario: Scenario, values: Mapping[str, np.ndarray], start: MonthInputs, source: str | None = None
    ) -> None:
        self.scenario, self.regions = scenario, scenario.regions
        regions, source = scenario.regions, source or str(scenario.path)
        runs, n = len(values["population.jobs_weight"]), len(regions)
        self.runs = runs
        self.follow = {
            k: values[f"institutions.{k}"] for k in ("household_follow_share", "household_size", "follow_time")
        }
        self.max_build_rate = values["housing.max_build_rate"]  # (run, region), unless land release overrides it
        total = np.tile(regions.population_2014, (runs, 1))
        migrants = total * regions.migrant_share_2014
        population = np.stack([total - migrants, migrants], axis=1)  # (run, group, region)
        housing = total / regions.occupancy_2014
        service_total = total * regions.services_per_resident_2014
        local_services = service_total - start.services
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
            region_constant=np.zeros((runs, n)),
            move_gap_2014=np.zeros((runs, 2, n)),
            elsewhere_utility=np.zeros(runs),
        )
        self.base_rates = base_move_rates(params, regions.migrant_share_2014)
        self.state: dict[str, np.ndarray] = {
            "population": population,
            "housing": housing,
            "housing_in_construction": np.zeros((runs, n, DELAY_ORDER)),
            "local_services": local_services,
            "households_following": np.zeros((runs, n, n, DELAY_ORDER)),
            **{
                k: np.zeros((runs, n))
                for k in ("births_cum", "deaths_cum", "in_from_outside_cum", "out_to_outside_cum")
            },
        }
        self.params = fit_region_constants(
            params,
            self.base_rates,
            population,
            housing,
            np.broadcast_to(start.jobs, (runs, n)),
            service_total,
            np.broadcast_to(start.control, (runs, n)),
            np.broadcast_to(start.travel_time, (runs, n, n)),
            np.tile(regions.net_migration_2014, (runs, 1)),
            codes=regions.codes,
            source=source,
        )

    @property
    def total(self) -> np.ndarray:
        """Residents by (run, region)."""
        return self.state["population"].sum(axis=1)

    def _rates_for(self, time: float, inputs: MonthInputs) -> dict[str, Any]:
        births, deaths = self.regions.vital_rates(time)
        size, share = self.follow["household_size"], self.follow["household_follow_share"]
        return {
            "years": time - self.scenario.start,
            "birth_rate": births,
            "death_rate": deaths,
            "build_rate": np.where(np.isnan(inputs.build_rate), self.max_build_rate, inputs.build_rate),
            "follow_inflow": inputs.staff_moved * (share * size)[:, None, None] / DT,  # persons/year this month
        }

    def derivative(self, time: float, inputs: MonthInputs):
        """The stocks' derivative for this month's inputs (pure: RK4 calls it four times)."""
        p, same, extra = self.params, self.regions.same_province, self._rates_for(time, inputs)

        def derivative(t: float, s: Mapping[str, np.ndarray]) -> dict[str, Any]:
            population, housing = s["population"], s["housing"]
            total = population.sum(axis=1)
            services = s["local_services"] + inputs.services
            flows = migration(
                p,
                self.base_rates,
                population,
                housing,
                inputs.jobs,
                services,
                inputs.control,
                inputs.travel_time,
                extra["years"],
            )
            d_following, arriving = material_delay(
                extra["follow_inflow"], s["households_following"], self.follow["follow_time"][:, None, None]
            )
            births = extra["birth_rate"] * population
            deaths = extra["death_rate"] * population
            registering = p.registration_rate * population[:, MIGRANT]
            change = births - deaths + regrouped(flows, same)
            change[:, REGISTERED] += registering - arriving.sum(axis=2) + (arriving * same).sum(axis=1)
            change[:, MIGRANT] += -registering + (arriving * ~same).sum(axis=1)
            in_construction = s["housing_in_construction"].sum(axis=-1)
            starts = housing_starts(p, total, housing, in_construction, extra["build_rate"], inputs.housing_cap)
            d_construction, completions = material_delay(
                starts, s["housing_in_construction"], p.construction_time[:, None]
            )
            removed = housing_removed(p, housing, inputs.housing_removal, inputs.housing_cap, inputs.cap_time)
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

    def receive(self, inputs: MonthInputs) -> None:
        """Housing delivered by finished projects at the start of the month (before the agents act)."""
        self.state["housing"] = self.state["housing"] + inputs.housing_added

    def advance(self, time: float, inputs: MonthInputs) -> None:
        """The stocks advance by one month from ``time`` (after ``receive`` and the agents)."""
        derivative = self.derivative(time, inputs)

        def stocks(t: float, s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: v for k, v in derivative(t, s).items() if not k.startswith("_")}

        self.state = step(stocks, time, self.state, DT, self.scenario.method)

    def observe(self, time: float, inputs: MonthInputs) -> dict[str, np.ndarray]:
        """The stock-and-flow outputs now (``STOCK_FLOW_OUTPUTS``), each (run, ...)."""
        s = self.state
        quiet = replace(inputs, staff_moved=np.zeros_like(inputs.staff_moved))
        rates = self.derivative(time, quiet)(time, s)  # the population equation itself, so nothing is left out
        flows = rates["_flows"]
        shape = (self.runs, len(self.regions))
        return {
            "population": s["population"].sum(axis=1),
            "migrant_population": s["population"][:, MIGRANT],
            "housing_capacity": s["housing"],
            "service_capacity": s["local_services"] + inputs.services,
            "births_cum": s["births_cum"],
            "deaths_cum": s["deaths_cum"],
            "in_from_outside_cum": s["in_from_outside_cum"],
            "out_to_outside_cum": s["out_to_outside_cum"],
            "net_migration": rates["population"].sum(axis=1) - rates["births_cum"] + rates["deaths_cum"],
            "migration": flows.between.sum(axis=1),
            "in_from_outside": flows.from_outside,
            "out_to_outside": flows.to_outside.sum(axis=1),
            "admission_control": np.broadcast_to(inputs.control, shape),
        }


@dataclass(frozen=True)
class AgentEffects:
    """The agents' and the timeline's effects on the stocks, month by month, recorded in one full run."""

    start: MonthInputs  # before the first month (what the region constants are fitted to)
    months: tuple[MonthInputs, ...]  # the inputs of each month's step, in order

    def at(self, month: int) -> MonthInputs:
        """Inputs of month ``month``'s step; what an observation at ``month`` sees is ``at(month - 1)``."""
        return self.start if month < 0 else self.months[month]


def replay(
    scenario: Scenario,
    effects: AgentEffects,
    overrides: Sequence[Mapping[str, Any]],
    outputs: Sequence[str] = STOCK_FLOW_OUTPUTS,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Integrate a batch of parameter sets of the stock-and-flow part with recorded agent effects.

    Returns the times and each output as (time, run, ...), like ``sim.model.History``.
    """
    values = stack_parameters(scenario, overrides)
    model = StockFlow(scenario, values, effects.start, source=f"overrides of {scenario.path}")
    months = len(effects.months)
    frames: dict[str, list[np.ndarray]] = {k: [] for k in outputs}
    for month in range(months + 1):
        time = scenario.start + month * DT
        observed = model.observe(time, effects.at(month - 1))
        for key in outputs:
            frames[key].append(np.array(observed[key], float, copy=True))
        if month < months:
            model.receive(effects.at(month))
            model.advance(time, effects.at(month))
    times = scenario.start + np.arange(months + 1) * DT
    return times, {k: np.stack(v) for k, v in frames.items()}
