"""The stock-and-flow part of a scenario as an XMILE 1.0 file (Stella, PySD): docs/xmile.md.

XMILE cannot express the firm and institution agents or the dated policy timeline, so the
export runs the coupled model once for the chosen scenario and seed, records what the agents
and the timeline hand the stocks each month (``sim.stockflow.AgentEffects``: jobs, institution
services, levers, staff moved, housing delivered) and writes those as time-series inputs
(discrete graphical functions over the month index). Everything else is written out as
equations: the two registration groups x eight regions, housing with its construction DELAY3
stages, local services, households following relocated staff (DELAY3 stages per origin-
destination pair that ever moves staff), and every utility, inclusive value, move
probability and logit share as its own named variable. Regions are flattened into names
(``registered_bj_core``) and sums are written term by term, because PySD's XMILE reader has
no SUM over arrays. Integrated with Euler at dt = 1/12 year, the file reproduces the
project's own Euler integration of the same inputs (``project_stocks``; tests/test_xmile.py).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sim.parameters import stack_parameters
from sim.population import FLOOR, GROUPS, MIGRANT, REGISTERED
from sim.scenario import PARAMETERS, Scenario
from sim.stockflow import DELAY_ORDER, DT, AgentEffects, StockFlow

NAMESPACE = "http://docs.oasis-open.org/xmile/ns/XMILE/v1.0"
NO_CAP = 1e30  # stands for "no housing cap" (inf in the project): min(P, 1e30) = P exactly
STEPS_PER_YEAR = 12
assert math.isclose(DT * STEPS_PER_YEAR, 1.0)

# the stock-and-flow parameters written as constants: XMILE name -> (group.name in parameters.toml)
SCALAR_PARAMETERS = {
    "migrant_mobility": "population.migrant_mobility",
    "move_sensitivity": "population.move_sensitivity",
    "outside_in_migration": "population.outside_in_migration",
    "outside_capture": "population.outside_capture",
    "outside_trend": "population.outside_trend",
    "jobs_weight": "population.jobs_weight",
    "housing_weight": "population.housing_weight",
    "services_weight": "population.services_weight",
    "travel_time_weight": "population.travel_time_weight",
    "registration_tie": "population.registration_tie",
    "target_occupancy": "housing.target_occupancy",
    "housing_adjustment_time": "housing.adjustment_time",
    "construction_time": "housing.construction_time",
    "service_adjustment_time": "services.adjustment_time",
    "household_follow_share": "institutions.household_follow_share",
    "household_size": "institutions.household_size",
    "follow_time": "institutions.follow_time",
}
REGION_PARAMETERS = {
    "out_migration_rate": "population.out_migration_rate",
    "registration_rate": "population.registration_rate",
    "max_build_rate": "housing.max_build_rate",
}


@dataclass
class _Variable:
    kind: str  # stock, flow or aux
    name: str
    eqn: str
    units: str = ""
    doc: str = ""
    inflows: list[str] = field(default_factory=list)
    outflows: list[str] = field(default_factory=list)
    gf: tuple[np.ndarray, np.ndarray] | None = None  # discrete graphical function of eqn: (x, y)


def _number(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


def _units(text: str) -> str:
    """XMILE unit text: the project's units, with prose ('utility per log(jobs/resident)') reduced to 'utility'."""
    if text == "1":
        return "dmnl"
    if " per " in text or "(" in text:
        return "utility" if text.startswith("utility") else "dmnl"
    return text


