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

from sim.engine import smooth, step
from sim.errors import InputError
from sim.parameters import pick, stack_parameters
from sim.population import (
    MIGRANT,
    REGISTERED,
    PopulationParams,
    base_move_rates,
    displaced_share,
    fit_region_constants,
    housing_removed,
    housing_starts,
    logit,
    migration_balance,
    migration_friction,
)
from sim.scenario import Scenario

DT = 1 / 12  # years: one month
DELAY_ORDER = 3

STOCK_UNITS = {
    "population": "persons",
    "housing": "persons",  # capacity, in the residents it houses
    "housing_in_construction": "persons",
    "local_services": "persons served",
    "households_following": "persons",
    "births_cum": "persons",
    "deaths_cum": "persons",
    "in_from_outside_cum": "persons",
    "out_to_outside_cum": "persons",
}
"""Each stock's unit; its derivative (``StockFlow.derivative``) is in this unit per year (tests/test_validation.py)."""

STOCK_OUTPUTS = (
    "population",
    "migrant_population",
    "housing_capacity",
    "service_capacity",
    "births_cum",
    "deaths_cum",
    "in_from_outside_cum",
    "out_to_outside_cum",
)
"""The recorded outputs that are stocks (what the compiled kernel and PySD integrate)."""

STOCK_FLOW_OUTPUTS = (
    *STOCK_OUTPUTS,
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
        self,
        scenario: Scenario,
        values: Mapping[str, np.ndarray],
        start: MonthInputs,
        source: str | None = None,
        compiled: bool = False,
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
        with np.errstate(divide="ignore"):  # a rate of 0 is -inf (never moves), or refused by fit_region_constants
            self.logit_base_rates = logit(self.base_rates)
        self._vital: dict[float, tuple[np.ndarray, np.ndarray]] = {}  # vital rates by calendar year
        self._moving_pairs = np.zeros((n, n), bool)  # (origin, destination) pairs that have moved staff so far
        self._pairs: tuple[np.ndarray, ...] | None = None  # ``note_moves``
        self._unit = np.eye(n)
        self._kept_friction: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # control, travel time, friction
        self.same = regions.same_province
        self.follow_factor = (self.follow["household_follow_share"] * self.follow["household_size"])[:, None, None] / DT
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
            regions.net_migration_2014 + values["population.net_migration_correction"],
            codes=regions.codes,
            source=source,
            compiled=compiled,
        )
        self._drains = (  # order / delay time of the follow and construction delays (run, 1)
            DELAY_ORDER / self.follow["follow_time"][:, None],
            DELAY_ORDER / self.params.construction_time[:, None],
        )

    @property
    def total(self) -> np.ndarray:
        """Residents by (run, region)."""
        return self.state["population"].sum(axis=1)

    def _rates_for(self, time: float, inputs: MonthInputs) -> dict[str, Any]:
        """What holds for the whole month: vital rates, the levers' build rate and migration friction."""
        year = np.floor(time)
        if year not in self._vital:
            self._vital[year] = self.regions.vital_rates(time)
        births, deaths = self._vital[year]
        return {
            "years": time - self.scenario.start,
            "birth_rate": births,
            "death_rate": deaths,
            "build_rate": np.where(np.isnan(inputs.build_rate), self.max_build_rate, inputs.build_rate),
            "follow_inflow": inputs.staff_moved * self.follow_factor,  # persons/year this month
            "friction": self._friction(inputs.control, inputs.travel_time),
        }

    def note_moves(self, staff_moved: np.ndarray) -> tuple[np.ndarray, ...]:
        """Households follow only between pairs that have moved staff (the other pairs' stages stay exactly
        zero): the pairs so far with staff moved this month added, as (origin, destination, from origin,
        into destination, into the same province), kept until a new pair moves."""
        if staff_moved.any():
            moving = self._moving_pairs | (staff_moved != 0).any(axis=0)
            if (moving != self._moving_pairs).any():
                self._moving_pairs, self._pairs = moving, None
        if self._pairs is None:
            origin, destination = np.nonzero(self._moving_pairs)
            from_origin, into_destination = self._unit[origin], self._unit[destination]  # (pair, region)
            into_same = into_destination * self.same[origin, destination][:, None]
            self._pairs = origin, destination, from_origin, into_destination, into_same
        return self._pairs

    def _friction(self, control: np.ndarray, travel_time: np.ndarray) -> np.ndarray:
        """``migration_friction``, kept while the levers are the same read-only arrays (the coupled model's
        timeline hands the same objects until a lever changes; a month's advance and the next observation
        share them)."""
        kept = self._kept_friction
        if kept is not None and kept[0] is control and kept[1] is travel_time:
            return kept[2]
        friction = migration_friction(self.params, control, travel_time)
        if all(not a.flags.writeable and a.flags.owndata for a in (control, travel_time)):  # immutable
            self._kept_friction = control, travel_time, friction
        return friction

    def derivative(self, time: float, inputs: MonthInputs, population_only: bool = False):
        """The stocks' derivative for this month's inputs (pure: RK4 calls it four times).

        ``population_only``: the population's rates alone (population, births, deaths, departures to the
        rest of China and the migration flows), what ``observe`` records, by the same operations."""
        p, extra = self.params, self._rates_for(time, inputs)
        follow_drain, construction_drain = self._drains
        origin, destination, from_origin, into_destination, into_same = self.note_moves(inputs.staff_moved)
        follow_inflow = extra["follow_inflow"][:, origin, destination]

        def derivative(t: float, s: Mapping[str, np.ndarray]) -> dict[str, Any]:
            population, housing = s["population"], s["housing"]
            total = population[:, REGISTERED] + population[:, MIGRANT]
            services = s["local_services"] + inputs.services
            removed = housing_removed(p, housing, inputs.housing_removal, inputs.housing_cap, inputs.cap_time)
            flows = migration_balance(
                p,
                self.logit_base_rates,
                population,
                total,
                housing,
                inputs.jobs,
                services,
                extra["friction"],
                inputs.control,
                extra["years"],
                displaced_share(removed, housing),
            )
            following = s["households_following"]
            if len(origin):
                d_pairs, arriving = _delay3(follow_inflow, following[:, origin, destination], follow_drain)
            else:
                arriving = np.zeros((len(following), 0))
            births = extra["birth_rate"] * population
            deaths = extra["death_rate"] * population
            registering = p.registration_rate * population[:, MIGRANT]
            change = births - deaths + flows.change
            arriving_same = arriving @ into_same  # (run, region), sums over the moving pairs
            change[:, REGISTERED] += registering - arriving @ from_origin + arriving_same
            change[:, MIGRANT] += -registering + (arriving @ into_destination - arriving_same)
            rates = {
                "population": change,
                "births_cum": births[:, REGISTERED] + births[:, MIGRANT],
                "deaths_cum": deaths[:, REGISTERED] + deaths[:, MIGRANT],
                "out_to_outside_cum": flows.to_outside[:, REGISTERED] + flows.to_outside[:, MIGRANT],
                "_flows": flows,
            }
            if population_only:
                return rates
            d_following = np.zeros(following.shape)
            if len(origin):
                d_following[:, origin, destination] = d_pairs
            construction = s["housing_in_construction"]
            in_construction = construction[..., 0] + construction[..., 1] + construction[..., 2]
            starts = housing_starts(p, total, housing, in_construction, extra["build_rate"], inputs.housing_cap)
            d_construction, completions = _delay3(starts, construction, construction_drain)
            return {
                **rates,
                "housing": completions - removed,
                "housing_in_construction": d_construction,
                "local_services": smooth(
                    p.local_service_norm * total, s["local_services"], p.service_adjustment_time[:, None]
                ),
                "households_following": d_following,
                "in_from_outside_cum": flows.from_outside,
            }

        return derivative

    def receive(self, inputs: MonthInputs) -> None:
        """Housing delivered by finished projects at the start of the month (before the agents act)."""
        self.state["housing"] = self.state["housing"] + inputs.housing_added

    def advance(self, time: float, inputs: MonthInputs, substeps: int = 1) -> None:
        """The stocks advance by one month from ``time`` (after ``receive`` and the agents).

        ``substeps`` > 1 integrates the month in that many steps with the month's inputs held:
        the integration-error check (Sterman ch. 21) halves the step this way.
        """
        derivative = self.derivative(time, inputs)

        def stocks(t: float, s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            rates = derivative(t, s)
            del rates["_flows"]
            return rates

        for i in range(substeps):
            self.state = step(stocks, time + i * DT / substeps, self.state, DT / substeps, self.scenario.method)

    def observe(
        self, time: float, inputs: MonthInputs, outputs: Sequence[str] = STOCK_FLOW_OUTPUTS
    ) -> dict[str, np.ndarray]:
        """The stock-and-flow outputs now (those of ``STOCK_FLOW_OUTPUTS`` asked for), each (run, ...).

        The rates (net migration, migration, arrivals, departures) take one evaluation of the
        derivative; outputs of stocks alone do not.
        """
        s = self.state
        shape = (self.runs, len(self.regions))
        observed = {
            "population": lambda: s["population"][:, REGISTERED] + s["population"][:, MIGRANT],
            "migrant_population": lambda: s["population"][:, MIGRANT],
            "housing_capacity": lambda: s["housing"],
            "service_capacity": lambda: s["local_services"] + inputs.services,
            "births_cum": lambda: s["births_cum"],
            "deaths_cum": lambda: s["deaths_cum"],
            "in_from_outside_cum": lambda: s["in_from_outside_cum"],
            "out_to_outside_cum": lambda: s["out_to_outside_cum"],
            "admission_control": lambda: np.broadcast_to(inputs.control, shape),
        }
        out = {k: observed[k]() for k in outputs if k in observed}
        if any(k not in observed for k in outputs):
            quiet = replace(inputs, staff_moved=np.zeros_like(inputs.staff_moved))
            rates = self.derivative(time, quiet, population_only=True)(time, s)  # the population equation itself
            flows = rates["_flows"]
            out |= {
                "net_migration": rates["population"][:, REGISTERED]
                + rates["population"][:, MIGRANT]
                - rates["births_cum"]
                + rates["deaths_cum"],
                "migration": np.einsum("rgi,rgij->rij", flows.movers, flows.shares),
                "in_from_outside": flows.from_outside,
                "out_to_outside": rates["out_to_outside_cum"],
            }
        return {k: out[k] for k in outputs}


def _delay3(inflow: np.ndarray, stages: np.ndarray, drain_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sim.engine.material_delay`` of order 3 with the drain rate (order / delay time) given: fewer temporaries."""
    drain = stages * drain_rate[..., None]
    rate = np.empty_like(drain)
    rate[..., 0] = inflow - drain[..., 0]
    rate[..., 1] = drain[..., 0] - drain[..., 1]
    rate[..., 2] = drain[..., 1] - drain[..., 2]
    return rate, drain[..., 2]


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
    compiled: bool = False,
    substeps: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Integrate a batch of parameter sets of the stock-and-flow part with recorded agent effects.

    ``substeps`` > 1 takes that many integration steps a month, the agents' effects held
    as the month's inputs (a smaller step for the integration-error check).

    Returns the times and each output as (time, run, ...), like ``sim.model.History``.
    ``compiled=True`` integrates with the numba kernel (``sim.stockflow_kernel``, the ``fast``
    extra): stock outputs only, equal to these equations to rounding, tens of times faster.
    """
    values = stack_parameters(scenario, overrides)
    model = StockFlow(scenario, values, effects.start, source=f"overrides of {scenario.path}", compiled=compiled)
    if compiled:
        from sim.stockflow_kernel import replay_stocks  # numba: an optional dependency

        return replay_stocks(model, effects, outputs)
    months = len(effects.months)
    frames: dict[str, np.ndarray] = {}
    for month in range(months + 1):
        time = scenario.start + month * DT
        observed = model.observe(time, effects.at(month - 1), outputs)
        for key in outputs:
            if key not in frames:  # each output written in place: no list of copies to stack
                frames[key] = np.empty((months + 1, *np.shape(observed[key])))
            frames[key][month] = observed[key]
        if month < months:
            model.receive(effects.at(month))
            model.advance(time, effects.at(month), substeps)
    times = scenario.start + np.arange(months + 1) * DT
    return times, frames
