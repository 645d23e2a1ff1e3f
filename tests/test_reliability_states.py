"""Checked states: a negative or non-finite stock is stopped with a clear error, never written as a result.

Three layers: the check itself bites (a bad value injected into every stock is caught and
named); the contract of single runs (StateError, CLI exit 1, no folder) and of batches (the
failing run masked and reported, the others unchanged); and property tests over the full
validated parameter ranges, pairs at their extremes included. The property tests run the
stock-and-flow part with the firm agents held at their 2014 state (``frozen_firms``), so a
21-year batch of hundreds of parameter sets takes seconds; the full model gets a few extreme
pairs on short horizons.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.checks import StateCheck, shipped_defaults, suspects
from sim.cli import main
from sim.errors import InputError, StateError
from sim.model import History, Model
from sim.parameters import stack_parameters
from sim.scenario import PARAMETERS
from sim.stockflow import StockFlow

ROOT = Path(__file__).resolve().parents[1]
HISTORICAL = ROOT / "scenarios" / "historical.toml"
NOT_STOCKS = {"net_migration", "high_end_share_new_entrants"}  # a rate that may be negative; a share of nothing
POPULATION_PART = ("population", "housing", "services", "institutions")
FIRM_PARAMETERS = [f"firms.{name}" for name in PARAMETERS["firms"]]


def scenario(folder: Path, end: int = 2035, method: str = "rk4", extra: str = "") -> sim.Scenario:
    path = folder / f"s_{end}_{method}.toml"
    path.write_text(
        f"extends = '{HISTORICAL.as_posix()}'\nname = 's'\n{extra}\n[run]\nend = {end}\nmethod = '{method}'\n",
        encoding="utf-8",
    )
    return sim.load_scenario(path)


def bounds(key: str) -> tuple[float, float]:
    group, name = key.split(".")
    low, high = PARAMETERS[group][name]["range"]
    return float(low), float(high)


def frozen_firms(model: Model) -> Model:
    """The stock-and-flow part alone: firms keep their 2014 state (jobs as a fixed input), policies still act."""
    model.firms.step = lambda ctx: None
    return model


def run_quietly(model: Model, failures: str = "mask") -> History:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow on the way to the state the check stops
        return model.run(failures=failures)


def assert_checked(history: History, failures: list[dict], runs: int) -> None:
    """The property: every run is either clean (all stocks finite, >= 0) or reported, with NaN from then on."""
    failed = {record["run"]: record for record in failures}
    assert len(failed) == len(failures), "a run is reported once"
    for run in range(runs):
        record = failed.get(run)
        end = len(history.time)
        if record is not None:
            assert record["variable"] and record["error"].count("\n") == 0
            assert f"at {record['time']:.2f}" in record["error"]
            assert record["parameters"], "a failure names the parameters to look at"
            end = int(np.searchsorted(history.time, record["time"] - 1e-5))  # times are rounded to 1e-6
        for name, values in history.values.items():
            before, after = values[:end, run], values[end:, run]
            assert np.isnan(after).all(), f"{name}: a failed run is masked from its failing month"
            if name in NOT_STOCKS:
                continue
            assert np.isfinite(before).all(), f"run {run}: {name} is not finite and was not reported"
            assert (before >= -1e-6 * max(1.0, np.abs(before).max(initial=0))).all(), (
                f"run {run}: {name} is negative ({before.min():.4g}) and was not reported"
            )


# -- the check bites ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> sim.Scenario:
    return scenario(tmp_path_factory.mktemp("short"), end=2015)


STOCKS = ("population", "housing", "housing_in_construction", "local_services", "households_following", "births_cum")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -1.0e3])
@pytest.mark.parametrize("stock", STOCKS)
def test_a_bad_value_in_any_stock_is_caught_and_named(short, monkeypatch, stock, bad) -> None:
    model = Model(short, [4])
    step = model.step

    def spoiled(month: int) -> None:
        step(month)
        if month == 4:
            array = model.stockflow.state[stock].copy()
            array.reshape(-1)[array[0].size - 1] = bad  # the last region (and stage) of the run
            model.stockflow.state[stock] = array

    monkeypatch.setattr(model, "step", spoiled)
    with pytest.raises(StateError) as caught:
        model.run()
    message = str(caught.value)
    assert message.startswith(stock) and "at 2014.42" in message and "seed 4" in message
    assert ("not finite" if not math.isfinite(bad) else "negative") in message
    if stock != "households_following":
        assert f"in {short.regions.codes[-1]}" in message
    assert caught.value.record["variable"] == stock


def test_agent_tallies_are_checked(short, monkeypatch) -> None:
    model = Model(short, [1])
    counts = model.firms.counts

    def broken() -> np.ndarray:
        values = counts().copy()
        values[0, 2, 1] = -5
        return values

    monkeypatch.setattr(model.firms, "counts", broken)
    with pytest.raises(StateError, match=rf"firms in {short.regions.codes[2]} is negative"):
        StateCheck(model)


def test_round_off_is_not_a_failure(short) -> None:
    model = Model(short, [1])
    model.stockflow.state["housing_in_construction"] = model.stockflow.state["housing_in_construction"] - 1e-12
    StateCheck(model)  # no error


def test_suspects_are_the_parameters_furthest_from_their_defaults(tmp_path) -> None:
    sets = [{}, {"population.move_sensitivity": 2.5, "population.jobs_weight": 2.0, "housing.adjustment_time": 49.0}]
    model = Model(scenario(tmp_path, end=2015), [1, 2], sets)
    assert StateCheck(model, "mask").failures == []
    assert suspects("population", model.parameters, 0) == []  # the shipped scenario holds the shipped defaults
    found = suspects("population", model.parameters, 1)
    assert [s["parameter"] for s in found] == ["population.move_sensitivity", "population.jobs_weight"]
    fitted = shipped_defaults()["population.move_sensitivity"]  # calibration/fitted.toml over parameters.toml
    assert (
        found[0]["value"] == 2.5
        and found[0]["default"] == fitted != PARAMETERS["population"]["move_sensitivity"]["value"]
    )
    assert suspects("housing", model.parameters, 1)[0]["parameter"] == "housing.adjustment_time"


# -- single runs and the command line ----------------------------------------------------------------
def break_stocks(monkeypatch: pytest.MonkeyPatch, run: int, month: int, region: str = "xiongan") -> None:
    """From ``month`` on (the state recorded at that month), ``region``'s migrants of ``run`` are negative."""
    advance = StockFlow.advance

    def broken(self, time: float, inputs, *substeps) -> None:
        advance(self, time, inputs, *substeps)  # from the state at ``time`` to the next month's
        if time >= self.scenario.start + (month - 1.5) / 12 and run < self.runs:
            population = self.state["population"].copy()
            population[run, -1, self.regions.index(region)] = -1234.0
            self.state["population"] = population

    monkeypatch.setattr(StockFlow, "advance", broken)


