"""Firm equations (sim/firms.py) where tests/test_firms.py leaves a wrong term unseen (mutation survivors).

Small cases worked by hand on the firms' own pieces; the firms helper's file keeps the
directions and whole-run checks.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from test_firms import calm, params, tiny

import sim.firms
from sim.errors import InputError
from sim.firms import (
    HIGH_END,
    MANUFACTURING,
    N_SECTORS,
    FirmCounters,
    Firms,
    FirmTable,
    demand,
    load_firm_table,
    rent_index,
)
from sim.model import DT
from sim.random import Streams
from sim.regions import Regions, load_regions
from sim.timeline import Dispersal

pytestmark = pytest.mark.fast


def test_the_high_end_share_of_entrants_by_hand_and_undefined_without_entrants():
    counters = FirmCounters(runs=2, regions=3)
    counters.beijing_entrants[0, 0, :] = 1.0
    counters.beijing_entrants[0, 5, HIGH_END] = 3.0
    sectors = counters.beijing_entrants.shape[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a year without entrants is NaN by intent, not a 0/0 warning
        share = counters.high_end_share()
    np.testing.assert_allclose(share[0], 4.0 / (sectors + 3.0), rtol=1e-15)
    assert np.isnan(share[1])


def test_a_single_entrant_is_a_share_too():
    counters = FirmCounters(runs=1, regions=2)
    counters.beijing_entrants[0, 11, HIGH_END] = 1.0
    assert counters.high_end_share()[0] == 1.0


def test_rent_is_the_2014_level_times_the_rent_index():
    firms = tiny(firms=((1000, 0), (1000, 0)))
    firms.space[:, 0] *= 0.8  # the core: occupancy 0.9 / 0.8 of its 2014 level, index (1 / 0.8)^2
    np.testing.assert_allclose(firms.rent_index(), [[1.5625, 1.0]], rtol=1e-12)
    np.testing.assert_allclose(firms.rent(), [[1.0 * 1.5625, 0.5 * 1.0]], rtol=1e-12)  # levels 1 and 0.5


def test_refused_changes_are_first_choices_the_catalogue_turns_away_by_hand():
    """200,000 firms of the rest; the catalogue turns away half the manufacturers choosing the core.

    Catalogue-free shares from the rest (constants 0): stay U = -0.5 (rent level 0.5), core U = -1 - 1
    (rent 1, one hour): Q_core = 1 / (1 + e^1.5). Refused = Poisson(200,000 * Q_core * 0.5 * apply 0.5).
    """
    firms = tiny(firms=((0, 0), (200000, 0)), weights=((1, 1), (1000, 1)), rent_weight=1.0, distance_weight=1.0)
    firms.params = dataclasses.replace(firms.params, apply_despite_ban=np.array([0.5]))
    firms.destination_constant[:] = 0.0
    coverage = np.zeros((1, 2, N_SECTORS))
    coverage[0, 0, MANUFACTURING] = 0.5
    run, slot = np.nonzero(firms.alive)
    for _ in range(2):  # the count accumulates month by month
        firms._count_refused_changes(calm(firms, coverage=coverage), firms.counts(), np.ones((1, 2)), run, slot)
    expected = 2 * 200000 * 0.5 * 0.5 / (1 + np.exp(1.5))  # 2 x 9,121; the shares with the catalogue: 2 x 5,015
    assert abs(firms.counters.refused_changes[0] - expected) < 5 * np.sqrt(expected)


def test_pharmaceutical_movers_choose_by_their_own_shares():
    firms = tiny(firms=((40, 0), (0, 0)))
    run, slot = np.nonzero(firms.alive)
    firms.pharma[run[:10], slot[:10]] = True
    probs = np.zeros((1, N_SECTORS, 2, 2))
    probs[..., 0] = 1.0  # everyone else stays
    pharma_probs = np.zeros((1, N_SECTORS, 2, 2))
    pharma_probs[..., 1] = 1.0  # pharmaceutical firms go to region 1
    chosen = firms._choose(run, slot, probs, pharma_probs, np.full(len(run), 0.5))
    np.testing.assert_array_equal(chosen, np.where(firms.pharma[run, slot], 1, 0))
    np.testing.assert_array_equal(firms._choose(run, slot, probs, None, np.full(len(run), 0.5)), 0)


def test_the_entrant_window_starts_with_each_sector_s_would_be_entrants_in_beijing():
    firms = tiny(firms=((300, 1000), (0, 500)), entry_rate=[0.24, 0, 0.12, 0])
    ctx = calm(firms)
    firms.seed_entrant_history(ctx)
    wanted = firms.would_be_entrants(ctx, firms.rent_index())[0, 0]  # the core is the only Beijing region
    assert wanted[MANUFACTURING] > 0 and wanted[HIGH_END] > 0 and wanted[MANUFACTURING] != wanted[HIGH_END]
    np.testing.assert_allclose(firms.counters.beijing_entrants[0], np.tile(wanted, (12, 1)), rtol=1e-15)


def choose(rows: np.ndarray, uniform: float) -> int:
    """One manufacturer of the core drawing ``uniform`` against ``rows`` (its shares over destinations)."""
    firms = tiny(firms=((1, 0), (0, 0)))
    run, slot = np.nonzero(firms.alive)
    probs = np.zeros((1, N_SECTORS, 2, len(rows)))
    probs[0, MANUFACTURING, 0] = rows
    return int(firms._choose(run, slot, probs, None, np.array([uniform]))[0])


def test_a_destination_is_drawn_against_the_cumulative_shares_scaled_to_their_sum():
    assert choose(np.array([0.2, 0.2]), 0.25) == 0  # 0.25 * 0.4 = 0.1 falls in the first share
    assert choose(np.array([0.2, 0.2]), 0.75) == 1
    assert choose(np.array([0.0, 0.0]), 0.5) == -1  # nowhere open: -1, never a region
    # a draw just under 1 where the cumulative sum falls short of the sum by rounding: still the last region
    rows = np.array([0.13509650502241122, 0.7214883401940817, 0.5253543224757259, 0.31024187555895566,
                     0.4858353588317891, 0.8894878343490003, 0.9340435159562497, 0.35779519670907023])  # fmt: skip
    uniform = np.nextafter(1.0, 0.0)
    assert np.cumsum(rows)[-1] < uniform * rows.sum()
    assert choose(rows, uniform) == 7


def test_draws_of_one_run_leave_the_other_runs_streams_as_if_alone():
    batch = tiny(seeds=(3, 4))
    batch._draws("test stream", np.array([0, 0, 0]))  # run 0 draws three; run 1 draws nothing
    later = batch._draws("test stream", np.array([1, 1]))
    alone = tiny(seeds=(4,))._draws("test stream", np.array([0, 0]))
    np.testing.assert_array_equal(later, alone)


def test_space_removed_beyond_what_there_is_leaves_none_not_less():
    firms = tiny(firms=((1000, 0), (1000, 0)))
    space = firms.space.copy()
    firms.step(calm(firms, floor_space_change=np.array([[-2 * space[0, 0], 0.0]])))
    assert firms.space[0, 0] == 0.0
    assert firms.space[0, 1] == space[0, 1]


def test_firms_age_by_the_month():
    firms = tiny(firms=((1000, 0), (1000, 0)))
    firms.age[:] = 4.0
    firms.step(calm(firms))
    alive = firms.alive
    assert alive.any()
    np.testing.assert_allclose(firms.age[alive], 4.0 + DT, rtol=1e-15)


@pytest.mark.parametrize("response", ["rent_exit_response", "cost_push"])
def test_an_extreme_rent_response_makes_every_firm_in_the_dear_region_go_without_overflow(response):
    """exp(response * (rent index - 1)) is capped at exp(50): every core firm exits (moves) within the month."""
    rates = {"exit_rate": [0.3, 0, 0, 0]} if response == "rent_exit_response" else {"relocation_rate": 0.3}
    firms = tiny(firms=((20000, 0), (20000, 0)), **rates, **{response: 10000.0})
    firms.space[:, 0] *= 0.8  # the core's rent index 1.5625: exponent 5625, past the overflow of exp (709.8)
    firms.age[:] = 100.0
    leave = firms.destination_probabilities(calm(firms), firms.counts(), firms.rent_index())[0, MANUFACTURING, 0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        firms.step(calm(firms))
    if response == "rent_exit_response":
        assert firms.counters.exits[0, MANUFACTURING] >= 20000  # all the core's firms, and some of the other's
    else:  # every core firm relocates; those choosing another region count as moves (a share `leave`)
        expected = 20000 * leave
        assert firms.counters.spontaneous_moves[0, MANUFACTURING] >= expected - 4 * np.sqrt(expected)


def test_young_firms_exit_more_by_the_documented_boost():
    """exit_rate * (1 + boost * exp(-age / 3)): 20,000 firms aged 3 years once this month's ageing is done."""
    firms = tiny(firms=((20000, 0), (0, 0)), exit_rate=[0.6, 0, 0, 0], young_exit_boost=2.0)
    firms.age[:] = 3.0 - DT
    firms.step(calm(firms))
    hazard = 0.6 * (1 + 2.0 * np.exp(-1.0))
    expected = 20000 * -np.expm1(-hazard * DT)  # 1,663; without the boost 975
    assert abs(firms.counters.exits[0, MANUFACTURING] - expected) < 4 * np.sqrt(expected)


