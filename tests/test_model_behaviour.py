"""The coupling (sim/model.py): what the agents and the timeline hand the stocks, month by month.

A one-year scenario with an institution move and a construction project in it; the agents'
effects are recorded (``record_effects``) and checked against the agents themselves: jobs
are firm jobs plus institution staff, services are institutions' plus built capacity,
finished housing arrives once in its month, moved staff enter the households' delay, and
the outputs are the agents' and the stocks' own numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_scenario

import sim
from sim.model import RECORDED, Model
from sim.stockflow import DT, STOCK_FLOW_OUTPUTS, replay

pytestmark = pytest.mark.fast

STORY = """[run]
end = 2015
[policies.test_schools]
kind = "institution_move"
institution = "school"
count = 3
from = ["bj_core"]
to = "xiongan"
start = 2014-04-01
[policies.test_hospital]
kind = "institution_move"
institution = "hospital"
count = 1
from = ["bj_core"]
to = "xiongan"
start = 2014-04-15
[policies.test_build]
kind = "construction"
start = 2014-01-01
end = 2014-01-01
projects = 1
workers_per_project = 500
duration_years = 0.5
housing_per_project = 40000
services_per_project = 7000
region = "xiongan"
"""


@pytest.fixture
def one_year(tmp_path):
    """Run per test, not per module: mutmut maps each function to the tests that call it, and a
    module-scoped run would be charged to the first test alone."""
    scenario = sim.load_scenario(write_scenario(tmp_path, STORY))
    model = Model(scenario, [5], record_effects=True)
    frames = []
    history = model.run(progress=lambda month, months: frames.append((month, months)))
    return scenario, model, history, frames


def test_the_start_hands_the_stocks_firm_jobs_plus_institution_staff(one_year):
    scenario = one_year[0]
    model = Model(scenario, [5], record_effects=True)
    start = model.effects().start
    expected = model.firms.jobs().sum(axis=2) + model.institutions.jobs()
    np.testing.assert_allclose(start.jobs, expected, rtol=1e-15)
    np.testing.assert_allclose(start.services, model.institutions.service_capacity(), rtol=1e-15)
    observed = model.observe(scenario.start)
    regions = scenario.regions
    np.testing.assert_allclose(observed["population"][0], regions.population_2014, rtol=1e-12)
    np.testing.assert_allclose(
        observed["service_capacity"][0], regions.population_2014 * regions.services_per_resident_2014, rtol=1e-12
    )
    np.testing.assert_allclose(observed["jobs"][..., :4], model.firms.jobs())
    np.testing.assert_allclose(observed["jobs"][..., 4], model.institutions.jobs())
    np.testing.assert_allclose(observed["firms"][..., :4], model.firms.counts())
    assert not observed["firms"][..., 4].any()
    for name in ("dispersed_firms_cum", "refused_registrations_cum", "institutions_moved_cum", "births_cum"):
        assert not np.any(observed[name]), name
    assert set(observed) == set(RECORDED)


def test_a_run_records_every_month_and_reports_progress(one_year):
    scenario, _, history, frames = one_year
    months = (scenario.end - scenario.start) * 12
    np.testing.assert_allclose(history.time, scenario.start + np.arange(months + 1) * DT, rtol=1e-15)
    assert frames == [(m, months) for m in range(months + 1)]
    for name in RECORDED:
        assert history.values[name].shape[:2] == (months + 1, 1), name


def test_moved_staff_enter_the_stocks_in_their_month_and_jobs_follow(one_year):
    scenario, model, history, _ = one_year
    regions = scenario.regions
    core, xiongan = regions.index("bj_core"), regions.index("xiongan")
    effects = model.effects()
    moved = np.array([m.staff_moved[0, core, xiongan] for m in effects.months])
    staff = 3 * 150 + 2500  # April: three schools of 150 staff and a hospital of 2,500, two orders in one month
    assert moved[3] == staff and moved.sum() == staff
    jobs = history.values["jobs"][:, 0, :, 4]
    assert jobs[4, xiongan] - jobs[3, xiongan] == staff and jobs[4, core] - jobs[3, core] == -staff
    assert history.values["institutions_moved_cum"][4, 0] == 4 and history.values["staff_moved_cum"][4, 0] == staff
    # each record is a copy of its month, not a view of a counter that moves on
    assert history.values["institutions_moved_cum"][3, 0] == 0 and history.values["staff_moved_cum"][3, 0] == 0
    services = np.array([m.services[0, xiongan] for m in effects.months])
    assert services[3] - services[2] == 3 * 18_000 + 80_000  # their capacity moves with them


def test_finished_housing_arrives_once_and_built_services_stay(one_year):
    scenario, model, history, _ = one_year
    xiongan = scenario.regions.index("xiongan")
    effects = model.effects()
    added = np.array([m.housing_added[0, xiongan] for m in effects.months])
    assert added[6] == 40_000 and added.sum() == 40_000  # a six-month project started in January
    services = np.array([m.services[0, xiongan] for m in effects.months])
    assert services[6] - services[5] == 7_000 and (services[6:] == services[6]).all()
    housing = history.values["housing_capacity"][:, 0, xiongan]
    # the month's delivery is in the stock from the month's start: the record at 7 months includes it
    assert housing[7] - housing[6] > 40_000 * 0.99
    workforce = history.values["construction_workforce"][:, 0]
    assert workforce[1] == 500 and workforce[7] == 0


def test_the_firms_see_this_month_s_time_step_and_active_programmes_only(one_year, monkeypatch):
    scenario, _, _, _ = one_year
    model = Model(scenario, [5])
    seen = []
    original = model.firms.step
    monkeypatch.setattr(model.firms, "step", lambda ctx: (seen.append(ctx), original(ctx))[1])
    for month in range(4):
        model.step(month)
    assert [ctx.time for ctx in seen] == pytest.approx([2014 + m * DT for m in range(4)])
    assert all(ctx.dt == pytest.approx(DT) for ctx in seen)
    if hasattr(seen[0], "rent"):  # the residential rent proxy (goes when the firms own their floor space)
        np.testing.assert_allclose(seen[0].rent, 1.0, rtol=1e-12)  # occupancy at its 2014 level
    active = [{d[0] if isinstance(d, tuple) else d.name for d in ctx.dispersals} for ctx in seen]
    assert active[0] == set() and active[2] == {"manufacturing_dispersal", "market_dispersal"}  # from March 2014


def test_replaying_the_recorded_effects_gives_the_run_s_stocks_exactly(one_year):
    scenario, model, history, _ = one_year
    effects = model.effects()
    assert effects.at(-1) is effects.start and effects.at(3) is effects.months[3]
    assert len(effects.months) == len(history.time) - 1
    times, replayed = replay(scenario, effects, [{}, {"population.jobs_weight": 5.0}])
    np.testing.assert_array_equal(times, history.time)
    for name in STOCK_FLOW_OUTPUTS:
        np.testing.assert_array_equal(replayed[name][:, :1], history.values[name], err_msg=name)
    assert not np.allclose(replayed["population"][:, 1], replayed["population"][:, 0], rtol=1e-9)
    _, some = replay(scenario, effects, [{}], outputs=("population", "births_cum"))
    assert set(some) == {"population", "births_cum"}
    np.testing.assert_array_equal(some["births_cum"], history.values["births_cum"])


def test_effects_are_recorded_only_when_asked(one_year):
    scenario = one_year[0]
    with pytest.raises(ValueError, match="record_effects=True"):
        Model(scenario, [5]).effects()


def test_per_run_overrides_reach_each_run_s_parameters(one_year):
    scenario = one_year[0]
    model = Model(scenario, [5, 5], [{}, {"population.jobs_weight": 5.0}])
    weights = model.stockflow.params.jobs_weight
    assert weights[1] == 5.0 and weights[0] == scenario.parameters["population.jobs_weight"] != 5.0


def test_errors_found_when_the_model_starts_name_the_scenario_file(tmp_path):
    story = '[run]\nend = 2015\n[policies.too_big]\nkind = "construction"\nstart = 2014-01-01\nprojects = 1\n'
    story += "workers_per_project = 1e9\nduration_years = 1\nhousing_per_project = 0\nservices_per_project = 0\n"
    path = write_scenario(tmp_path, story)
    with pytest.raises(sim.InputError) as error:
        Model(sim.load_scenario(path), [1])
    assert error.value.path == str(path) and error.value.key == "policies.too_big.workers_per_project"
    path = write_scenario(tmp_path, "[run]\nend = 2015\n[population]\nout_migration_rate = 0.3\n", "fit.toml")
    with pytest.raises(sim.InputError) as error:
        Model(sim.load_scenario(path), [1])
    assert error.value.path == str(path) and error.value.key == "population.out_migration_rate"


def test_a_replayed_parameter_set_that_cannot_start_names_the_overrides(one_year):
    scenario, model, _, _ = one_year
    with pytest.raises(sim.InputError) as error:
        replay(scenario, model.effects(), [{}, {"population.out_migration_rate": 0.3}])
    assert error.value.path == f"overrides of {scenario.path}" and error.value.key == "population.out_migration_rate"


def test_a_demolition_campaign_removes_its_share_of_commercial_space_each_month(one_year):
    from types import SimpleNamespace

    scenario, _, _, _ = one_year
    model = Model(scenario, [5])
    n = len(scenario.regions)
    removal = np.zeros((1, n))
    removal[0, 1] = 0.06  # 6% of the second region's commercial space a year
    zeros = np.zeros((1, n, 4))
    levers = SimpleNamespace(commercial_removal=removal, travel_time=None, coverage=zeros, incentive=zeros,
                             pharma_incentive=zeros[..., 0], dispersals=())  # fmt: skip
    ctx = model._firm_context(2014.0, levers)
    expected = np.zeros((1, n))
    expected[0, 1] = -0.06 * model.firms.space[0, 1] * DT
    np.testing.assert_allclose(ctx.floor_space_change, expected, rtol=1e-12)


def test_errors_found_by_the_timeline_and_the_institution_orders_name_the_scenario_file(tmp_path):
    """Checks that only the per-run values can make: a project larger than the workforce, an order larger than
    its origins' 2014 stock; and an override that names no parameter, which names the overrides and the run."""
    story = "[run]\nend = 2015\n[construction]\nworkforce_capacity = 1000\n"
    story += '[policies.too_big]\nkind = "construction"\n'
    story += "start = 2014-01-01\nend = 2014-01-01\nprojects = 1\nworkers_per_project = 2000\nduration_years = 1\n"
    story += "housing_per_project = 0\nservices_per_project = 0\n"
    path = write_scenario(tmp_path, story)
    with pytest.raises(sim.InputError, match="could never start") as error:
        Model(sim.load_scenario(path), [1])
    assert error.value.path == str(path) and error.value.key == "policies.too_big.workers_per_project"
    story = "[run]\nend = 2015\n[policies.municipal_hospitals_to_suburbs]\ncount = 1000\n"
    path = write_scenario(tmp_path, story, "orders.toml")
    with pytest.raises(sim.InputError, match="hold") as error:
        Model(sim.load_scenario(path), [1])
    assert error.value.path == str(path) and error.value.key == "policies.municipal_hospitals_to_suburbs.count"
    scenario = sim.load_scenario(write_scenario(tmp_path, "[run]\nend = 2015\n", "plain.toml"))
    with pytest.raises(sim.InputError) as error:
        Model(scenario, [1, 1], [{}, {"population.no_such_weight": 1.0}])
    assert error.value.path == f"overrides of {scenario.path}: run 1" and error.value.key == "population.no_such_weight"