class _Builder:
    """Collects the variables of the flattened model, then writes them as XMILE."""

    def __init__(self, months: int) -> None:
        self.months = months
        self.variables: dict[str, _Variable] = {}

    def add(self, kind: str, name: str, eqn: str | float, units: str = "", doc: str = "") -> str:
        if name.lower() in (k.lower() for k in self.variables):
            raise ValueError(f"duplicate XMILE name {name}")
        text = _number(eqn) if isinstance(eqn, float | int | np.floating) else eqn
        self.variables[name] = _Variable(kind, name, text, units, doc)
        return name

    def constant(self, name: str, value: float, units: str, doc: str) -> str:
        return self.add("aux", name, float(value), units, doc)

    def stock(self, name: str, initial: str | float, units: str, doc: str) -> str:
        return self.add("stock", name, initial, units, doc)

    def flow(self, name: str, eqn: str, units: str, doc: str, source: str | None, sink: str | None) -> str:
        self.add("flow", name, eqn, units, doc)
        if source is not None:
            self.variables[source].outflows.append(name)
        if sink is not None:
            self.variables[sink].inflows.append(name)
        return name

    def series(self, name: str, values: np.ndarray, units: str, doc: str) -> str:
        """A monthly input: a constant if it never changes, else a discrete graphical function of the month."""
        values = np.asarray(values, float)
        if (values == values[0]).all():
            return self.constant(name, values[0], units, f"{doc} (input; constant over the horizon)")
        # points on both sides of each change (m - 1 and m), so that linear interpolation (PySD reads inline
        # graphical functions as continuous) and steps (discrete) agree at every whole month
        change = np.flatnonzero(np.diff(values)) + 1
        months = np.unique(np.concatenate([[0], change - 1, change, [len(values) - 1]]))
        x, y = months.astype(float), values[months]
        if x[-1] != self.months:  # a last point at the final month, so no reader extrapolates
            x, y = np.append(x, self.months), np.append(y, values[-1])
        name = self.add("aux", name, "month", units, f"{doc} (input: value of each month, held through the month)")
        self.variables[name].gf = (x, y)
        return name

    def element(self, v: _Variable) -> ET.Element:
        node = ET.Element(v.kind, name=v.name)
        ET.SubElement(node, "eqn").text = v.eqn
        for tag in ("inflow", "outflow"):
            for name in getattr(v, tag + "s"):
                ET.SubElement(node, tag).text = name
        if v.kind in ("stock", "flow"):
            # the project never clips: a stock or flow stays as computed (XMILE readers may default otherwise)
            ET.SubElement(node, "non_negative").text = "false"
        if v.gf is not None:
            gf = ET.SubElement(node, "gf", type="discrete")
            ET.SubElement(gf, "yscale", min=_number(v.gf[1].min()), max=_number(v.gf[1].max()))
            ET.SubElement(gf, "xpts").text = ",".join(_number(x) for x in v.gf[0])
            ET.SubElement(gf, "ypts").text = ",".join(_number(y) for y in v.gf[1])
        if v.units:
            ET.SubElement(node, "units").text = v.units
        if v.doc:
            ET.SubElement(node, "doc").text = v.doc
        return node


def _staff_pairs(effects: AgentEffects) -> np.ndarray:
    """(origin, destination) pairs that ever move staff: the pairs with following-household stocks."""
    return _stack(effects, "staff_moved").any(axis=0)


def _stack(effects: AgentEffects, name: str) -> np.ndarray:
    """One input of run 0 over the months: (month, ...)."""
    return np.stack([np.broadcast_to(getattr(m, name), getattr(effects.start, name).shape)[0] for m in effects.months])