def programme(name: str, rate, close_share=0.0) -> Dispersal:
    """Disperses the core's manufacturers to the other region at ``rate`` per year (one value per run)."""
    rate = np.atleast_1d(np.asarray(rate, float))
    return Dispersal(name, MANUFACTURING, rate, np.array([True, False]), np.full(len(rate), close_share),
                     np.array([False, True]))  # fmt: skip


def test_a_programme_below_one_a_year_disperses_too_and_one_not_active_leaves_the_next_one_alone():
    firms = tiny(firms=((20000, 0), (0, 0)))
    firms.cost_sensitivity[:] = 2.0  # the hazard is rate x the firm's cost sensitivity
    firms.step(calm(firms, dispersals=(programme("off", 0.0), programme("slow", 0.6))))
    expected = 20000 * -np.expm1(-0.6 * 2.0 * DT)  # 1,903
    assert abs(firms.counters.dispersed[0, MANUFACTURING] - expected) < 4 * np.sqrt(expected)


def test_a_month_in_which_a_programme_is_not_active_draws_nothing_from_its_streams():
    """Months with rate 0 leave the programme's streams untouched: its first active month draws as if it were new."""
    waited, fresh = tiny(firms=((20000, 0), (0, 0)), seeds=(3, 4)), tiny(firms=((20000, 0), (0, 0)), seeds=(3, 4))
    waited.step(calm(waited, dispersals=(programme("later", [0.0, 0.0]),)))
    fresh.step(calm(fresh))
    for firms in (waited, fresh):  # now active in run 0 only
        firms.step(calm(firms, dispersals=(programme("later", [6.0, 0.0]),)))
    assert waited.counters.dispersed[0, MANUFACTURING] > 0
    np.testing.assert_array_equal(waited.counters.dispersed, fresh.counters.dispersed)
    np.testing.assert_array_equal(waited.counts(), fresh.counts())