def test_a_failing_run_exits_1_with_one_line_and_writes_no_folder(tmp_path, capsys, monkeypatch) -> None:
    """Finding 2 of issue 8: a run with a negative population exited 0 and wrote it to results.nc."""
    path = tmp_path / "bad.toml"
    path.write_text(
        f"extends = '{HISTORICAL.as_posix()}'\n[population]\nmove_sensitivity = 0.5\n[run]\nend = 2017\n",
        encoding="utf-8",
    )
    break_stocks(monkeypatch, run=0, month=14)
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--no-plots"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "internal error" not in err
    assert "no run folder written" in err and "population in xiongan is negative (-1234) at 2015.17" in err
    assert f"population.move_sensitivity = 0.5 (default {shipped_defaults()['population.move_sensitivity']:g}" in err
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_batch_masks_the_failing_run_and_finishes_the_others(tmp_path, monkeypatch) -> None:
    sc = scenario(tmp_path, end=2017)
    alone = sim.run(sc, 7)
    break_stocks(monkeypatch, run=1, month=20, region="bj_core")
    batch = sim.run_batch(sc, [7, 7], [{}, {"population.jobs_weight": 9.0}])
    (record,) = json.loads(batch.attrs["failures"])
    assert record["run"] == 1 and record["seed"] == 7 and record["variable"] == "population"
    assert record["region"] == "in bj_core" and record["time"] == pytest.approx(2014 + 20 / 12)
    assert record["parameters"] == {"population.jobs_weight": 9.0}
    for name in alone.data_vars:  # the good run is exactly what it is alone
        np.testing.assert_array_equal(batch[name].isel(run=0).values, alone[name].values)
    failed = batch.population.isel(run=1)
    assert np.isnan(failed.isel(time=slice(20, None))).all()
    assert np.isfinite(failed.isel(time=slice(None, 20))).all()
    assert json.loads(alone.attrs["failures"]) == []


