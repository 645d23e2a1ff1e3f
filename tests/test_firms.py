"""Firm agents and commercial space: hand-computed small cases, directions, and issue 6's acceptance."""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
from conftest import SCENARIOS, write_scenario
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
import sim.firms
from sim.firms import (
    HIGH_END,
    MANUFACTURING,
    N_SECTORS,
    Dispersal,
    FirmContext,
    FirmParams,
    Firms,
    FirmTable,
    market_access,
    nearness,
    rent_index,
    space_starts,
)
from sim.model import DT, Model
from sim.random import Streams
from sim.regions import Regions
from sim.sectors import FIRM_SECTORS

BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]

# -- a tiny world: two regions (Beijing's core and the rest of Hebei), one sector used --------------


def two_regions(travel_hours: float = 1.0, rent_level=(1.0, 0.5), population=(100.0, 300.0)) -> Regions:
    travel = np.array([[0.0, travel_hours], [travel_hours, 0.0]])
    values: dict = {f.name: np.zeros(2) for f in dataclasses.fields(Regions)}  # what the firms do not read
    values.update(
        codes=("bj_core", "hebei_other"),
        names=("core", "rest"),
        provinces=("beijing", "hebei"),
        beijing=np.array([True, False]),
        central_six=np.array([True, False]),
        population_2014=np.array(population),
        rent_level_2014=np.array(rent_level),
        travel_time=travel,
    )
    return Regions(**values)


def params(**changes) -> FirmParams:
    """One run's firm parameters: nothing happens unless a test switches it on."""
    values = {f.name: 0.0 for f in dataclasses.fields(FirmParams)}
    values.update(
        exit_rate=np.zeros(N_SECTORS),
        entry_rate=np.zeros(N_SECTORS),
        market_reach=np.zeros(N_SECTORS),
        space_occupancy_2014=0.9,
        rent_elasticity=2.0,
        space_adjustment_time=2.0,
        space_construction_time=3.0,
        space_max_build_rate=np.zeros(2),
        zhongguancun_share=0.1,
        firms_per_project=4.0,
        high_end_growth_years=0.0,
    )
    values.update(changes)
    return FirmParams(**{k: np.asarray(v, float)[None] for k, v in values.items()})


def tiny(
    firms=((1000, 0), (0, 0)), weights=((1, 1), (1, 1)), regions: Regions | None = None, seeds=(3,), **changes
) -> Firms:
    """Firms in two regions; ``firms[r][k]`` real firms of sector k (manufacturing, high_end)."""
    regions = regions or two_regions()
    table = FirmTable(np.zeros((2, N_SECTORS)), np.full((2, N_SECTORS), 10.0), np.ones((2, N_SECTORS)))
    for region in range(2):
        for k, sector in enumerate((MANUFACTURING, HIGH_END)):
            table.firms[region, sector] = firms[region][k]
            table.agent_weight[region, sector] = weights[region][k]
    one = params(**changes)
    batch = FirmParams(**{k: np.repeat(v, len(seeds), axis=0) for k, v in one.__dict__.items()})
    return Firms(regions, table, batch, Streams(list(seeds)))


def calm(firms: Firms, **changes) -> FirmContext:
    """This month's context: 2014 conditions, no policy, unless changed."""
    n = len(firms.regions)
    zeros = np.zeros((1, n, N_SECTORS))
    values = dict(
        time=2014.0,
        dt=DT,
        travel_time=firms.regions.travel_time[None],
        coverage=zeros,
        incentive=zeros,
        pharma_incentive=zeros[..., 0],
        dispersals=(),
        population=firms.regions.population_2014[None].copy(),
        floor_space_change=zeros[..., 0],
    )
    values.update(changes)
    return FirmContext(**values)


# -- hand-computed values ---------------------------------------------------------------------