def test_a_run_waiting_for_its_programme_in_a_batch_draws_as_if_alone():
    """Run 1 of the batch waits a month while run 0 disperses, then starts: as run 1 alone would."""
    batch, alone = tiny(firms=((20000, 0), (0, 0)), seeds=(3, 4)), tiny(firms=((20000, 0), (0, 0)), seeds=(4,))
    batch.step(calm(batch, dispersals=(programme("p", [6.0, 0.0]),)))
    alone.step(calm(alone, dispersals=(programme("p", [0.0]),)))
    batch.step(calm(batch, dispersals=(programme("p", [6.0, 6.0]),)))
    alone.step(calm(alone, dispersals=(programme("p", [6.0]),)))
    assert alone.counters.dispersed[0, MANUFACTURING] > 0
    np.testing.assert_array_equal(batch.counters.dispersed[1], alone.counters.dispersed[0])
    np.testing.assert_array_equal(batch.counts()[1], alone.counts()[0])


@pytest.mark.parametrize(("allowed", "closed_share"), [((False, False), 1.0), ((True, False), 0.0)])
def test_dispersed_units_with_nowhere_open_close_and_those_bound_for_region_0_arrive(allowed, closed_share):
    firms = tiny(firms=((0, 0), (4000, 0)))  # the programme targets region 1 this time
    dispersal = Dispersal("p", MANUFACTURING, np.array([200.0]), np.array([False, True]), np.array([0.0]),
                          np.array(allowed))  # fmt: skip
    firms.step(calm(firms, dispersals=(dispersal,)))
    c = firms.counters
    dispersed = c.dispersed[0, MANUFACTURING]
    assert dispersed > 0.99 * 4000
    assert c.dispersed_closed[0, MANUFACTURING] == closed_share * dispersed
    assert c.relocated[0, MANUFACTURING, 0] == (1 - closed_share) * dispersed
    assert firms.counts()[0, 0, MANUFACTURING] == (1 - closed_share) * dispersed


def three_regions_firms(firms_in_core: int) -> Firms:
    """The core (Beijing) and two equal regions an hour away; manufacturers in the core only."""
    values: dict = {f.name: np.zeros(3) for f in dataclasses.fields(Regions)}
    values.update(
        codes=("bj_core", "tianjin", "hebei_other"),
        names=("core", "tianjin", "hebei"),
        provinces=("beijing", "tianjin", "hebei"),
        beijing=np.array([True, False, False]),
        central_six=np.array([True, False, False]),
        population_2014=np.full(3, 100.0),
        rent_level_2014=np.ones(3),
        travel_time=np.ones((3, 3)) - np.eye(3),
    )
    table = FirmTable(np.zeros((3, N_SECTORS)), np.full((3, N_SECTORS), 10.0), np.ones((3, N_SECTORS)))
    table.firms[0, MANUFACTURING] = firms_in_core
    firms = Firms(Regions(**values), table, params(space_max_build_rate=np.zeros(3)), Streams([3]))
    firms.destination_constant[:] = 0.0
    return firms


def test_dispersed_pharmaceutical_units_follow_their_own_incentive():
    firms = three_regions_firms(4000)
    run, slot = np.nonzero(firms.alive)
    firms.pharma[run[::2], slot[::2]] = True  # every other unit
    n = len(firms.regions)
    dispersal = Dispersal("p", MANUFACTURING, np.array([200.0]), np.array([True, False, False]), np.array([0.0]),
                          np.array([False, True, True]))  # fmt: skip
    incentive = np.zeros((1, n))
    incentive[0, 2] = 20.0  # a pharmaceutical incentive in the third region only
    firms.step(calm(firms, dispersals=(dispersal,), pharma_incentive=incentive, coverage=np.zeros((1, n, N_SECTORS)),
                    incentive=np.zeros((1, n, N_SECTORS)), floor_space_change=np.zeros((1, n))))  # fmt: skip
    c = firms.counters
    assert c.relocated_pharma[0, 2] > 1900 and c.relocated_pharma[0, 1] == 0  # all pharmaceutical units go there
    others = c.relocated[0, MANUFACTURING] - c.relocated_pharma[0]
    assert others[1] > 500 and others[2] > 500  # the others split between the two equal regions