def test_a_replay_in_half_month_steps_stays_within_the_integration_error_of_whole_months(one_year):
    """Two steps of half a month each (the integration-error check): the same year to well under 0.1%, and not
    the same numbers (the steps were taken); a month of births is still a month's, not two months'."""
    scenario, model, _, _ = one_year
    effects, outputs = model.effects(), ("population", "births_cum")
    _, whole = replay(scenario, effects, [{}], outputs)
    _, halves = replay(scenario, effects, [{}], outputs, substeps=2)
    np.testing.assert_allclose(halves["population"], whole["population"], rtol=1e-3)
    np.testing.assert_allclose(halves["births_cum"][1:], whole["births_cum"][1:], rtol=1e-3)
    assert not np.array_equal(halves["population"], whole["population"])


def test_a_net_migration_correction_moves_the_region_s_2014_target_by_its_amount(tmp_path):
    """Calibration's correction of regions.csv's net migration: the fitted start reproduces 2014's value plus the
    scenario's corrections, and run 1's correction for Tianjin (20,000 a year) in place of the scenario's."""
    scenario = sim.load_scenario(write_scenario(tmp_path, "[run]\nend = 2015\n"))
    model = Model(scenario, [5, 5], [{}, {"population.net_migration_correction.tianjin": 20000.0}])
    observed = model.stockflow.observe(scenario.start, model.start_inputs, ["net_migration"])["net_migration"]
    net_2014, tianjin = scenario.regions.net_migration_2014, scenario.regions.index("tianjin")
    target = np.tile(net_2014 + scenario.parameters["population.net_migration_correction"], (2, 1))
    target[1, tianjin] = net_2014[tianjin] + 20000.0
    np.testing.assert_allclose(observed, target, rtol=0, atol=1e-6)