def xmile_text(scenario: Scenario, effects: AgentEffects, seed: int) -> str:
    """The XMILE document of ``scenario``'s stock-and-flow part driven by ``effects`` (recorded with ``seed``)."""
    regions, codes = scenario.regions, scenario.regions.codes
    months = len(effects.months)
    values = stack_parameters(scenario, [{}])
    model = StockFlow(scenario, values, effects.start)
    p = model.params
    same = regions.same_province
    b = _Builder(months)

    # -- time -----------------------------------------------------------------------------------
    b.add(
        "aux",
        "month",
        f"INT((TIME - {scenario.start}) * {STEPS_PER_YEAR} + 0.001)",
        "month",
        "months since the start (0 in the first month); indexes the monthly inputs, robust to rounding of TIME",
    )
    b.add("aux", "years_since_start", f"month / {STEPS_PER_YEAR}", "year", "years since the start, held for the month")

    # -- parameters and data --------------------------------------------------------------------
    for name, key in SCALAR_PARAMETERS.items():
        group, short = key.split(".")
        meta = PARAMETERS[group][short]
        b.constant(name, values[key][0], _units(meta["unit"]), f"{key} [{meta['unit']}]: {meta['doc']}")
    b.constant("log_floor", FLOOR, "dmnl", "smallest ratio inside a logarithm (sim.population.FLOOR)")
    for name, key in REGION_PARAMETERS.items():
        group, short = key.split(".")
        meta = PARAMETERS[group][short]
        for r, code in enumerate(codes):
            b.constant(
                f"{name}_{code}", values[key][0][r], _units(meta["unit"]), f"{key} [{meta['unit']}]: {meta['doc']}"
            )
    for r, code in enumerate(codes):
        b.constant(f"population_2014_{code}", regions.population_2014[r], "persons", "regions.csv population_2014")
        b.constant(
            f"migrant_share_2014_{code}", regions.migrant_share_2014[r], "dmnl", "regions.csv migrant_share_2014"
        )
        b.constant(f"occupancy_2014_{code}", regions.occupancy_2014[r], "dmnl", "regions.csv occupancy_2014")
        b.constant(
            f"local_service_norm_{code}",
            p.local_service_norm[0, r],
            "dmnl",
            "persons served per resident by local services: the 2014 capacity less the institutions' (docs/model.md 5)",
        )
        b.constant(
            f"region_constant_{code}",
            p.region_constant[0, r],
            "utility",
            "alpha, fitted at the start so that 2014 net migration equals the observed trend (docs/model.md 9)",
        )
        for g, group in enumerate(GROUPS):
            b.constant(
                f"move_gap_2014_{group}_{code}",
                p.move_gap_2014[0, g, r],
                "utility",
                "inclusive value of leaving minus own attraction at the start (fitted, docs/model.md 4)",
            )
    b.constant(
        "elsewhere_utility", p.elsewhere_utility[0], "utility", "E: the rest of China's own pull (fitted at the start)"
    )
    months_of_year = [scenario.start + m * DT for m in range(months)]
    vital = np.array([np.stack(regions.vital_rates(t)) for t in months_of_year])  # (month, 2, region)
    for r, code in enumerate(codes):
        b.series(f"birth_rate_{code}", vital[:, 0, r], "1/year", "birth rate by calendar year (vital_rates.csv)")
        b.series(f"death_rate_{code}", vital[:, 1, r], "1/year", "death rate by calendar year (vital_rates.csv)")

    # -- the agents' and the timeline's effects as inputs ---------------------------------------
    jobs, services, control = (_stack(effects, k) for k in ("jobs", "services", "control"))
    travel, removal, build = (_stack(effects, k) for k in ("travel_time", "housing_removal", "build_rate"))
    cap, cap_time = _stack(effects, "housing_cap"), _stack(effects, "cap_time")
    staff, delivered = _stack(effects, "staff_moved"), _stack(effects, "housing_added")
    for r, code in enumerate(codes):
        b.series(f"jobs_{code}", jobs[:, r], "jobs", "jobs in firms and institutions (agents)")
        b.series(
            f"institution_services_{code}",
            services[:, r],
            "persons served",
            "service capacity of institutions and finished construction projects (agents, timeline)",
        )
        b.series(f"admission_control_{code}", control[:, r], "utility", "admission-control penalty (policy lever)")
        b.series(f"demolition_rate_{code}", removal[:, r], "1/year", "housing demolition rate (policy lever)")
        land = ~np.isnan(build[:, r])
        if land.any():
            b.series(f"land_release_{code}", land.astype(float), "dmnl", "1 where a land release sets the build rate")
            b.series(
                f"land_release_rate_{code}",
                np.nan_to_num(build[:, r]),
                "1/year",
                "housing start rate allowed by the land release (policy lever)",
            )
            b.add(
                "aux",
                f"build_rate_{code}",
                f"IF land_release_{code} > 0.5 THEN land_release_rate_{code} ELSE max_build_rate_{code}",
                "1/year",
                "largest housing start rate",
            )
        else:
            b.add("aux", f"build_rate_{code}", f"max_build_rate_{code}", "1/year", "largest housing start rate")
        if np.isfinite(cap[:, r]).any():
            b.series(
                f"housing_cap_{code}",
                np.where(np.isfinite(cap[:, r]), cap[:, r], NO_CAP),
                "persons",
                f"residents a housing cap allows ({NO_CAP:g} = none; policy lever)",
            )
            b.series(f"cap_time_{code}", cap_time[:, r], "year", "years over which housing above the cap is removed")
        if delivered[:, r].any():
            b.series(
                f"housing_delivered_{code}",
                delivered[:, r],
                "persons",
                "housing capacity delivered by finished construction projects at the month's start (timeline)",
            )
        for j, dest in enumerate(codes):
            if j != r:
                b.series(f"travel_time_{code}_to_{dest}", travel[:, r, j], "hour", "travel time (policy lever)")
    pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(_staff_pairs(effects)))]
    for i, j in pairs:
        b.series(
            f"staff_moved_{codes[i]}_to_{codes[j]}",
            staff[:, i, j],
            "persons",
            "staff of institutions moved this month (agents, timeline)",
        )

    # -- stocks ---------------------------------------------------------------------------------
    group_stock = {}
    for g, group in enumerate(GROUPS):
        for code in codes:
            initial = (
                f"population_2014_{code} - population_2014_{code} * migrant_share_2014_{code}"
                if g == REGISTERED
                else f"population_2014_{code} * migrant_share_2014_{code}"
            )
            doc = "residents holding the local registration (hukou)" if g == REGISTERED else "migrant residents"
            group_stock[g, code] = b.stock(f"{group}_{code}", initial, "persons", doc)
    for code in codes:
        b.stock(f"housing_{code}", f"population_2014_{code} / occupancy_2014_{code}", "persons", "housing capacity")
        for k in range(1, DELAY_ORDER + 1):
            b.stock(f"housing_in_construction_{k}_{code}", 0.0, "persons", f"housing under construction, stage {k}")
        b.stock(
            f"local_services_{code}",
            f"local_service_norm_{code} * population_2014_{code}",
            "persons served",
            "local public services (SMOOTH of the norm times residents)",
        )
        for what in ("births", "deaths", "in_from_outside", "out_to_outside"):
            b.stock(f"{what}_cum_{code}", 0.0, "persons", f"{what.replace('_', ' ')} since the start")
    for i, j in pairs:
        for k in range(1, DELAY_ORDER + 1):
            b.stock(
                f"households_following_{k}_{codes[i]}_to_{codes[j]}",
                0.0,
                "persons",
                f"households following relocated staff in transit, stage {k} (DELAY3)",
            )

    # -- auxiliaries ----------------------------------------------------------------------------
    for code in codes:
        b.add("aux", f"residents_{code}", f"registered_{code} + migrant_{code}", "persons", "resident population")
        extra = f" + housing_delivered_{code}" if f"housing_delivered_{code}" in b.variables else ""
        b.add(
            "aux",
            f"housing_available_{code}",
            f"housing_{code}{extra}",
            "persons",
            "housing capacity after this month's deliveries (which the model adds at the month's start)",
        )
        b.add(
            "aux",
            f"services_{code}",
            f"local_services_{code} + institution_services_{code}",
            "persons served",
            "public-service capacity",
        )
        b.add(
            "aux",
            f"attraction_{code}",
            f"region_constant_{code} + jobs_weight * LN(MAX(jobs_{code} / residents_{code}, log_floor))"
            f" - housing_weight * MIN(residents_{code} / housing_available_{code}, 1 / log_floor)"
            f" + services_weight * LN(MAX(services_{code} / residents_{code}, log_floor))",
            "utility",
            "how good the region is to live in (docs/model.md 4)",
        )
    for i, origin in enumerate(codes):
        for group in GROUPS:
            # registered residents who leave their province give up the registration's access: the tie
            for j, dest in enumerate(codes):
                if i == j:
                    continue
                cross = "" if same[i, j] else f" - admission_control_{dest}"
                if group == "registered" and not same[i, j]:
                    cross += " - registration_tie"
                b.add(
                    "aux",
                    f"utility_{group}_{origin}_to_{dest}",
                    f"attraction_{dest} - travel_time_weight * travel_time_{origin}_to_{dest}{cross}",
                    "utility",
                    "utility of moving from origin to destination",
                )
            outside = "-registration_tie" if group == "registered" else "0"
            b.add("aux", f"outside_utility_{group}_{origin}", outside, "utility", "utility of the rest of China")
            terms = " + ".join(f"EXP(utility_{group}_{origin}_to_{dest})" for dest in codes if dest != origin)
            b.add(
                "aux",
                f"inclusive_value_{group}_{origin}",
                f"LN({terms} + EXP(outside_utility_{group}_{origin}))",
                "utility",
                "inclusive value of leaving",
            )
            b.add(
                "aux",
                f"move_gap_{group}_{origin}",
                f"inclusive_value_{group}_{origin} - attraction_{origin} - move_gap_2014_{group}_{origin}",
                "utility",
                "how much better leaving looks than staying, relative to the start",
            )
            for dest in codes:
                if dest != origin:
                    b.add(
                        "aux",
                        f"share_{group}_{origin}_to_{dest}",
                        f"EXP(utility_{group}_{origin}_to_{dest} - inclusive_value_{group}_{origin})",
                        "dmnl",
                        "logit share of movers choosing the destination",
                    )
            b.add(
                "aux",
                f"share_{group}_{origin}_to_outside",
                f"EXP(outside_utility_{group}_{origin} - inclusive_value_{group}_{origin})",
                "dmnl",
                "logit share of movers leaving for the rest of China",
            )
        ratio = f"(1 - migrant_share_2014_{origin} + migrant_share_2014_{origin} * migrant_mobility)"
        b.add(
            "aux",
            f"base_move_rate_registered_{origin}",
            f"out_migration_rate_{origin} / {ratio}",
            "1/year",
            "2014 move probability of registered residents",
        )
        b.add(
            "aux",
            f"base_move_rate_migrant_{origin}",
            f"MIN(base_move_rate_registered_{origin} * migrant_mobility, 0.99)",
            "1/year",
            "2014 move probability of migrants",
        )
        for group in GROUPS:
            base = f"base_move_rate_{group}_{origin}"
            b.add(
                "aux",
                f"move_probability_{group}_{origin}",
                f"1 / (1 + EXP(-(LN({base} / (1 - {base})) + move_sensitivity * move_gap_{group}_{origin})))",
                "1/year",
                "probability per year of moving out: expit(logit(base rate) + sensitivity * gap)",
            )
            b.add(
                "aux",
                f"movers_{group}_{origin}",
                f"(move_probability_{group}_{origin} + housing_removed_{origin} / housing_available_{origin})"
                f" * {group}_{origin}",
                "persons/year",
                "residents moving out: by choice, and those whose homes are demolished",
            )
    b.add(
        "aux",
        "outside_pool",
        "outside_in_migration / outside_capture * EXP(outside_trend * years_since_start)",
        "persons/year",
        "movers of the rest of China who consider the modelled regions",
    )
    for code in codes:
        b.add(
            "aux",
            f"outside_pull_{code}",
            f"EXP(attraction_{code} - admission_control_{code})",
            "dmnl",
            "weight of the region for movers from the rest of China",
        )
    pulls = " + ".join(f"outside_pull_{code}" for code in codes)
    b.add("aux", "outside_pulls", f"EXP(elsewhere_utility) + {pulls}", "dmnl", "logit denominator")
    for code in codes:
        b.add(
            "aux",
            f"housing_in_construction_{code}",
            " + ".join(f"housing_in_construction_{k}_{code}" for k in range(1, DELAY_ORDER + 1)),
            "persons",
            "housing under construction (the DELAY3 stages)",
        )

    # -- flows ----------------------------------------------------------------------------------
    for g, group in enumerate(GROUPS):
        for i, origin in enumerate(codes):
            for j, dest in enumerate(codes):
                if i == j:
                    continue
                into = g if (g == MIGRANT or same[i, j]) else MIGRANT
                b.flow(
                    f"move_{group}_{origin}_to_{dest}",
                    f"movers_{group}_{origin} * share_{group}_{origin}_to_{dest}",
                    "persons/year",
                    "migration; registered residents arrive in another province as migrants",
                    group_stock[g, origin],
                    group_stock[into, dest],
                )
            b.flow(
                f"leave_{group}_{origin}",
                f"movers_{group}_{origin} * share_{group}_{origin}_to_outside",
                "persons/year",
                "migration to the rest of China",
                group_stock[g, origin],
                None,
            )
            b.flow(
                f"births_{group}_{origin}",
                f"birth_rate_{origin} * {group}_{origin}",
                "persons/year",
                "births",
                None,
                group_stock[g, origin],
            )
            b.flow(
                f"deaths_{group}_{origin}",
                f"death_rate_{origin} * {group}_{origin}",
                "persons/year",
                "deaths",
                group_stock[g, origin],
                None,
            )
    for code in codes:
        arrivals = f"outside_pool * outside_pull_{code} / outside_pulls"
        b.flow(
            f"arrive_{code}",
            arrivals,
            "persons/year",
            "arrivals from the rest of China (migrants)",
            None,
            group_stock[MIGRANT, code],
        )
        b.flow(
            f"registering_{code}",
            f"registration_rate_{code} * migrant_{code}",
            "persons/year",
            "migrants gaining the local registration",
            group_stock[MIGRANT, code],
            group_stock[REGISTERED, code],
        )
        # counters: their own flows, equal to the sums of the flows above
        b.flow(
            f"count_births_{code}",
            f"births_registered_{code} + births_migrant_{code}",
            "persons/year",
            "births",
            None,
            f"births_cum_{code}",
        )
        b.flow(
            f"count_deaths_{code}",
            f"deaths_registered_{code} + deaths_migrant_{code}",
            "persons/year",
            "deaths",
            None,
            f"deaths_cum_{code}",
        )
        b.flow(
            f"count_in_from_outside_{code}", arrivals, "persons/year", "arrivals", None, f"in_from_outside_cum_{code}"
        )
        b.flow(
            f"count_out_to_outside_{code}",
            f"leave_registered_{code} + leave_migrant_{code}",
            "persons/year",
            "departures to the rest of China",
            None,
            f"out_to_outside_cum_{code}",
        )
    for i, j in pairs:
        origin, dest = codes[i], codes[j]
        pair = f"{origin}_to_{dest}"
        stages = [f"households_following_{k}_{pair}" for k in range(1, DELAY_ORDER + 1)]
        b.flow(
            f"following_start_{pair}",
            f"staff_moved_{pair} * household_follow_share * household_size * {STEPS_PER_YEAR}",
            "persons/year",
            "households of moved staff starting to follow (for the month of the move)",
            None,
            stages[0],
        )
        for k, stage in enumerate(stages):
            b.flow(
                f"following_stage_{k + 1}_{pair}",
                f"{stage} * {DELAY_ORDER} / follow_time",
                "persons/year",
                f"DELAY3 stage {k + 1} draining",
                stage,
                stages[k + 1] if k + 1 < DELAY_ORDER else None,
            )
        b.flow(
            f"households_arriving_{pair}",
            f"following_stage_{DELAY_ORDER}_{pair}",
            "persons/year",
            "following households arriving (counted in their origin until then)",
            group_stock[REGISTERED, origin],
            group_stock[REGISTERED if same[i, j] else MIGRANT, dest],
        )
    for code in codes:
        capped = f"housing_cap_{code}" in b.variables
        wanted = f"MIN(residents_{code}, housing_cap_{code})" if capped else f"residents_{code}"
        stages = [f"housing_in_construction_{k}_{code}" for k in range(1, DELAY_ORDER + 1)]
        b.flow(
            f"housing_starts_{code}",
            f"MIN(MAX(({wanted} / target_occupancy - housing_available_{code} - housing_in_construction_{code})"
            f" / housing_adjustment_time, 0), build_rate_{code} * housing_available_{code})",
            "persons/year",
            "housing put into construction",
            None,
            stages[0],
        )
        for k, stage in enumerate(stages):
            b.flow(
                f"construction_stage_{k + 1}_{code}",
                f"{stage} * {DELAY_ORDER} / construction_time",
                "persons/year",
                f"DELAY3 stage {k + 1} draining" + ("; completions" if k + 1 == DELAY_ORDER else ""),
                stage,
                stages[k + 1] if k + 1 < DELAY_ORDER else f"housing_{code}",
            )
        excess = (
            f" + MAX(housing_available_{code} - housing_cap_{code} / target_occupancy, 0) / cap_time_{code}"
            if capped
            else ""
        )
        b.flow(
            f"housing_removed_{code}",
            f"demolition_rate_{code} * housing_available_{code}{excess}",
            "persons/year",
            "housing demolished: campaigns plus any excess over a cap",
            f"housing_{code}",
            None,
        )
        if f"housing_delivered_{code}" in b.variables:
            b.flow(
                f"housing_delivery_{code}",
                f"housing_delivered_{code} * {STEPS_PER_YEAR}",
                "persons/year",
                "capacity of finished construction projects, delivered within the month",
                None,
                f"housing_{code}",
            )
        b.flow(
            f"local_services_change_{code}",
            f"(local_service_norm_{code} * residents_{code} - local_services_{code}) / service_adjustment_time",
            "persons served/year",
            "SMOOTH towards the norm",
            None,
            f"local_services_{code}",
        )
    return _document(scenario, seed, b, pairs)