def test_a_month_whose_dispersal_splits_agents_still_relocates_and_keeps_the_books():
    """Weight-10 agents of the core disperse into a region resolved at 1 firm per agent (new slots open) or close,
    while firms exit and relocate: every removal is an exit (closures included), later steps see the split agents."""
    firms = tiny(firms=((4000, 0), (2000, 0)), weights=((10, 1), (1, 1)), exit_rate=[0.6, 0, 0, 0],
                 relocation_rate=3.0, cost_push=1.0)  # fmt: skip
    firms.age[:] = 100.0
    firms.space[:, 1] *= 0.8  # region 1 dear: its firms relocate more
    width = int(firms.extent.max())
    dispersal = Dispersal("p", MANUFACTURING, np.array([6.0]), np.array([True, False]), np.array([0.5]),
                          np.array([False, True]))  # fmt: skip
    firms.step(calm(firms, dispersals=(dispersal,)))
    c = firms.counters
    assert int(firms.extent.max()) > width and c.dispersed_closed[0, MANUFACTURING] > 0
    assert c.exits[0, MANUFACTURING] == 6000 - firms.counts()[0, :, MANUFACTURING].sum()
    assert c.spontaneous_moves[0, MANUFACTURING] > 0
    for _ in range(2):
        firms.step(calm(firms, dispersals=(dispersal,)))
    assert c.exits[0, MANUFACTURING] == 6000 - firms.counts()[0, :, MANUFACTURING].sum()
    np.testing.assert_array_equal(firms.counts(), firms.recount()[0])


def test_floor_space_leaves_the_pipeline_through_three_stages_by_hand():
    """DELAY3 of construction time T: each stage drains at 3 / T; the last stage's drain becomes space."""
    firms = tiny(firms=((1000, 0), (1000, 0)), space_construction_time=1.5)
    space = firms.space.copy()
    firms.space_pipeline[0, 0] = [30.0, 60.0, 90.0]
    firms.step(calm(firms))  # no build rate: nothing starts
    drain = np.array([30.0, 60.0, 90.0]) * 3 / 1.5
    np.testing.assert_allclose(firms.space_pipeline[0, 0], [30.0, 60.0, 90.0] + (np.r_[0.0, drain[:2]] - drain) * DT)
    np.testing.assert_allclose(firms.space[0], space[0] + [drain[2] * DT, 0.0])


def test_moves_between_regions_count_and_moves_within_a_region_do_not():
    """Region 1's firms relocate at 6 a year; region 0 is empty and cheap (its firms never relocate). Moves
    counted are those that arrived in region 0; the others stayed within region 1."""
    firms = tiny(firms=((0, 0), (20000, 0)), relocation_rate=6.0, cost_push=100.0, rent_weight=1.0)
    firms.age[:] = 100.0
    firms.destination_constant[:] = 0.0
    firms.space[:, 0] = 1e9  # ample empty space: rent index about 0, push exp(-100): no one leaves it
    for _ in range(2):
        firms.space[0, 1] = firms.jobs()[0, 1].sum() / 0.9  # region 1 at its 2014 occupancy: rent index 1
        firms.step(calm(firms))
    arrived = firms.counts()[0, 0, MANUFACTURING]
    assert 0 < arrived < 20000 * -np.expm1(-6.0 * 2 * DT)  # some relocating firms stayed within region 1
    assert firms.counters.spontaneous_moves[0, MANUFACTURING] == arrived


def test_relocating_pharmaceutical_firms_follow_their_own_incentive():
    firms = three_regions_firms(4000)
    firms.params = dataclasses.replace(firms.params, relocation_rate=np.array([6.0]))
    firms.age[:] = 100.0
    run, slot = np.nonzero(firms.alive)
    firms.pharma[run[::2], slot[::2]] = True
    n = len(firms.regions)
    incentive = np.zeros((1, n))
    incentive[0, 2] = 20.0
    firms.step(calm(firms, pharma_incentive=incentive, coverage=np.zeros((1, n, N_SECTORS)),
                    incentive=np.zeros((1, n, N_SECTORS)), floor_space_change=np.zeros((1, n))))  # fmt: skip
    pharma = firms.pharma & firms.alive
    moved_pharma = np.bincount(firms.region[pharma], weights=firms.weight[pharma], minlength=n)
    assert moved_pharma[2] > 500 and moved_pharma[1] == 0  # movers all chose the incentive's region


def test_a_month_of_exits_at_a_high_rate_follows_one_minus_exp():
    """Exit 6 a year: 1 - exp(-0.5) = 39% of 20,000 firms within the month (a linear hazard would say 50%)."""
    firms = tiny(firms=((20000, 0), (0, 0)), exit_rate=[6.0, 0, 0, 0])
    firms.age[:] = 100.0
    firms.step(calm(firms))
    expected = 20000 * -np.expm1(-0.5)
    assert abs(firms.counters.exits[0, MANUFACTURING] - expected) < 4 * np.sqrt(expected)