def test_an_observation_asked_for_named_outputs_gives_those_whatever_the_model_records(one_year):
    """``observe(time, outputs)`` names what it returns; the model's own ``outputs`` are only the default."""
    scenario = one_year[0]
    model = Model(scenario, [5], outputs=["population"])
    observed = model.observe(scenario.start, ["jobs", "migrant_population"])
    assert list(observed) == ["jobs", "migrant_population"]
    np.testing.assert_allclose(observed["jobs"][..., :4], model.firms.jobs())
    np.testing.assert_allclose(observed["migrant_population"][0], scenario.regions.population_2014
                               * scenario.regions.migrant_share_2014, rtol=1e-12)  # fmt: skip
    assert list(model.observe(scenario.start)) == ["population"]


def test_a_demolition_campaign_moves_its_residents_out_mostly_to_beijing_s_other_districts(one_year):
    """Residents of demolished homes leave (about the campaign's share) and, the registered ones
    tied to Beijing's registration, settle mostly in Beijing's other districts."""
    from dataclasses import replace

    from sim.stockflow import AgentEffects

    scenario, model, _, _ = one_year
    effects = model.effects()
    central = scenario.regions.codes.index("bj_central")
    rate = np.zeros(len(scenario.regions))
    rate[central] = 0.05  # 5 % of the central city's homes a year

    def cleared(inputs):
        return replace(inputs, housing_removal=inputs.housing_removal + rate)

    campaign = AgentEffects(effects.start, tuple(cleared(m) for m in effects.months))
    outputs = ["population", "migrant_population"]
    _, calm = replay(scenario, effects, [{}], outputs)
    _, moved = replay(scenario, campaign, [{}], outputs)
    change = moved["population"][-1, 0] - calm["population"][-1, 0]
    registered = change - (moved["migrant_population"][-1, 0] - calm["migrant_population"][-1, 0])
    population = calm["population"][0, 0, central]
    assert -0.05 * population < change[central] < -0.04 * population  # a year at 5 %, less those who return
    beijing = [scenario.regions.codes.index(c) for c in ("bj_core", "bj_tongzhou", "bj_other")]
    assert (change[beijing] > 0).all()
    assert registered[beijing].sum() > -0.8 * registered[central]  # the registered stay in Beijing
