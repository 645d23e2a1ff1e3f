"""Validation beyond fit (Sterman, Business Dynamics ch. 21): integration error and dimensional consistency."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pint
import pytest
from conftest import SCENARIOS

import sim
from sim.calibration.fit import record_effects
from sim.model import RECORDED
from sim.scenario import PARAMETERS
from sim.space import addresses
from sim.stockflow import STOCK_UNITS, StockFlow, replay

BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]


@pytest.fixture(scope="module")
def historical():
    return sim.load_scenario(SCENARIOS / "historical.toml")


def test_halving_the_step_moves_key_outputs_by_less_than_one_percent(historical):
    """The stock-and-flow part integrated with half a month's step, the agents' effects held as monthly inputs."""
    effects = record_effects(historical, historical.seed)
    outputs = ("population", "migrant_population", "housing_capacity")
    _, monthly = replay(historical, effects, [{}], outputs)
    _, halved = replay(historical, effects, [{}], outputs, substeps=2)
    codes = list(historical.regions.codes)
    beijing = [codes.index(c) for c in BEIJING]
    for name in outputs:
        for month in (72, 144, len(monthly[name]) - 1):  # 2020, 2026, 2035
            a, b = monthly[name][month, 0], halved[name][month, 0]
            assert np.abs(b / a - 1).max() < 0.01, (name, month)
            assert abs(b[beijing].sum() / a[beijing].sum() - 1) < 0.01
    # Beijing's year-on-year changes, the calibration's sharpest targets, move by far less than their 5 10k tolerance
    yearly = monthly["population"][::12, 0][:, beijing].sum(axis=1)
    yearly_halved = halved["population"][::12, 0][:, beijing].sum(axis=1)
    assert np.abs(np.diff(yearly_halved) - np.diff(yearly)).max() < 5000


UNITS = pint.UnitRegistry()
for _countable in ("person", "job", "firm", "project", "application", "institution", "workplace", "household"):
    UNITS.define(f"{_countable}s = [{_countable}] = {_countable}")
UNITS.define("utility = [utility]")


def quantity_unit(text: str):
    """A unit as the model writes it, in pint: notes in parentheses dropped, logs and indices dimensionless.

    "utility per log(jobs/resident)": a logit utility per unit of a log (the log of a ratio to
    its 2014 value, dimensionless); "persons served": persons; "residents per unit of housing
    capacity": housing capacity is counted in the residents it houses, so dimensionless.
    """
    text = re.sub(r"^1\s*\([^()]*\)$", "1", text.strip()) or "1"
    text = re.sub(r" per (log\(.*\)|unit occupancy|unit rent index)$", "", text)
    text = {"residents per unit of housing capacity": "persons/persons", "persons served": "persons"}.get(text, text)
    text = text.replace(" served", "").replace("date", "year").replace("hours", "hour")
    return UNITS.parse_units(text.replace(" per ", "/"))


def test_every_parameter_output_and_address_has_a_unit_pint_reads(historical):
    for group, table in PARAMETERS.items():
        for name, spec in table.items():
            assert spec["unit"], f"{group}.{name} has no unit"
            quantity_unit(spec["unit"])
    for name, (unit, _, _) in RECORDED.items():
        assert unit, f"output {name} has no unit"
        quantity_unit(unit)
    for address in addresses(historical).values():
        if address.type != "bool":
            assert address.unit, f"{address.name} has no unit"
            quantity_unit(address.unit)


def test_each_recorded_flow_is_its_stock_per_year_in_units_and_in_numbers(historical):
    """Each rate output's unit is its stock's per year, and integrating it over the run gives the stock's change.

    A flow accidentally per month (or a stock in other units) would miss by a factor of 12.
    """
    year = UNITS.year
    pairs = {  # flow: (its stock, what else changes the stock)
        "in_from_outside": ("in_from_outside_cum", ()),
        "out_to_outside": ("out_to_outside_cum", ()),
        "net_migration": ("population", ("births_cum", "deaths_cum")),
    }
    ds = sim.run(replace(historical, end=2020))
    for flow, (stock, others) in pairs.items():
        assert quantity_unit(RECORDED[flow][0]) == quantity_unit(RECORDED[stock][0]) / year
        rate = ds[flow].sel(region=BEIJING).sum("region").values
        integrated = np.trapezoid(rate, ds.time.values)
        level = ds[stock].sel(region=BEIJING).sum("region").values
        change = level[-1] - level[0]
        if others:
            births, deaths = (ds[o].sel(region=BEIJING).sum("region").values for o in others)
            change -= (births[-1] - births[0]) - (deaths[-1] - deaths[0])
        assert integrated == pytest.approx(change, rel=0.05, abs=2e4), flow


def test_every_stock_has_a_unit_and_a_rate(historical):
    """Every stock of the stock-and-flow state has a unit pint reads and a derivative (in that unit per year)."""
    effects = record_effects(replace(historical, end=2015), historical.seed)
    values = {k: np.asarray(v, float)[None] for k, v in historical.parameters.items()}
    model = StockFlow(historical, values, effects.start)
    assert set(model.state) == set(STOCK_UNITS)
    for unit in STOCK_UNITS.values():
        quantity_unit(unit)
    rates = model.derivative(historical.start, effects.at(0))(historical.start, model.state)
    assert set(STOCK_UNITS) <= set(rates)


SIGN_VARIES = {
    "Xiong'an construction": "−1.1 to +1.6 10k across the ensemble (median +0.3): a net effect of about 1 10k "
    "either way on Beijing's 2035 level, within the agents' noise; not traced further (docs/calibration.md)",
}
"""Levers whose effect on Beijing's 2035 population changes sign across the ensemble (docs/calibration.md)."""


@pytest.mark.slow
def test_the_sign_of_each_levers_effect_on_beijing_in_2035_holds_across_the_ensemble(historical):
    """Each lever switched off alone, 16 members of the shipped ensemble replayed on each: the sign is shared."""
    from sim.calibration.shapley import _coalition_outcomes, levers, stock_flow_members

    members = stock_flow_members(SCENARIOS.parent / "calibration" / "ensemble.csv", 16)
    scenario = replace(historical, end=2035)
    everything = _coalition_outcomes((scenario, [], members))[:, 1]
    effects = {
        lever: everything - _coalition_outcomes((scenario, names, members))[:, 1]
        for lever, names in levers(scenario).items()
    }
    flips = {lever for lever, effect in effects.items() if len(set(np.sign(effect))) > 1}
    assert flips == set(SIGN_VARIES), {lever: np.round(effect / 1e4, 2) for lever, effect in effects.items()}