def test_rent_rises_with_occupancy_as_the_elasticity_says_and_is_capped():
    # occupancy 99/100 against 0.9 in 2014: (1.1)^2 = 1.21
    assert rent_index(np.array([[99.0]]), np.array([[100.0]]), np.array([0.9]), np.array([2.0]))[0, 0] == pytest.approx(
        1.21
    )
    assert rent_index(np.array([[45.0]]), np.array([[100.0]]), np.array([0.9]), np.array([1.0]))[0, 0] == pytest.approx(
        0.5
    )
    assert rent_index(np.array([[1e6]]), np.array([[1.0]]), np.array([0.9]), np.array([2.0]))[0, 0] == 10.0


def test_space_starts_close_the_gap_over_the_adjustment_time_within_the_land_limit():
    # region 0: space wanted 99 / 0.9 = 110, gap 10 over 2 years = 5/year, land allows 0.03 * 100 = 3
    # region 1: 45 jobs want 50, there are 100: nothing is built; region 2: gap 6 - 4 in the pipeline = 2 -> 1/year
    starts = space_starts(
        np.array([[99.0, 45.0, 95.4]]),
        np.array([[100.0, 100.0, 100.0]]),
        np.array([[0.0, 0.0, 4.0]]),
        np.array([0.9]),
        np.array([2.0]),
        np.array([[0.03, 0.5, 0.5]]),
    )
    np.testing.assert_allclose(starts, [[3.0, 0.0, 1.0]])


def test_market_access_counts_residents_within_reach():
    # exp(-ln 2 * 1 h) = 1/2: A_0 = 100 + 300 / 2, A_1 = 100 / 2 + 300
    access = market_access(np.array([[100.0, 300.0]]), nearness(two_regions().travel_time[None], np.array([np.log(2)])))
    np.testing.assert_allclose(access, [[250.0, 350.0]])


def test_entry_scales_with_demand_and_falls_with_rent_not_with_the_stock():
    firms = tiny(firms=((0, 1000), (0, 500)), entry_rate=[0, 0, 0.12, 0], rent_entry_response=1.0)
    # double the core's residents (local demand, reach 0) and raise the other region's rent index to 1.21
    ctx = calm(firms, population=np.array([[200.0, 300.0]]))
    wanted = firms.would_be_entrants(ctx, np.array([[1.0, 1.21]]))[0, :, HIGH_END]
    np.testing.assert_allclose(wanted, [0.12 * 1000 * 2 / 12, 0.12 * 500 * np.exp(-0.21) / 12])
    firms.alive[:] = False  # the stock is gone; would-be entrants are not
    np.testing.assert_allclose(firms.would_be_entrants(ctx, np.array([[1.0, 1.21]]))[0, :, HIGH_END], wanted)


def test_cheap_space_at_most_doubles_entry():
    firms = tiny(firms=((0, 1000), (0, 500)), entry_rate=[0, 0, 0.12, 0], rent_entry_response=20.0)
    wanted = firms.would_be_entrants(calm(firms), np.array([[0.99, 0.05]]))[0, :, HIGH_END]
    np.testing.assert_allclose(wanted, [0.12 * 1000 * np.exp(0.2) / 12, 0.12 * 500 * 2 / 12])


def test_destination_shares_for_two_regions_by_hand():
    firms = tiny(firms=((1000, 0), (1000, 0)), rent_weight=1.0, distance_weight=1.0)
    firms.destination_constant[:] = 0.0
    rent = np.ones((1, 2))
    probs = firms.destination_probabilities(calm(firms), firms.counts(), rent)[0, MANUFACTURING]
    # from the core: stay U = -1 (rent level 1), move U = -0.5 - 1 (rent level 0.5, one hour away)
    assert probs[0, 1] == pytest.approx(1 / (1 + np.exp(0.5)))
    assert probs[0, 0] == pytest.approx(1 - 1 / (1 + np.exp(0.5)))
    # dispersed units must leave: the only allowed region takes them all
    forced = firms.destination_probabilities(calm(firms), firms.counts(), rent, np.array([False, True]))
    np.testing.assert_allclose(forced[0, MANUFACTURING, 0], [0.0, 1.0])


