"""The stock-and-flow part (sim/stockflow.py) term by term, against docs/model.md sections 4-5.

Each test builds the stocks of the default scenario from a hand-made start (no agents),
then reads the derivative of one month or takes one Euler month, and checks one term of
the balance against the documented equation worked by hand: births and deaths from their
own rates, registration, the households following relocated staff (inflow, delay,
arrival by registration), housing construction and removal, local services, the outputs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import SCENARIOS

import sim
from sim.parameters import stack_parameters
from sim.population import MIGRANT, REGISTERED
from sim.stockflow import DT, MonthInputs, StockFlow

pytestmark = pytest.mark.fast

SCENARIO = replace(sim.load_scenario(SCENARIOS / "historical.toml"), method="euler")
REGIONS = SCENARIO.regions
N = len(REGIONS)
CORE, TONGZHOU, XIONGAN, TIANJIN = (REGIONS.index(c) for c in ("bj_core", "bj_tongzhou", "xiongan", "tianjin"))
P0 = REGIONS.population_2014


def inputs(**changes) -> MonthInputs:
    """A month without agents or policies: 2014 jobs, no institutions, data travel times."""
    base = MonthInputs(
        jobs=(REGIONS.jobs_per_resident_2014 * P0)[None],
        services=np.zeros((1, N)),
        control=np.zeros((1, N)),
        travel_time=REGIONS.travel_time[None],
        housing_removal=np.zeros((1, N)),
        build_rate=np.full((1, N), np.nan),
        housing_cap=np.full((1, N), np.inf),
        cap_time=np.ones((1, N)),
        staff_moved=np.zeros((1, N, N)),
        housing_added=np.zeros((1, N)),
    )
    return replace(base, **changes)


def stocks(overrides=None, start=None) -> StockFlow:
    return StockFlow(SCENARIO, stack_parameters(SCENARIO, [overrides or {}]), start or inputs())


def rates(model: StockFlow, month_inputs: MonthInputs | None = None, state=None, time: float = 2014.0):
    return model.derivative(time, month_inputs or inputs())(time, state or model.state)


def parameter(name: str) -> np.ndarray:
    return np.asarray(SCENARIO.parameters[name], float)


def test_the_start_by_hand():
    model = stocks()
    population = model.state["population"]
    np.testing.assert_allclose(population.sum(axis=1)[0], P0, rtol=1e-15)
    np.testing.assert_allclose(population[0, MIGRANT], P0 * REGIONS.migrant_share_2014, rtol=1e-15)
    np.testing.assert_allclose(model.state["housing"][0], P0 / REGIONS.occupancy_2014, rtol=1e-15)
    np.testing.assert_allclose(model.state["local_services"][0], P0 * REGIONS.services_per_resident_2014, rtol=1e-15)


def test_institutions_capacity_is_taken_out_of_local_services_and_added_back():
    institutions = np.zeros((1, N))
    institutions[0, CORE] = 0.25 * P0[CORE] * REGIONS.services_per_resident_2014[CORE]
    model = stocks(start=inputs(services=institutions))
    local = model.state["local_services"][0]
    assert local[CORE] == pytest.approx(0.75 * P0[CORE] * REGIONS.services_per_resident_2014[CORE], rel=1e-12)
    observed = model.observe(2014.0, inputs(services=institutions))["service_capacity"][0]
    np.testing.assert_allclose(observed, P0 * REGIONS.services_per_resident_2014, rtol=1e-12)
    too_many = inputs(services=(2 * P0 * REGIONS.services_per_resident_2014)[None])
    with pytest.raises(sim.errors.InputError, match="capacity_each"):
        stocks(start=too_many)


def test_births_and_deaths_use_their_own_rates_of_the_year():
    model = stocks()
    births, deaths = REGIONS.vital_rates(2014.0)
    assert not np.allclose(births, deaths)  # the data tell the two apart, so a swap would show
    r = rates(model)
    np.testing.assert_allclose(r["births_cum"][0], births * P0, rtol=1e-12)
    np.testing.assert_allclose(r["deaths_cum"][0], deaths * P0, rtol=1e-12)
    later_births, later_deaths = REGIONS.vital_rates(2019.5)
    r = rates(model, time=2019.5)
    np.testing.assert_allclose(r["births_cum"][0], later_births * P0, rtol=1e-12)
    np.testing.assert_allclose(r["deaths_cum"][0], later_deaths * P0, rtol=1e-12)


def test_one_euler_month_of_births_and_deaths_by_hand():
    model = stocks()
    model.advance(2014.0, inputs())
    births, deaths = REGIONS.vital_rates(2014.0)
    np.testing.assert_allclose(model.state["births_cum"][0], DT * births * P0, rtol=1e-12)
    np.testing.assert_allclose(model.state["deaths_cum"][0], DT * deaths * P0, rtol=1e-12)


def test_the_world_changes_only_by_births_deaths_and_the_rest_of_china():
    model = stocks()
    r = rates(model)
    world = r["population"].sum()
    expected = r["births_cum"].sum() - r["deaths_cum"].sum() + r["in_from_outside_cum"].sum()
    expected -= r["out_to_outside_cum"].sum()
    assert world == pytest.approx(expected, rel=1e-10)
    net = r["_flows"].change.sum(axis=1)  # migration's net change per region: nothing leaves the world but the outside
    births, deaths = REGIONS.vital_rates(2014.0)
    np.testing.assert_allclose(r["population"].sum(axis=1), births * P0 - deaths * P0 + net, rtol=1e-9, atol=1e-6)


def test_higher_death_rates_mean_fewer_residents_and_higher_birth_rates_more():
    base = stocks()
    deadlier = replace(REGIONS, death_rates=REGIONS.death_rates * 2)
    fertile = replace(REGIONS, birth_rates=REGIONS.birth_rates * 2)
    for regions, sign in ((deadlier, -1), (fertile, +1)):
        other = StockFlow(replace(SCENARIO, regions=regions), stack_parameters(SCENARIO, [{}]), inputs())
        change = rates(other)["population"].sum(axis=1) - rates(base)["population"].sum(axis=1)
        assert (np.sign(change[0]) == sign).all()


def test_migrants_gain_the_registration_at_its_rate():
    rho = 0.04
    without, with_rate = stocks({"population.registration_rate": 0.0}), stocks({"population.registration_rate": rho})
    difference = rates(with_rate)["population"] - rates(without)["population"]
    migrants = without.state["population"][0, MIGRANT]
    np.testing.assert_allclose(difference[0, REGISTERED], rho * migrants, rtol=1e-9)
    np.testing.assert_allclose(difference[0, MIGRANT], -rho * migrants, rtol=1e-9)


def moving(model: StockFlow, origin: int, destination: int) -> StockFlow:
    """``model`` after staff moved from ``origin`` to ``destination`` once (households follow only on such pairs)."""
    staff = np.zeros((1, N, N))
    staff[0, origin, destination] = 1.0
    model.derivative(2014.0, inputs(staff_moved=staff))
    return model


def follow_parameters():
    return (
        parameter("institutions.household_follow_share"),
        parameter("institutions.household_size"),
        parameter("institutions.follow_time"),
    )


@pytest.mark.parametrize("moved", [1200.0, 1.0])  # one staff member too: any nonzero move opens the pair
def test_staff_moved_this_month_send_their_households_into_the_delay_within_the_month(moved):
    share, size, _ = follow_parameters()
    staff = np.zeros((1, N, N))
    staff[0, CORE, TONGZHOU] = moved
    model = stocks()
    r = rates(model, inputs(staff_moved=staff))
    # persons/year for one month: the whole month's households enter within dt
    assert r["households_following"][0, CORE, TONGZHOU, 0] == pytest.approx(moved * share * size / DT, rel=1e-12)
    model.advance(2014.0, inputs(staff_moved=staff))
    in_transit = model.state["households_following"][0, CORE, TONGZHOU]
    assert in_transit[0] == pytest.approx(moved * share * size, rel=1e-12) and in_transit[1:].sum() == 0.0
    assert model.state["households_following"].sum() == pytest.approx(moved * share * size, rel=1e-12)


@pytest.mark.parametrize(("destination", "group"), [(TONGZHOU, REGISTERED), (XIONGAN, MIGRANT)])
def test_households_arrive_from_the_last_stage_registered_within_a_province_else_as_migrants(destination, group):
    _, _, follow_time = follow_parameters()
    model = moving(stocks(), CORE, destination)
    state = dict(model.state)
    following = np.zeros_like(state["households_following"])
    following[0, CORE, destination, 2] = 900.0  # last stage: drains at 900 * 3 / T
    following[0, CORE, destination, 0] = 5000.0  # first stage: not arriving yet
    state["households_following"] = following
    arriving = 900.0 * 3 / follow_time
    difference = rates(model, state=state)["population"] - rates(model)["population"]
    expected = np.zeros((1, 2, N))
    expected[0, REGISTERED, CORE] = -arriving
    expected[0, group, destination] = arriving
    np.testing.assert_allclose(difference, expected, atol=1e-6 * arriving)


def test_households_following_count_in_the_net_migration_output():
    model = moving(stocks(), CORE, TIANJIN)
    state = dict(model.state)
    following = np.zeros_like(state["households_following"])
    following[0, CORE, TIANJIN, 2] = 600.0
    model.state = state | {"households_following": following}
    _, _, follow_time = follow_parameters()
    plain = stocks().observe(2014.0, inputs())["net_migration"][0]
    observed = model.observe(2014.0, inputs())["net_migration"][0]
    np.testing.assert_allclose(
        observed[[CORE, TIANJIN]] - plain[[CORE, TIANJIN]], np.array([-1.0, 1.0]) * (600.0 * 3 / follow_time)
    )


def housing_state(model: StockFlow, housing=None, pipeline=(0.0, 0.0, 0.0)):
    state = dict(model.state)
    if housing is not None:
        state["housing"] = housing
    state["housing_in_construction"] = np.broadcast_to(np.array(pipeline, float), (1, N, 3)).copy()
    return state


def test_housing_starts_completions_and_removal_by_hand():
    model = stocks()
    occupancy, adjust = parameter("housing.target_occupancy"), parameter("housing.adjustment_time")
    build_time, build_max = parameter("housing.construction_time"), parameter("housing.max_build_rate")
    short = P0 / occupancy * 0.9  # housing 10% below the target: starts wanted everywhere
    pipeline = (10.0, 20.0, 30.0)
    removal = np.zeros((1, N))
    removal[0, CORE] = 0.05
    r = rates(model, inputs(housing_removal=removal), housing_state(model, short[None], pipeline))
    starts = np.clip((P0 / occupancy - short - 60.0) / adjust, 0.0, build_max * short)
    completions = 30.0 * 3 / build_time
    np.testing.assert_allclose(r["housing"][0], completions - removal[0] * short, rtol=1e-12)
    np.testing.assert_allclose(r["housing_in_construction"][0, :, 0], starts - 10.0 * 3 / build_time, rtol=1e-12)
    np.testing.assert_allclose(r["housing_in_construction"][0, :, 2], (20.0 - 30.0) * 3 / build_time, rtol=1e-12)
    assert (starts > 0).all() and (starts < build_max * short).any()  # the case tells a clip bound from the gap


def test_land_release_replaces_the_build_rate_and_a_cap_stops_building_and_removes_the_excess():
    model = stocks()
    occupancy = parameter("housing.target_occupancy")
    short = P0 / occupancy * 0.5
    released = np.full((1, N), np.nan)
    released[0, XIONGAN] = 1e-4  # so low it binds
    r = rates(model, inputs(build_rate=released), housing_state(model, short[None]))
    assert r["housing_in_construction"][0, XIONGAN, 0] == pytest.approx(1e-4 * short[XIONGAN], rel=1e-12)
    free = rates(model, inputs(), housing_state(model, short[None]))
    np.testing.assert_array_equal(
        np.delete(r["housing_in_construction"][0, :, 0], XIONGAN),
        np.delete(free["housing_in_construction"][0, :, 0], XIONGAN),
    )
    cap, years = np.full((1, N), np.inf), np.ones((1, N))
    cap[0, CORE], years[0, CORE] = 0.5 * P0[CORE], 4.0
    housing = model.state["housing"]
    capped = rates(model, inputs(housing_cap=cap, cap_time=years), housing_state(model, housing))
    assert capped["housing_in_construction"][0, CORE, 0] == 0.0
    excess = housing[0, CORE] - 0.5 * P0[CORE] / occupancy
    assert capped["housing"][0, CORE] == pytest.approx(-excess / 4.0, rel=1e-12)


def test_delivered_housing_is_added_at_once():
    model = stocks()
    added = np.zeros((1, N))
    added[0, XIONGAN] = 12_345.0
    before = model.state["housing"].copy()
    model.receive(inputs(housing_added=added))
    np.testing.assert_allclose(model.state["housing"] - before, added, rtol=1e-15)


def test_local_services_move_toward_the_per_resident_norm_with_their_time():
    model = stocks()
    norm_time = parameter("services.adjustment_time")
    state = dict(model.state)
    state["local_services"] = model.state["local_services"] * 0.8
    r = rates(model, state=state)
    target = P0 * REGIONS.services_per_resident_2014
    np.testing.assert_allclose(r["local_services"][0], (target - 0.8 * target) / norm_time, rtol=1e-9)
    np.testing.assert_allclose(rates(model)["local_services"], 0.0, atol=1e-9 * target.max())


def test_observed_outputs_are_the_stocks_and_the_month_s_levers():
    model = stocks()
    control = np.zeros((1, N))
    control[0, CORE] = 1.5
    services = np.zeros((1, N))
    services[0, XIONGAN] = 99.0
    out = model.observe(2014.0, inputs(control=control, services=services))
    np.testing.assert_allclose(out["population"][0], P0, rtol=1e-15)
    np.testing.assert_allclose(out["migrant_population"][0], P0 * REGIONS.migrant_share_2014, rtol=1e-15)
    np.testing.assert_array_equal(out["admission_control"], control)
    np.testing.assert_allclose(out["service_capacity"] - model.state["local_services"], services)
    np.testing.assert_allclose(out["housing_capacity"], model.state["housing"])
    flows = rates(model, inputs(control=control, services=services))["_flows"]
    between = flows.movers[..., None] * flows.shares  # (run, group, origin, destination)
    np.testing.assert_allclose(out["migration"], between.sum(axis=1))
    np.testing.assert_allclose(out["in_from_outside"], flows.from_outside)
    np.testing.assert_allclose(out["out_to_outside"], flows.to_outside.sum(axis=1))
    np.testing.assert_allclose(out["net_migration"], flows.change.sum(axis=1), rtol=1e-9, atol=1e-6)
    assert (out["migration"][0].diagonal() == 0).all() and (out["migration"] >= 0).all()


def test_institutions_may_fill_all_but_a_little_of_a_region_s_services_never_all():
    capacity = P0 * REGIONS.services_per_resident_2014
    almost = np.zeros((1, N))
    almost[0, CORE] = capacity[CORE] - 0.5
    assert stocks(start=inputs(services=almost)).state["local_services"][0, CORE] == pytest.approx(0.5, abs=1e-6)
    everything = np.zeros((1, N))
    everything[0, CORE] = capacity[CORE]
    with pytest.raises(sim.errors.InputError, match="capacity_each"):
        stocks(start=inputs(services=everything))


@pytest.mark.parametrize("asked", [["net_migration"], ["migration", "out_to_outside"], ["in_from_outside"]])
def test_rate_outputs_asked_alone_equal_those_of_all_outputs(asked):
    model = stocks()
    everything = model.observe(2014.0, inputs())
    alone = model.observe(2014.0, inputs(), asked)
    assert list(alone) == asked
    for key in asked:
        np.testing.assert_array_equal(alone[key], everything[key])


def test_the_month_s_friction_is_kept_for_the_same_read_only_levers_and_follows_new_or_changed_ones():
    """Core (Beijing) to Tianjin, another province, for migrants: w_time * tt + C_Tianjin (docs/model.md), kept
    while the timeline hands the same read-only arrays, recomputed for new ones and never kept for a caller's
    writable array (which may change in place)."""
    model = stocks()
    w = parameter("population.travel_time_weight")

    def frozen(array) -> np.ndarray:
        array = np.array(array, float)
        array.flags.writeable = False
        return array

    control, travel = frozen(np.zeros((1, N))), frozen(REGIONS.travel_time[None])
    first = model._friction(control, travel)
    assert first[0, MIGRANT, CORE, TIANJIN] == pytest.approx(w * REGIONS.travel_time[CORE, TIANJIN])
    assert model._friction(control, travel) is first  # the same levers: the same friction, not recomputed
    raised = np.zeros((1, N))
    raised[0, TIANJIN] = 2.0
    control = frozen(raised)  # admission control in Tianjin: a new lever, the travel times the same
    second = model._friction(control, travel)
    assert second[0, MIGRANT, CORE, TIANJIN] == pytest.approx(w * REGIONS.travel_time[CORE, TIANJIN] + 2.0)
    slower = REGIONS.travel_time[None].copy()
    slower[0, CORE, TIANJIN] += 1.0
    travel = frozen(slower)  # a slower line: new travel times, the control the same
    third = model._friction(control, travel)
    assert third[0, MIGRANT, CORE, TIANJIN] == pytest.approx(w * (REGIONS.travel_time[CORE, TIANJIN] + 1.0) + 2.0)
    writable = raised.copy()  # a caller's own array, changed in place between calls
    model._friction(writable, travel)
    writable[0, TIANJIN] = 5.0
    fourth = model._friction(writable, travel)
    assert fourth[0, MIGRANT, CORE, TIANJIN] == pytest.approx(w * (REGIONS.travel_time[CORE, TIANJIN] + 1.0) + 5.0)
