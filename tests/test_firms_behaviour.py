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

from sim.firms import HIGH_END, MANUFACTURING, N_SECTORS, FirmCounters, Firms, FirmTable, rent_index
from sim.model import DT
from sim.random import Streams
from sim.regions import Regions
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