def test_one_month_of_exits_matches_the_hazard():
    """20,000 old firms, exit 0.6/year, rent index 1: 1 - exp(-0.05) of them close (4 standard deviations)."""
    firms = tiny(firms=((20000, 0), (0, 0)), exit_rate=[0.6, 0, 0, 0])
    firms.age[:] = 100.0  # no young-firm boost
    before = firms.counts()[0, 0, MANUFACTURING]
    firms.step(calm(firms))
    expected = before * -np.expm1(-0.6 / 12)
    exits = firms.counters.exits[0, MANUFACTURING]
    assert abs(exits - expected) < 4 * np.sqrt(expected)
    assert firms.counts()[0, 0, MANUFACTURING] == before - exits


# -- directions --------------------------------------------------------------------------------


def month_of(firms: Firms, space_factor: float, **ctx) -> Firms:
    firms.space[:, 0] *= space_factor  # less space for the same jobs: a higher rent in the core
    firms.age[:] = 100.0
    firms.step(calm(firms, **ctx))
    return firms


def test_more_rent_means_more_exits_and_more_moves():
    """Both regions hold 20,000 old firms; less space in the core raises its rent index to (1 / 0.8)^2."""

    def outcome(space_factor):
        firms = tiny(
            firms=((20000, 0), (20000, 0)),
            exit_rate=[0.3, 0, 0, 0],
            relocation_rate=0.3,
            rent_exit_response=1.0,
            cost_push=1.0,
        )
        firms = month_of(firms, space_factor)
        return firms.counters.exits[0, MANUFACTURING], firms.counters.spontaneous_moves[0, MANUFACTURING]

    exits, moves = outcome(1.0)
    dear_exits, dear_moves = outcome(0.8)
    push = np.exp(1 / 0.8**2 - 1)  # hazard factor exp(response * (rent index - 1)) in the core
    expected, expected_dear = 2 * 20000 * -np.expm1(-0.3 / 12), 20000 * -np.expm1(-0.3 / 12 * np.array([push, 1])).sum()
    assert abs(exits - expected) < 4 * np.sqrt(expected)
    assert abs(dear_exits - expected_dear) < 4 * np.sqrt(expected_dear)
    assert dear_moves > 1.2 * moves  # the core's movers x 1.75, the other region's unchanged


def test_more_rent_means_fewer_arrivals_and_fewer_entrants():
    firms = tiny(firms=((1000, 1000), (1000, 1000)), rent_weight=1.0, entry_rate=[0.1, 0.1, 0.1, 0.1])
    firms.params = dataclasses.replace(firms.params, rent_entry_response=np.array([1.0]))
    cheap, dear = np.ones((1, 2)), np.array([[1.0, 1.5]])
    arrivals = firms.destination_probabilities(calm(firms), firms.counts(), cheap)[0, :, 0, 1]
    fewer = firms.destination_probabilities(calm(firms), firms.counts(), dear)[0, :, 0, 1]
    assert np.all(fewer[[MANUFACTURING, HIGH_END]] < arrivals[[MANUFACTURING, HIGH_END]])
    entrants = firms.would_be_entrants(calm(firms), cheap)[0, 1]
    assert np.all(firms.would_be_entrants(calm(firms), dear)[0, 1, [MANUFACTURING, HIGH_END]] < entrants[[0, 2]])


def test_more_distance_means_fewer_moves_there():
    near = tiny(firms=((1000, 0), (1000, 0)), distance_weight=1.0)
    far = tiny(firms=((1000, 0), (1000, 0)), regions=two_regions(travel_hours=2.0), distance_weight=1.0)
    for firms in (near, far):
        firms.destination_constant[:] = 0.0
    share = [f.destination_probabilities(calm(f), f.counts(), np.ones((1, 2)))[0, 0, 0, 1] for f in (near, far)]
    assert share[1] < share[0]


def test_an_incentive_raises_moves_to_its_region():
    firms = tiny(firms=((1000, 1000), (1000, 1000)))
    incentive = np.zeros((1, 2, N_SECTORS))
    incentive[0, 1, HIGH_END] = 1.0
    rent = np.ones((1, 2))
    without = firms.destination_probabilities(calm(firms), firms.counts(), rent)[0]
    with_ = firms.destination_probabilities(calm(firms, incentive=incentive), firms.counts(), rent)[0]
    assert with_[HIGH_END, 0, 1] > without[HIGH_END, 0, 1]
    np.testing.assert_allclose(with_[MANUFACTURING], without[MANUFACTURING])