def _document(scenario: Scenario, seed: int, b: _Builder, pairs: Sequence[tuple[int, int]]) -> str:
    root = ET.Element("xmile", version="1.0", xmlns=NAMESPACE)
    header = ET.SubElement(root, "header")
    ET.SubElement(header, "vendor").text = "beijing-relocation-sim"
    ET.SubElement(header, "product", version="0.1.0", lang="en").text = "sim"
    ET.SubElement(header, "name").text = f"{scenario.name}, stock-and-flow part (seed {seed})"
    specs = ET.SubElement(root, "sim_specs", method="Euler" if scenario.method == "euler" else "RK4", time_units="year")
    ET.SubElement(specs, "start").text = str(scenario.start)
    ET.SubElement(specs, "stop").text = str(scenario.end)
    ET.SubElement(specs, "dt", reciprocal="true").text = str(STEPS_PER_YEAR)
    variables = ET.SubElement(ET.SubElement(root, "model"), "variables")
    for v in b.variables.values():
        variables.append(b.element(v))
    ET.indent(root, space="  ")
    moved = ", ".join(f"{scenario.regions.codes[i]} to {scenario.regions.codes[j]}" for i, j in pairs) or "none"
    note = f"""
  The stock-and-flow part of the sim scenario '{scenario.name}' ({scenario.path.name}), {scenario.start}-{scenario.end},
  seed {seed}, written by sim.xmile (docs/xmile.md; equations in docs/model.md sections 4-5).
  AGENTS AND EVENTS ARE REPLACED BY INPUTS: the firm and institution agents and the dated policy timeline
  cannot be written in XMILE, so their effects on the stocks in one coupled run of this scenario and seed
  ({scenario.method} integration) are time-series inputs here (discrete graphical functions of 'month'):
  jobs, institution services, admission control, travel times, demolition, land release, housing caps,
  staff moved (households follow for the pairs {moved}) and housing delivered. With other parameters
  this file holds the agents' behaviour fixed: they do not answer the changed population.
  Regions are flattened into names and sums written term by term (PySD's XMILE reader has no SUM over
  arrays). Stocks and flows are never clipped at zero. Time settings: dt = 1/12 year; with Euler the file
  reproduces the project's Euler integration of the same inputs (tests/test_xmile.py).
"""
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n<!--{note}-->\n{body}\n'