def test_entrants_refused_in_beijing_register_outside_it_and_every_entrant_is_counted_by_hand():
    """The core's catalogue covers half of high-end entry; each refused would-be entrant applies (share 1), then
    registers elsewhere (share 1): outside Beijing, i.e. in region 1, never in the core. Zhongguancun firms
    (10% of the core's high-end firms) open branches outside Beijing at 1 a year. High-end agents weigh 10."""
    firms = tiny(firms=((0, 20000), (0, 20000)), weights=((1, 10), (1, 10)), entry_rate=[0, 0, 0.6, 0],
                 apply_despite_ban=1.0, refused_register_elsewhere=1.0, branch_rate=1.0)  # fmt: skip
    n = len(firms.regions)
    coverage = np.zeros((1, n, N_SECTORS))
    coverage[0, 0, HIGH_END] = 0.5
    wanted = firms.would_be_entrants(calm(firms), firms.rent_index())[0, 0, HIGH_END]  # about 1,000 a month
    before = firms.counts()[0, :, HIGH_END].copy()
    for _ in range(4):
        firms.step(calm(firms, coverage=coverage))
    c, after = firms.counters, firms.counts()[0, :, HIGH_END]
    refused = 4 * 0.5 * wanted
    assert abs(c.refused[0] - refused) < 5 * np.sqrt(refused)
    assert c.diverted[0, 0] == 0 and abs(c.diverted[0, 1] - refused) < 5 * np.sqrt(10 * refused)
    branches = 4 * 0.1 * 20000 * 1.0 * DT  # 667
    assert c.branches[0, 0] == 0 and abs(c.branches[0, 1] - branches) < 5 * np.sqrt(10 * branches)
    assert c.entries[0, HIGH_END] == (after - before).sum()  # no exits, no moves: every new firm is an entry
    window = c.beijing_entrants[0]  # the last 12 months of Beijing's admitted entrants, the newest last
    assert (window[:8] == 0).all() and (window[8:, HIGH_END] > 0).all()
    assert window[8:].sum() == window[8:, HIGH_END].sum() == after[0] - before[0]


def test_rent_index_of_a_region_with_less_than_one_workplace_of_space():
    # 0.45 jobs in 0.5 workplaces: occupancy 0.9, the 2014 level, so index 1 (space is floored only near 0)
    assert rent_index(np.array([[0.45]]), np.array([[0.5]]), np.array([0.9]), np.array([2.0]))[0, 0] == pytest.approx(
        1.0
    )


@pytest.mark.parametrize(("time", "years"), [(2016.5, 2.5), (2030.0, 4.0)])
def test_high_end_entry_grows_at_its_rate_for_its_years_then_stays(time, years):
    """g(t) = exp(growth * min(t - 2014, years of growth)): 5% a year for at most 4 years; other sectors 1."""
    firms = tiny(firms=((1000, 1000), (0, 0)), entry_rate=[0.12, 0, 0.12, 0], high_end_entry_growth=0.05,
                 high_end_growth_years=4.0)  # fmt: skip
    wanted = firms.would_be_entrants(calm(firms, time=time), np.ones((1, 2)))[0, 0]
    np.testing.assert_allclose(wanted[[MANUFACTURING, HIGH_END]], [10.0, 10.0 * np.exp(0.05 * years)], rtol=1e-12)


def firms_in(codes, beijing, travel, firms, weights=None, **changes) -> Firms:
    """Firms of the regions ``codes``; ``firms[r][s]`` real firms of region r and sector index s (one weight each)."""
    n = len(codes)
    values: dict = {f.name: np.zeros(n) for f in dataclasses.fields(Regions)}
    values.update(
        codes=tuple(codes), names=tuple(codes), provinces=tuple("beijing" if b else "hebei" for b in beijing),
        beijing=np.array(beijing), central_six=np.array(beijing), population_2014=np.full(n, 100.0),
        rent_level_2014=np.ones(n), travel_time=np.array(travel, float),
    )  # fmt: skip
    table = FirmTable(np.array(firms, float), np.full((n, N_SECTORS), 10.0), np.ones((n, N_SECTORS)))
    if weights is not None:
        table.agent_weight[:] = weights
    firms = Firms(Regions(**values), table, params(space_max_build_rate=np.zeros(n), **changes), Streams([3]))
    firms.destination_constant[:] = 0.0
    return firms


def test_demand_mixes_local_residents_and_those_within_reach_by_the_sector_s_reach():
    """D = P^(1 - reach) * A^reach: P = 4, A = 16 gives 4 at reach 0, 8 at reach 1/2, 16 at reach 1."""
    reach = np.array([[0.0, 0.5, 1.0, 0.25]])
    got = demand(np.array([[4.0]]), np.array([[16.0]]), reach)
    np.testing.assert_allclose(got[0, 0], [4.0, 8.0, 16.0, 4.0**0.75 * 16.0**0.25], rtol=1e-12)