@pytest.mark.parametrize("close_share", [0.0, 0.25, 1.0])
def test_dispersed_units_close_in_the_programme_share(close_share):
    firms = tiny(firms=((4000, 0), (1000, 0)))
    programme = Dispersal(
        "test",
        MANUFACTURING,
        np.array([200.0]),
        np.array([True, False]),
        np.array([close_share]),
        np.array([0, 1], bool),
    )
    firms.step(calm(firms, dispersals=(programme,)))
    c = firms.counters
    dispersed, closed = c.dispersed[0, MANUFACTURING], c.dispersed_closed[0, MANUFACTURING]
    assert dispersed > 0.99 * 4000  # hazard 200/year: nearly every unit within the month
    assert abs(closed - close_share * dispersed) <= 4 * np.sqrt(dispersed * close_share * (1 - close_share)) + 1e-9
    assert c.relocated[0, MANUFACTURING, 1] == dispersed - closed
    assert firms.counts()[0, 1, MANUFACTURING] == 1000 + dispersed - closed


# -- every firm can choose every region: splitting super-individuals ---------------------------


def test_a_super_individual_splits_into_the_destination_s_resolution():
    firms = tiny(firms=((0, 1000), (0, 10)), weights=((1, 100), (1, 10)))
    run, slot = np.nonzero(firms.alive & (firms.region == 0))
    firms.cost_sensitivity[run[0], slot[0]] = 2.5
    moved = firms._move(run[:1], slot[:1], np.array([1], np.int8), np.zeros_like(firms.alive))
    arrived = firms.alive & (firms.region == 1) & moved
    assert arrived.sum() == 10 and np.all(firms.weight[arrived] == 10)
    assert np.all(firms.cost_sensitivity[arrived] == 2.5)  # the same firms, the same traits
    assert firms.counts()[0, 1, HIGH_END] == 110 and firms.counts()[0, 0, HIGH_END] == 900
    assert firms.counters.moves_from_beijing[0, HIGH_END, 1] == 100


@settings(max_examples=60, deadline=None)
@given(
    weight=st.integers(1, 500),
    target=st.integers(1, 500),
    movers=st.integers(1, 5),
)
def test_moves_neither_create_nor_lose_real_firms(weight, target, movers):
    """Property: whatever the weights, a move conserves real firms and jobs; no piece is coarser than its region."""
    firms = tiny(firms=((weight * 5, 0), (target, 0)), weights=((weight, 1), (target, 1)))
    total, jobs = firms.counts().sum(), firms.jobs().sum()
    run, slot = np.nonzero(firms.alive & (firms.region == 0))
    firms._move(run[:movers], slot[:movers], np.ones(movers, np.int8), np.zeros_like(firms.alive))
    counted, counted_jobs = firms.recount()  # from the agents themselves
    np.testing.assert_array_equal(counted, firms.counts())
    np.testing.assert_array_equal(counted_jobs, firms.jobs())
    assert firms.counts().sum() == pytest.approx(total, abs=1e-9)
    assert firms.jobs().sum() == pytest.approx(jobs, abs=1e-9)
    assert firms.counts()[0, 1, MANUFACTURING] == pytest.approx(target + movers * weight, abs=1e-9)
    arrived = firms.alive & (firms.region == 1)
    assert firms.weight[arrived].max() <= max(target, 1) and firms.weight[arrived].min() > 0


def test_the_agent_limit_is_a_clear_error_before_it_is_crossed(short_historical, monkeypatch):
    limit = 55_000
    monkeypatch.setattr(sim.firms, "MAX_AGENTS_PER_RUN", limit)
    model = Model(short_historical, seeds=[1], overrides=[{"firms.entry_rate": 2.0}])
    with pytest.raises(sim.InputError, match="firm agents, over the limit"):
        for month in range(24):
            model.step(month)
    assert model.firms.alive.sum() <= limit