def test_the_check_guards_a_replay_of_the_stock_and_flow_part(tmp_path, monkeypatch) -> None:
    """The same check on a bare StockFlow driven by recorded agent effects (how sweeps run the stocks)."""
    sc = scenario(tmp_path, end=2015)
    recorder = Model(sc, [1], record_effects=True)
    recorder.run()
    effects = recorder.effects()
    sets = [{}, {"population.jobs_weight": 9.0}]
    values = stack_parameters(sc, sets)
    stocks = StockFlow(sc, values, effects.start)
    break_stocks(monkeypatch, run=1, month=6)
    check = StateCheck(stocks, "mask", seeds=[1, 1], parameters=values)
    for month, inputs in enumerate(effects.months):

        def advance(inputs=inputs, time=sc.start + month / 12) -> None:
            stocks.receive(inputs)
            stocks.advance(time, inputs)

        check.step(month, advance)
    (record,) = check.failures
    assert record["run"] == 1 and record["parameters"] == {"population.jobs_weight": 9.0}
    assert "population in xiongan is negative (-1234) at 2014.50 (run 1, seed 1" in record["error"]
    assert (stocks.state["population"] >= 0).all(), "the failed run is held at its last good month"


# -- the property over the validated ranges ----------------------------------------------------------
def extreme_pairs(keys: list[str]) -> list[dict[str, float]]:
    """Every pair of parameters, each at its lower or upper bound (4 corners per pair)."""
    sets = []
    for a, b in itertools.combinations(keys, 2):
        for corner in itertools.product((0, 1), repeat=2):
            sets.append({key: bounds(key)[side] for key, side in zip((a, b), corner)})
    return sets


def population_part_batch(sc: sim.Scenario, sets: list[dict[str, float]]) -> tuple[History, list[dict]]:
    model = frozen_firms(Model(sc, [1] * len(sets), sets))
    history = run_quietly(model)
    return history, model.check.failures


WEIGHTS = [  # the utility weights and the response of moving to them
    *(f"population.{n}" for n in PARAMETERS["population"] if n.endswith("_weight")),
    "population.move_sensitivity",
    "population.migrant_mobility",
    "population.registration_tie",
]
FITTED = (  # whose bounds the region constants refuse at run time (a clear error, tested elsewhere)
    "population.out_migration_rate",
    "population.outside_in_migration",
    "population.net_migration_correction",
)
PART_KEYS = [f"{g}.{n}" for g in POPULATION_PART for n in PARAMETERS[g] if f"{g}.{n}" not in FITTED]


def test_extreme_pairs_of_the_population_weights_are_all_checked(tmp_path) -> None:
    """The utility weights and move responses, every pair at its bounds, 21 years: each run clean or stopped."""
    sets = extreme_pairs(WEIGHTS)
    history, failures = population_part_batch(scenario(tmp_path), sets)
    assert_checked(history, failures, len(sets))


@pytest.mark.slow
def test_extreme_pairs_of_every_population_part_parameter_are_all_checked(tmp_path) -> None:
    sets = extreme_pairs(PART_KEYS)
    history, failures = population_part_batch(scenario(tmp_path), sets)
    assert_checked(history, failures, len(sets))