def record_effects(scenario: Scenario, seed: int | None = None) -> AgentEffects:
    """The agents' and the timeline's effects in one coupled run of ``scenario`` with ``seed``."""
    from sim.model import Model  # the agents: only needed when recording

    model = Model(scenario, [scenario.seed if seed is None else seed], record_effects=True)
    model.run()
    return model.effects()


def export_xmile(scenario: Scenario, path: str | Path, seed: int | None = None, method: str = "euler") -> Path:
    """Write the stock-and-flow part of ``scenario`` as XMILE 1.0, agents and events as recorded inputs.

    ``method`` ('euler' or 'rk4') is used both for the coupled run that records the inputs and in
    the file's time settings. Returns the path written.
    """
    if method not in ("euler", "rk4"):
        raise ValueError(f"unknown integration method {method!r}; expected 'euler' or 'rk4'")
    scenario = replace(scenario, method=method)
    seed = scenario.seed if seed is None else seed
    path = Path(path)
    path.write_text(xmile_text(scenario, record_effects(scenario, seed), seed), encoding="utf-8")
    return path


def project_stocks(scenario: Scenario, effects: AgentEffects) -> dict[str, np.ndarray]:
    """Every stock of the exported file from the project's own integration (``scenario.method``), by XMILE name.

    Steps ``StockFlow`` exactly as ``sim.stockflow.replay`` does and reads its state at each month,
    before the month's deliveries: (month + 1,) arrays, the start first.
    """
    model = StockFlow(scenario, stack_parameters(scenario, [{}]), effects.start)
    codes = scenario.regions.codes
    states = []
    for month in range(len(effects.months) + 1):
        states.append({k: v[0].copy() for k, v in model.state.items()})
        if month < len(effects.months):
            model.receive(effects.at(month))
            model.advance(scenario.start + month * DT, effects.at(month))
    stacked = {k: np.stack([s[k] for s in states]) for k in states[0]}
    out: dict[str, np.ndarray] = {}
    for r, code in enumerate(codes):
        for g, group in enumerate(GROUPS):
            out[f"{group}_{code}"] = stacked["population"][:, g, r]
        out[f"housing_{code}"] = stacked["housing"][:, r]
        out[f"local_services_{code}"] = stacked["local_services"][:, r]
        for k in range(DELAY_ORDER):
            out[f"housing_in_construction_{k + 1}_{code}"] = stacked["housing_in_construction"][:, r, k]
        for what in ("births", "deaths", "in_from_outside", "out_to_outside"):
            out[f"{what}_cum_{code}"] = stacked[f"{what}_cum"][:, r]
    following = stacked["households_following"]
    for i, j in zip(*np.nonzero(_staff_pairs(effects))):
        for k in range(DELAY_ORDER):
            out[f"households_following_{k + 1}_{codes[i]}_to_{codes[j]}"] = following[:, i, j, k]
    return out