def test_entry_at_its_maximum_stays_bounded(tmp_path):
    """[firms] entry_rate at the top of its range: rents rise and the stock levels off well under the limit."""
    scenario = sim.load_scenario(write_scenario(tmp_path, "[run]\nend = 2026\n[firms]\nentry_rate = 2.0\n"))
    model = Model(scenario, seeds=[1])
    agents = []
    for month in range(12 * 12):
        model.step(month)
        agents.append(model.firms.alive.sum())
    assert max(agents) < 4 * agents[0] < sim.firms.MAX_AGENTS_PER_RUN
    assert agents[-1] < 1.2 * agents[len(agents) // 2]  # levelled off, not compounding
    assert np.all(model.firms.rent_index() > 1.3)


# -- space and rent in the model ----------------------------------------------------------------


def test_rents_rise_when_space_is_removed_while_population_is_held_down(short_historical):
    model = Model(short_historical, seeds=[1])
    firms, core = model.firms, model.regions.index("bj_core")
    removal = np.zeros((1, len(model.regions)))
    removal[0, core] = -0.1 * firms.space[0, core]
    for month in range(12):
        ctx = model._firm_context(2014.0 + month * DT, model.timeline.levers())
        ctx = dataclasses.replace(ctx, population=ctx.population * 0.9, floor_space_change=removal * (month == 0))
        firms.step(ctx)
    assert firms.rent_index()[0, core] > 1.1
    assert firms.space[0, core] < 0.91 * firms.space_2014[0, core]  # the core can hardly rebuild


def test_the_2014_stock_is_at_rest_under_moves(short_historical):
    """The destination constants balance expected movers in and out of every (region, sector) at 2014 conditions."""
    firms = Model(short_historical, seeds=[1, 2]).firms
    n = len(firms.regions)
    ctx = calm(firms)
    ctx = dataclasses.replace(
        ctx,
        travel_time=np.broadcast_to(firms.regions.travel_time, (2, n, n)),
        coverage=np.zeros((2, n, N_SECTORS)),
        incentive=np.zeros((2, n, N_SECTORS)),
        pharma_incentive=np.zeros((2, n)),
    )
    stock = np.broadcast_to(firms.firms_2014, (2, n, N_SECTORS))
    probs = firms.destination_probabilities(ctx, stock, np.ones((2, n)))
    inflow = np.einsum("bos,bsod->bds", stock, probs)
    np.testing.assert_allclose(inflow, stock, rtol=1e-7)


# -- the catalogue, outputs as the report counts them -----------------------------------------


def test_the_catalogue_closes_beijing_to_covered_movers(short_historical):
    model = Model(short_historical, seeds=[1, 2])
    firms, n = model.firms, len(model.regions)
    coverage = np.zeros((2, n, N_SECTORS))
    core, central = model.regions.index("bj_core"), model.regions.index("bj_central")
    coverage[:, core, MANUFACTURING] = 1.0
    coverage[:, central, MANUFACTURING] = 0.5
    ctx = model._firm_context(2015.0, model.timeline.levers())
    rent = np.ones((2, n))
    open_ = firms.destination_probabilities(ctx, firms.counts(), rent)
    shut = firms.destination_probabilities(dataclasses.replace(ctx, coverage=coverage), firms.counts(), rent)
    assert np.all(shut[:, MANUFACTURING, :, core] == 0) and np.all(open_[:, MANUFACTURING, :, core] > 0)
    assert np.all(shut[:, MANUFACTURING, core, central] < open_[:, MANUFACTURING, core, central])
    np.testing.assert_allclose(shut[:, 1:], open_[:, 1:], rtol=1e-12)  # other sectors untouched


def test_refused_registrations_include_refused_moves_into_beijing(short_historical, tmp_path):
    model = Model(short_historical, seeds=[1])
    for month in range(24):
        model.step(month)
    c = model.firms.counters
    assert c.refused[0] > 0 and c.refused_changes[0] > 0
    observed = model.observe(2016.0)
    assert observed["refused_registrations_cum"][0] == c.refused[0] + c.refused_changes[0]
    assert observed["refused_changes_cum"][0] == c.refused_changes[0]
    text = "[run]\nend = 2016\n[policies.catalogue_2014]\nenabled = false\n[policies.catalogue_2015]\nenabled = false\n"
    off = sim.run(sim.load_scenario(write_scenario(tmp_path, text))).isel(time=-1)
    assert float(off.refused_registrations_cum) == 0 and float(off.diverted_registrations_cum.max()) == 0


def test_projects_count_transfers_into_tongzhou_and_the_northern_counties(short_historical):
    ds = sim.run_batch(
        short_historical, seeds=[5, 5], overrides=[{"firms.firms_per_project": 4.0}, {"firms.firms_per_project": 8.0}]
    ).isel(time=-1)
    projects = ds.cooperation_projects_cum.values
    assert projects[0] > 0 and projects[0] == pytest.approx(2 * projects[1])
    moved_in = ds.moves_from_beijing_cum.isel(run=0).sel(
        region=["bj_tongzhou", "north3"], sector=["manufacturing", "wholesale_logistics", "high_end"]
    )
    assert 4.0 * projects[0] <= float(moved_in.sum())  # Tongzhou's own firms moving out of it do not count


def test_branches_are_opened_by_zhongguancun_firms_only(short_historical):
    ds = sim.run_batch(short_historical, seeds=[5, 5], overrides=[{}, {"firms.zhongguancun_share": 0.0}]).isel(time=-1)
    branches = ds.branches_opened_cum.sum("region").values
    assert branches[0] > 0 and branches[1] == 0


def test_dispersed_units_either_close_or_relocate_outside_beijing(short_historical):
    ds = sim.run(short_historical).isel(time=-1)
    dispersed = ds.dispersed_firms_cum.sel(sector=["manufacturing", "wholesale_logistics"])
    relocated = ds.relocated_firms_cum.sel(sector=["manufacturing", "wholesale_logistics"])
    np.testing.assert_allclose(
        dispersed, ds.dispersed_closed_cum.sel(sector=dispersed.sector) + relocated.sum("region")
    )
    assert float(relocated.sel(region=BEIJING).sum()) == 0  # the programmes send units out of Beijing
    assert float(ds.relocated_pharma_cum.sum()) <= float(relocated.sel(sector="manufacturing").sum())


def test_high_end_share_starts_at_the_pre_catalogue_mix_and_rises(short_historical):
    ds = sim.run(short_historical)
    share = ds.high_end_share_new_entrants
    assert 0 < float(share[0]) < 1
    assert float(share.sel(time=2016.0)) > float(share[0])  # the catalogue removes banned entrants


# -- issue 6 acceptance -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_beijing_firms_stay_within_half_and_double_their_2014_count(path):
    scenario = sim.load_scenario(path)
    dispersed = {p["sector"] for p in scenario.policies.values() if p["kind"] == "dispersal"}
    # a sector whose new entry the catalogue all but bans shrinks by exits alone (rail_first: no dispersal)
    dispersed |= {
        sector
        for p in scenario.policies.values()
        if p["kind"] == "catalogue"
        for sector, share in p["coverage_central_six"].items()
        if share >= 0.9
    }
    firms = sim.run(scenario).firms.sel(region=BEIJING).sum("region")
    for sector in FIRM_SECTORS:
        if sector in dispersed:
            continue
        ratio = firms.sel(sector=sector) / firms.sel(sector=sector).isel(time=0)
        assert 0.5 <= float(ratio.min()) and float(ratio.max()) <= 2.0, sector


def test_half_again_or_half_the_entry_rate_moves_beijing_jobs_by_less_than_half():
    scenario = sim.load_scenario(SCENARIOS / "historical.toml")
    rate = np.asarray(scenario.parameters["firms.entry_rate"])
    overrides = [{"firms.entry_rate": list(rate * f)} for f in (0.5, 1.0, 1.5)]
    ds = sim.run_batch(scenario, seeds=[scenario.seed] * 3, overrides=overrides)
    jobs = ds.jobs.sel(region=BEIJING, time=2035.0).sum(("region", "sector")).values
    assert jobs[0] < jobs[1] < jobs[2]
    assert 0.5 < jobs[0] / jobs[1] and jobs[2] / jobs[1] < 1.5


def test_high_end_firms_relocate_to_xiongan_when_an_incentive_there_is_on(tmp_path):
    """Beijing's weight-100 high-end agents reach Xiong'an (weight 10) by splitting, pulled by the incentive."""
    incentive = (
        "[run]\nend = 2022\n"
        '[policies.xiongan_founded]\nkind = "incentive"\nstart = 2017-04-01\nregion = "xiongan"\n'
        'sectors = ["high_end"]\nutility = {}\n'
    )
    runs = [
        sim.run_batch(sim.load_scenario(write_scenario(tmp_path, incentive.format(u), f"x{u}.toml")), seeds=[1, 2])
        for u in (0.0, 3.0)
    ]
    moved = [
        float(ds.moves_from_beijing_cum.sel(sector="high_end", region="xiongan").isel(time=-1).sum()) for ds in runs
    ]
    assert moved[1] >= 500 and moved[1] > 3 * moved[0]
    firms = [float(ds.firms.sel(sector="high_end", region="xiongan").isel(time=-1).sum()) for ds in runs]
    assert firms[1] > firms[0] + 0.5 * (moved[1] - moved[0])


def test_tallies_kept_by_events_equal_a_recount(short_historical):
    """Counts and jobs are updated event by event (exits, closures, moves, splits, entries), never recounted;
    so are the live agents and the free slots of each run (the dead slots below its extent, lowest first)."""
    model = Model(short_historical, seeds=[4, 5], overrides=[{}, {"firms.relocation_rate": 0.2}])
    for month in range(18):
        model.step(month)
    firms, jobs = model.firms.recount()
    np.testing.assert_array_equal(model.firms.counts(), firms)
    np.testing.assert_array_equal(model.firms.jobs(), jobs)
    f = model.firms
    np.testing.assert_array_equal(f.agents, f.alive.sum(axis=1))
    for b in range(2):
        assert len(f._free[b]) > 0
        np.testing.assert_array_equal(f._free[b], np.flatnonzero(~f.alive[b, : f.extent[b]]))
    assert model.firms.counters.moves_from_beijing.sum() > 0 and model.firms.counters.exits.sum() > 0


def test_a_programme_active_in_one_run_of_a_batch_leaves_the_other_as_if_alone():
    """Per-run levers: a dispersal on in run 0 and off in run 1 gives each run what it gives alone."""

    def month(firms: Firms, rate: list[float]) -> Firms:
        programme = Dispersal(
            "test",
            MANUFACTURING,
            np.array(rate),
            np.array([True, False]),
            np.full(len(rate), 0.5),
            np.array([False, True]),
        )
        n = len(rate)
        ctx = calm(firms)
        ctx = dataclasses.replace(
            ctx,
            travel_time=np.repeat(ctx.travel_time, n, axis=0),
            coverage=np.repeat(ctx.coverage, n, axis=0),
            incentive=np.repeat(ctx.incentive, n, axis=0),
            pharma_incentive=np.repeat(ctx.pharma_incentive, n, axis=0),
            population=np.repeat(ctx.population, n, axis=0),
            floor_space_change=np.repeat(ctx.floor_space_change, n, axis=0),
            dispersals=(programme,),
        )
        for _ in range(3):
            firms.step(ctx)
        return firms

    setup = dict(firms=((3000, 0), (1000, 0)), weights=((1, 1), (10, 1)), exit_rate=[0.2, 0, 0, 0], relocation_rate=0.2)
    batch = month(tiny(seeds=(3, 4), **setup), [2.0, 0.0])
    alone = [month(tiny(seeds=(3,), **setup), [2.0]), month(tiny(seeds=(4,), **setup), [0.0])]
    assert batch.counters.dispersed[0, MANUFACTURING] > 0 and batch.counters.dispersed[1].sum() == 0
    for run, single in enumerate(alone):
        np.testing.assert_array_equal(batch.counts()[run], single.counts()[0])
        width = single.extent[0]
        for column in ("alive", "region", "weight", "age"):
            np.testing.assert_array_equal(getattr(batch, column)[run, :width], getattr(single, column)[0, :width])


def test_flat_draws_are_each_runs_own_numbers_run_after_run():
    """``Streams.random_runs`` and ``lognormal_runs`` (the draws of agents listed by run) are the numbers each
    run's generator gives on its own, alone or in a batch, whatever the other runs draw."""
    from sim.random import Streams

    per_run = np.array([3, 0, 5, 2])
    flat = Streams([1, 2, 3, 4]).random_runs("x", per_run)
    alone = [np.random.default_rng([seed, zlib.crc32(b"x")]).random(n) for seed, n in zip([1, 2, 3, 4], per_run)]
    np.testing.assert_array_equal(flat, np.concatenate(alone))
    np.testing.assert_array_equal(Streams([3]).random_runs("x", np.array([5])), flat[3:8])
    sigma = np.array([0.5, 1.0, 2.0, 1.5])
    flat = Streams([1, 2, 3, 4]).lognormal_runs("y", sigma, per_run)
    expected = [
        np.random.default_rng([seed, zlib.crc32(b"y")]).lognormal(-s * s / 2, s, n)
        for seed, s, n in zip([1, 2, 3, 4], sigma, per_run)
    ]
    np.testing.assert_array_equal(flat, np.concatenate(expected))
    assert len(Streams([1]).random_runs("x", np.array([0]))) == 0
    assert len(Streams([1]).lognormal_runs("y", np.array([1.0]), np.array([0]))) == 0


def test_a_runs_limit_leaves_each_agent_its_own_probability(short_historical, monkeypatch):
    """The per-slot selections draw only candidates under a run's limit (``Firms._limit``, ``Streams.below``);
    with no limit (every slot draws, as the formulas read) the months differ draw by draw but not in law:
    over 8 seeds, half a year of exits, moves and dispersals for the shipped parameters and for parameters
    whose limits pass most draws or whose costs are often above the split agree within their noise."""

    class EveryAgent(Firms):
        @staticmethod
        def _limit(hazard_bound, dt):
            return np.full(len(hazard_bound), 2.0)

    overrides = [
        {},
        {"firms.rent_exit_response": 20.0, "firms.young_exit_boost": 10.0, "firms.relocation_rate": 1.0},
        {"firms.cost_sensitivity_spread": 1.5, "firms.cost_push": 20.0},  # many costs above the split
    ]
    seeds = list(range(8))

    def year(firm_class) -> Model:
        monkeypatch.setattr(sim.model, "Firms", firm_class)
        model = Model(short_historical, seeds=seeds * 3, overrides=[o for o in overrides for _ in seeds])
        for month in range(6):
            model.step(month)
        return model

    limited, every = year(Firms), year(EveryAgent)
    assert type(limited.firms) is Firms and type(every.firms) is EveryAgent
    for name in ("exits", "spontaneous_moves", "dispersed"):
        a = getattr(limited.firms.counters, name).sum(axis=1).reshape(3, len(seeds))  # (case, seed) real firms
        b = getattr(every.firms.counters, name).sum(axis=1).reshape(3, len(seeds))
        assert (a.sum(axis=1) > 0).all(), name
        noise = np.sqrt(a.var(axis=1, ddof=1) / len(seeds) + b.var(axis=1, ddof=1) / len(seeds))
        assert (np.abs(a.mean(axis=1) - b.mean(axis=1)) < 4 * noise + 1e-9).all(), (name, a.mean(1), b.mean(1))
    f, p = limited.firms, limited.firms.params
    rent_by_cell = np.repeat(f.rent_index() - 1.0, len(FIRM_SECTORS), axis=1).ravel()
    top_rate, split = np.abs(f._exit_rate_by_cell()).reshape(24, -1).max(axis=1), f._cost_split()
    bound = top_rate * (1 + np.abs(p.young_exit_boost)) * f._push_bound(p.rent_exit_response, rent_by_cell, split)
    limit = f._limit(bound, DT)
    assert limit[0] < 0.05 and limit[8] > 0.06  # shipped: most spared; case 1: four times fewer
    assert (f.cost_sensitivity[16][f.alive[16]] > split[16]).mean() > 0.05  # case 2: checked for their costs