def parameter_value(key: str, regions: int) -> st.SearchStrategy:
    low, high = bounds(key)
    group, name = key.split(".")
    values = st.one_of(st.sampled_from([low, high]), st.floats(low, high))
    if PARAMETERS[group][name]["dims"] == "region":
        return st.one_of(values, st.lists(values, min_size=regions, max_size=regions))
    return values


def parameter_sets(keys: list[str], regions: int) -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={key: parameter_value(key, regions) for key in keys})


@pytest.fixture(scope="module")
def six_years(tmp_path_factory: pytest.TempPathFactory) -> sim.Scenario:
    return scenario(tmp_path_factory.mktemp("six"), end=2020)


POPULATION_KEYS = [f"{g}.{n}" for g in POPULATION_PART for n in PARAMETERS[g]]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_validated_population_parameters_give_checked_states(six_years, data) -> None:
    """Random sets over the full validated ranges (bounds drawn often): clean, or a clear error."""
    sets = data.draw(st.lists(parameter_sets(POPULATION_KEYS, len(six_years.regions)), min_size=4, max_size=4))
    try:
        model = frozen_firms(Model(six_years, [1] * len(sets), sets))
    except InputError as error:  # refused at the start (region constants cannot be fitted): a clear error
        assert "\n" not in str(error) and "population" in error.key
        return
    assert_checked(run_quietly(model), model.check.failures, len(sets))


FIRM_PAIRS = [
    {"firms.entry_rate": 2.0, "firms.exit_rate": 0.0},
    {"firms.entry_rate": 0.0, "firms.exit_rate": 2.0, "firms.young_exit_boost": 10.0},
    {"firms.relocation_rate": 1.0, "firms.cost_push": 50.0},
    {"firms.rent_weight": 50.0, "firms.distance_weight": 20.0, "firms.access_weight": 20.0},
    {"firms.agglomeration_weight": 5.0, "firms.cost_sensitivity_spread": 3.0},
    {"firms.high_end_entry_growth": 0.5, "firms.high_end_growth_years": 40.0},
    {"firms.high_end_entry_growth": -0.5, "firms.apply_despite_ban": 1.0, "firms.refused_register_elsewhere": 1.0},
    {"firms.branch_rate": 1.0, "firms.pharma_share": 1.0},
    {"population.jobs_weight": 10.0, "firms.exit_rate": 2.0, "firms.entry_rate": 0.0},
]


def test_extreme_firm_pairs_on_the_full_model_are_checked(tmp_path) -> None:
    """The full model (agents acting), one year: firm parameters at their bounds, in pairs."""
    model = Model(scenario(tmp_path, end=2015), [3] * len(FIRM_PAIRS), FIRM_PAIRS)
    assert_checked(run_quietly(model), model.check.failures, len(FIRM_PAIRS))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_validated_firm_parameters_give_checked_states(short, data) -> None:
    """Random firm parameters over their full ranges, full model, a short horizon."""
    keys = [k for k in FIRM_PARAMETERS if k != "firms.entry_rate"]  # entry is bounded below: agents' memory
    sets = data.draw(st.lists(parameter_sets(keys, len(short.regions)), min_size=2, max_size=2))
    model = Model(short, [5, 6], sets)
    assert_checked(run_quietly(model), model.check.failures, len(sets))


# -- the fitted parameters' joint constraint ----------------------------------------------------------
def test_the_bounds_of_the_outside_inflow_are_runnable(short) -> None:
    for side in (0, 1):
        Model(short, [1], [{"population.outside_in_migration": bounds("population.outside_in_migration")[side]}])


@pytest.mark.parametrize("side", [0, 1], ids=["lower", "upper"])
def test_move_rates_the_2014_trend_cannot_use_are_refused_at_set_up_naming_the_key(short, side) -> None:
    """out_migration_rate is one range for every region, but whether the 2014 trend can be met is a joint
    condition on all of them: it is checked when the model is set up (``sim check`` does it too), with an
    error that names the key and the region, never a silent run."""
    with pytest.raises(InputError, match="population.out_migration_rate"):
        Model(short, [1], [{"population.out_migration_rate": bounds("population.out_migration_rate")[side]}])