def test_access_to_the_core_is_the_travel_time_to_the_core_wherever_it_is_listed():
    """Shares by access alone, exp(-access_weight * hours to the core): the core is the second region here;
    without a core the first region stands in for it."""
    travel = [[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]]
    nowhere = np.zeros((3, N_SECTORS))  # no manufacturers; a high-end firm each (Firms needs an agent)
    nowhere[:, HIGH_END] = 1
    firms = firms_in(("tianjin", "bj_core", "hebei_other"), (False, True, False), travel, nowhere, access_weight=1.0)
    ctx = calm(firms)
    shares = firms.destination_probabilities(ctx, firms.counts(), np.ones((1, 3)))[0, MANUFACTURING, 0]
    pull = np.exp(-np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(shares, pull / pull.sum(), rtol=1e-12)
    firms = firms_in(("tianjin", "hebei_other"), (False, False), [[0.0, 1.0], [1.0, 0.0]], nowhere[:2],
                     access_weight=1.0)  # fmt: skip
    shares = firms.destination_probabilities(calm(firms), firms.counts(), np.ones((1, 2)))[0, MANUFACTURING, 1]
    np.testing.assert_allclose(shares, [1.0, np.exp(-1.0)] / (1.0 + np.exp(-1.0)), rtol=1e-12)


def test_branches_go_out_as_from_the_central_city():
    """Zhongguancun firms (10% of 20,000 high-end firms in Beijing) open branches at 1 a year, choosing among the
    regions outside Beijing by distance from bj_central (one hour to the first, three to the second), not from
    the core (the other way round): e^-1 / (e^-1 + e^-3) = 88% go to the first."""
    travel = [[0, 1, 3, 1], [1, 0, 1, 3], [3, 1, 0, 2], [1, 3, 2, 0]]
    stock = np.zeros((4, N_SECTORS))
    stock[0, HIGH_END] = stock[1, HIGH_END] = 10000
    firms = firms_in(("bj_core", "bj_central", "near_central", "near_core"), (True, True, False, False), travel,
                     stock, branch_rate=1.0, distance_weight=1.0)  # fmt: skip
    for _ in range(3):
        firms.step(calm(firms))
    branches = 3 * 0.1 * 20000 * 1.0 * DT  # 500
    share = np.exp(-1.0) / (np.exp(-1.0) + np.exp(-3.0))
    got = firms.counters.branches[0]
    assert got[0] == got[1] == 0
    assert abs(got[2] - branches * share) < 4 * np.sqrt(branches * share)
    assert abs(got[3] - branches * (1 - share)) < 4 * np.sqrt(branches * (1 - share))


def test_transfer_projects_count_industrial_moves_from_beijing_outside_tongzhou_into_tongzhou_or_north3():
    """Six movers by hand: only the two industrial firms leaving the core for Tongzhou or the northern counties
    are transfers; moves from Beijing count every mover whose origin is in Beijing (by sector and destination)."""
    codes = ("bj_core", "bj_tongzhou", "north3", "tianjin")
    stock = np.zeros((4, N_SECTORS))
    stock[0, MANUFACTURING], stock[0, HIGH_END], stock[1, MANUFACTURING], stock[3, MANUFACTURING] = 3, 1, 1, 1
    firms = firms_in(codes, (True, True, False, False), np.ones((4, 4)) - np.eye(4), stock)
    run, slot = np.nonzero(firms.alive)
    origin, sector = firms.region[run, slot], firms.sector[run, slot]
    assert list(zip(origin, sector)) == [(0, 0), (0, 0), (0, 0), (0, HIGH_END), (1, 0), (3, 0)]
    destination = np.array([1, 2, 3, 1, 2, 0], np.int8)
    firms._move(run, slot, destination, np.zeros_like(firms.alive))
    c = firms.counters
    assert c.transfers[0] == 2.0
    np.testing.assert_array_equal(c.moves_from_beijing[0, MANUFACTURING], [0, 1, 2, 1])
    np.testing.assert_array_equal(c.moves_from_beijing[0, HIGH_END], [0, 1, 0, 0])
    assert c.moves_from_beijing.sum() == 5  # the mover from Tianjin is not one


def test_initial_firms_are_aged_uniformly_over_twenty_years_and_pharmaceutical_among_manufacturers_only():
    """20,000 manufacturers and 20,000 high-end firms; pharma_share 0.3 of manufacturers (docs/model.md)."""
    firms = tiny(firms=((20000, 20000), (0, 0)), pharma_share=0.3)
    age, alive = firms.age[firms.alive], firms.alive
    assert age.min() >= 0.0 and 19.99 < age.max() < 20.0
    assert abs(age.mean() - 10.0) < 4 * 20 / np.sqrt(12 * 40000)
    manufacturing = alive & (firms.sector == MANUFACTURING)
    pharma = np.count_nonzero(firms.pharma[manufacturing])
    assert abs(pharma - 6000) < 4 * np.sqrt(20000 * 0.3 * 0.7)
    assert not firms.pharma[alive & (firms.sector == HIGH_END)].any()


def test_the_agent_limit_names_the_run_that_would_cross_it_and_allows_reaching_it(monkeypatch):
    firms = tiny(firms=((5, 0), (0, 0)), seeds=(3, 4))  # five agents in each run
    monkeypatch.setattr(sim.firms, "MAX_AGENTS_PER_RUN", 8)

    def add(run):
        run = np.array(run)
        firms._add(run, np.zeros_like(run), np.zeros_like(run), np.zeros(len(run)), "test entrants")

    add([0, 0, 0])  # run 0 reaches 8: allowed
    assert np.count_nonzero(firms.alive[0]) == 8
    with pytest.raises(InputError, match=r"run 1 would hold 9 firm agents, over the limit of 8"):
        add([1, 1, 1, 1])  # run 1 would hold 9 (run 0, at 8, holds more now but adds nothing)


def test_a_programme_at_twelve_a_year_disperses_one_minus_exp_of_one_of_its_targets_in_a_month_not_all():
    firms = tiny(firms=((20000, 0), (0, 0)))
    firms.step(calm(firms, dispersals=(programme("fast", 12.0),)))
    p = -np.expm1(-1.0)  # 63%
    assert abs(firms.counters.dispersed[0, MANUFACTURING] - 20000 * p) < 5 * np.sqrt(20000 * p * (1 - p))


def test_a_batch_gives_each_run_what_it_gives_alone():
    """Three runs of three slots each, dense draws (limits above ``DENSE_FROM``): exits, dispersal and moves per
    run as alone."""

    def month(firms):
        runs = firms.alive.shape[0]
        firms.step(calm(firms, dispersals=(programme("p", [6.0] * runs, close_share=0.5),)))

    def build(seeds):
        firms = tiny(firms=((2, 0), (1, 0)), seeds=seeds, exit_rate=[3.0, 0, 0, 0], relocation_rate=6.0)
        firms.age[:] = 100.0
        return firms

    alone = []
    for seed in (3, 4, 5):
        firms = build((seed,))
        for _ in range(3):
            month(firms)
        alone.append(firms)
    batch = build((3, 4, 5))
    for _ in range(3):
        month(batch)
    for b, firms in enumerate(alone):
        for name in ("exits", "dispersed", "dispersed_closed", "spontaneous_moves"):
            np.testing.assert_array_equal(getattr(batch.counters, name)[b], getattr(firms.counters, name)[0])
        np.testing.assert_array_equal(batch.counts()[b], firms.counts()[0])
    assert batch.counters.exits.sum() > 0 and batch.counters.dispersed.sum() > 0


def test_a_sector_absent_from_a_region_in_2014_draws_no_movers_there_at_2014_conditions():
    """The fitted constants put the 2014 stock at rest: no firm of a sector moves where it had none."""
    firms = tiny(firms=((1000, 1000), (1000, 0)))
    firms.destination_constant = firms._fit_destination_constants()
    shares = firms.destination_probabilities(calm(firms), firms.counts(), np.ones((1, 2)))[0]
    assert shares[HIGH_END, :, 1].max() < 1e-12  # no high-end firm in region 1 in 2014
    assert shares[MANUFACTURING, 0, 1] > 1e-3


def test_shares_of_one_sector_ignore_another_sector_s_utilities_however_large():
    """Each (sector, origin) row is its own logit: an incentive of 800 for high-end firms in region 1 sends
    them all there (no overflow) and leaves the manufacturers' shares as they were."""
    firms = tiny(firms=((1000, 1000), (1000, 1000)))
    counts, rent = firms.counts(), np.ones((1, 2))
    before = firms.destination_probabilities(calm(firms), counts, rent)[0]
    incentive = np.zeros((1, 2, N_SECTORS))
    incentive[0, 1, HIGH_END] = 800.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = firms.destination_probabilities(calm(firms, incentive=incentive), counts, rent)[0]
    np.testing.assert_array_equal(after[HIGH_END, :, 1], 1.0)
    np.testing.assert_allclose(after[MANUFACTURING], before[MANUFACTURING], rtol=1e-12)


def test_a_fully_covered_destination_gets_no_share_and_no_warning():
    firms = tiny(firms=((1000, 0), (1000, 0)))
    coverage = np.zeros((1, 2, N_SECTORS))
    coverage[0, 0, MANUFACTURING] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(1 - 1) = -inf by intent, not a divide warning
        shares = firms.destination_probabilities(calm(firms, coverage=coverage), firms.counts(), np.ones((1, 2)))
    np.testing.assert_array_equal(shares[0, MANUFACTURING, :, 0], 0.0)
    np.testing.assert_array_equal(shares[0, MANUFACTURING, :, 1], 1.0)


def test_each_split_agent_s_remainder_stays_with_its_own_firm():
    """A manufacturer of weight 15 and a high-end agent of weight 17 move where both sectors weigh 10:
    10 + 5 manufacturers and 10 + 7 high-end firms, each remainder with the traits of its own parent."""
    firms = tiny(firms=((15, 17), (0, 0)), weights=((15, 17), (10, 10)))
    run, slot = np.nonzero(firms.alive)
    firms._move(run, slot, np.ones(len(run), np.int8), np.zeros_like(firms.alive))
    alive = firms.alive
    for sector, parts in ((MANUFACTURING, [5.0, 10.0]), (HIGH_END, [7.0, 10.0])):
        np.testing.assert_array_equal(np.sort(firms.weight[alive & (firms.sector == sector)]), parts)
    np.testing.assert_array_equal(firms.recount()[0], firms.counts())


def test_a_firm_table_for_regions_without_the_core_keeps_the_rows_of_every_other_region():
    """The core's rows come first in sim/data/firms_2014.csv; a region set without it still reads the rest."""
    full = load_regions()
    core = full.index("bj_core")
    table = load_firm_table(dataclasses.replace(full, codes=tuple("gone" if c == "bj_core" else c for c in full.codes)))
    whole, others = load_firm_table(full), np.arange(len(full)) != core
    assert table.firms[core].sum() == 0 and whole.firms[core].sum() > 0
    assert whole.firms[others].sum() > 0
    for column in ("firms", "employees_per_firm", "agent_weight"):
        np.testing.assert_array_equal(getattr(table, column)[others], getattr(whole, column)[others])


def test_a_firm_table_with_no_agents_runs_its_months_with_none_and_grows_from_empty():
    """No agents at all (every cell of the table empty): the per-slot selections draw nothing, a year of
    months with exits, moves, a programme and entry rates leaves none (entry scales with the 2014 stock),
    and agents put in later open their slots from capacity 0."""
    firms = tiny(firms=((0, 0), (0, 0)), seeds=(3, 4, 5), exit_rate=[0.5] * N_SECTORS,
                 entry_rate=[0.5] * N_SECTORS, market_reach=[1.0] * N_SECTORS, relocation_rate=2.0)  # fmt: skip
    assert firms.alive.shape == (3, 0)
    dispersal = programme("p", np.full(3, 12.0))
    for month in range(12):
        firms.step(calm(firms, time=2014.0 + month * DT, dispersals=(dispersal,), travel_time=np.repeat(
            firms.regions.travel_time[None], 3, axis=0), coverage=np.zeros((3, 2, N_SECTORS)),
            incentive=np.zeros((3, 2, N_SECTORS)), pharma_incentive=np.zeros((3, 2)),
            population=np.repeat(firms.regions.population_2014[None], 3, axis=0),
            floor_space_change=np.zeros((3, 2))))  # fmt: skip
    assert firms.alive.shape == (3, 0) and firms.counts().sum() == 0 and firms.jobs().sum() == 0
    for name, value in vars(firms.counters).items():
        assert np.ndim(value) == 0 or np.nansum(value) == 0, name  # the sizes aside, every counter 0
    firms._add(np.array([1, 1, 2]), np.array([0, 1, 0]), np.array([MANUFACTURING] * 3), np.zeros(3), "late")
    assert firms.alive.shape == (3, 2)
    np.testing.assert_array_equal(firms.counts()[:, :, MANUFACTURING], [[0, 0], [1, 1], [1, 0]])


def test_destination_shares_asked_between_months_follow_the_rent_given_not_the_last_month_s():
    """Within a month the shares' terms are kept (``Firms.step``); after it, a call computes them afresh from
    its own arguments. From the core (rent level 1, index 1): stay U = -1; to region 1 (level 0.5, index 2,
    one hour away): U = -0.5 * 2 - 1 = -2, so 1 / (1 + e) of the movers go."""
    firms = tiny(firms=((1000, 0), (1000, 0)), rent_weight=1.0, distance_weight=1.0)
    firms.destination_constant[:] = 0.0
    firms.step(calm(firms))
    probs = firms.destination_probabilities(calm(firms), firms.counts(), np.array([[1.0, 2.0]]))[0, MANUFACTURING]
    assert probs[0, 1] == pytest.approx(1 / (1 + np.e))
    assert probs[0, 0] == pytest.approx(np.e / (1 + np.e))


def test_a_runs_limit_and_its_bounds_by_hand():
    """The numbers the per-slot selections compare draws with (``Firms._limit``, ``_push_bound``, ``_cost_split``):
    a hazard bound times dt with a slack of 1e-9, 2.0 (every draw a candidate) where the bound is not a number,
    0 for a run with no hazard; exp of the run's largest exponent response * cost * (rho - 1) over its own cells,
    not below exp(0); the largest cost, or 3 if lower."""
    limit = Firms._limit(np.array([0.6, np.nan, 0.0]), DT)
    assert limit[0] == pytest.approx(0.6 * DT * (1 + 1e-9), rel=1e-15, abs=0) and limit[0] > 0.6 * DT
    assert limit[1] == 2.0 and limit[2] == 0.0
    firms = tiny(firms=((30, 0), (0, 0)), seeds=(3, 4))
    rent_by_cell = np.array([[0.5, 0.1], [0.1, -0.2]]).repeat(N_SECTORS, axis=1).ravel()  # (run, region) - 1
    bound = firms._push_bound(np.array([2.0, 2.0]), rent_by_cell, np.array([0.5, 0.25]))
    np.testing.assert_allclose(bound, [np.exp(2.0 * 0.5 * 0.5), np.exp(2.0 * 0.25 * 0.1)], rtol=1e-15)
    assert firms._push_bound(np.array([-1.0, 1.0]), rent_by_cell, np.array([0.5, 0.5]))[0] == np.exp(0.0)
    firms.cost_sensitivity[:, :30] = 0.25
    firms.cost_sensitivity[0, 7], firms.cost_sensitivity[1, 3] = 0.75, 4.0
    np.testing.assert_array_equal(firms._cost_split(), [0.75, 3.0])


def test_destination_shares_follow_each_programme_s_open_regions_and_a_changed_writable_travel_time():
    """Closed destinations are kept per set of open regions (two programmes, two masks), and a lever term is
    never kept for a caller's writable array. From the core: stay U = -1, to region 1 U = -0.5 - tt."""
    firms = tiny(firms=((1000, 0), (1000, 0)), rent_weight=1.0, distance_weight=1.0)
    firms.destination_constant[:] = 0.0
    rent, counts = np.ones((1, 2)), firms.counts()
    first = firms.destination_probabilities(calm(firms), counts, rent, np.array([False, True]))[0, MANUFACTURING]
    second = firms.destination_probabilities(calm(firms), counts, rent, np.array([True, False]))[0, MANUFACTURING]
    np.testing.assert_array_equal(first[0], [0.0, 1.0])
    np.testing.assert_array_equal(second[1], [1.0, 0.0])  # from region 1 only region 0 is open
    np.testing.assert_array_equal(second[0], [0.0, 0.0])  # from the core nowhere: the unit closes
    travel = firms.regions.travel_time[None].copy()  # writable: the caller may change it in place
    firms.destination_probabilities(calm(firms, travel_time=travel), counts, rent)
    travel[0, 0, 1] = 2.0
    probs = firms.destination_probabilities(calm(firms, travel_time=travel), counts, rent)[0, MANUFACTURING]
    assert probs[0, 1] == pytest.approx(1 / (1 + np.exp(1.5)))
