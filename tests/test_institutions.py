"""Public institutions (sim/institutions.py): the 2014 stock by hand, and what a move order does.

The stock is read from sim/data/institutions_2014.csv; the expected values below are that
table worked by hand (docs/model.md section 7), so a wrong tally or a wrong column fails.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sim.institutions import Institutions, MoveOrder
from sim.random import Streams
from sim.regions import load_regions
from sim.sectors import INSTITUTION_KINDS

pytestmark = pytest.mark.fast

REGIONS = load_regions()
CORE, CENTRAL, TONGZHOU, OTHER = (REGIONS.index(c) for c in ("bj_core", "bj_central", "bj_tongzhou", "bj_other"))
SCHOOL, HOSPITAL, UNIVERSITY, DEPARTMENT, SOE = range(len(INSTITUTION_KINDS))


@pytest.fixture
def institutions() -> Institutions:
    return Institutions(REGIONS, Streams([1, 2]))


def test_the_2014_stock_by_hand(institutions):
    counts = institutions.counts()
    assert counts.shape == (2, len(REGIONS), len(INSTITUTION_KINDS))
    np.testing.assert_array_equal(counts[0, CORE], [25, 10, 0, 45, 40])
    np.testing.assert_array_equal(counts[0, CENTRAL], [30, 10, 20, 25, 57])
    np.testing.assert_array_equal(counts[0, OTHER], [5, 2, 10, 0, 0])
    assert counts[0].sum() == 25 + 30 + 5 + 10 + 10 + 2 + 20 + 10 + 45 + 25 + 40 + 57
    np.testing.assert_array_equal(counts[1], counts[0])
    jobs = institutions.jobs()
    assert jobs[0, CORE] == 45 * 343 + 25 * 150 + 10 * 2500 + 40 * 800
    assert jobs[0, CENTRAL] == 25 * 343 + 30 * 150 + 10 * 2500 + 20 * 1500 + 57 * 800
    assert jobs[0, OTHER] == 5 * 150 + 2 * 2500 + 10 * 1500
    assert jobs[0, TONGZHOU] == 0 and jobs[0, ~REGIONS.beijing].sum() == 0
    capacity = institutions.service_capacity()
    assert capacity[1, CORE] == 25 * 18_000 + 10 * 80_000
    assert capacity[1, OTHER] == 5 * 18_000 + 2 * 80_000 + 10 * 30_000


def test_a_move_takes_count_institutions_of_the_kind_from_the_origins_with_their_staff(institutions):
    jobs, capacity = institutions.jobs(), institutions.service_capacity()
    order = MoveOrder("hospitals_out", "hospital", 3, ("bj_core",), "bj_tongzhou")
    flows = institutions.move(order, np.array([True, True]))
    counts = institutions.counts()
    np.testing.assert_array_equal(counts[:, CORE, HOSPITAL], [7, 7])
    np.testing.assert_array_equal(counts[:, TONGZHOU, HOSPITAL], [3, 3])
    np.testing.assert_array_equal(counts[:, CENTRAL, HOSPITAL], [10, 10])  # not an origin: untouched
    expected = np.zeros((2, len(REGIONS), len(REGIONS)))
    expected[:, CORE, TONGZHOU] = 3 * 2500
    np.testing.assert_array_equal(flows, expected)
    np.testing.assert_array_equal(institutions.jobs()[:, CORE], jobs[:, CORE] - 3 * 2500)
    np.testing.assert_array_equal(institutions.jobs()[:, TONGZHOU], [3 * 2500, 3 * 2500])
    np.testing.assert_array_equal(institutions.service_capacity()[:, TONGZHOU], [3 * 80_000] * 2)
    np.testing.assert_array_equal(institutions.service_capacity().sum(axis=1), capacity.sum(axis=1))
    np.testing.assert_array_equal(institutions.moved_count, [3, 3])
    np.testing.assert_array_equal(institutions.staff_moved, [3 * 2500, 3 * 2500])


def test_a_move_from_two_origins_and_only_in_the_runs_ordered(institutions):
    before = institutions.counts()
    order = MoveOrder("schools_out", "school", 50, ("bj_core", "bj_central"), "bj_other")
    flows = institutions.move(order, np.array([False, True]))
    after = institutions.counts()
    np.testing.assert_array_equal(after[0], before[0])  # run 0 was not ordered
    assert not flows[0].any() and institutions.moved_count[0] == 0 and institutions.staff_moved[0] == 0
    assert after[1, CORE, SCHOOL] + after[1, CENTRAL, SCHOOL] == 55 - 50
    assert after[1, OTHER, SCHOOL] == 5 + 50
    assert flows[1, CORE, OTHER] + flows[1, CENTRAL, OTHER] == 50 * 150
    assert flows[1].sum() == 50 * 150 and institutions.moved_count[1] == 50


def test_fewer_move_when_fewer_candidates_remain_and_none_moves_twice(institutions):
    first = MoveOrder("departments", "department", 40, ("bj_core",), "bj_tongzhou")
    institutions.move(first, np.array([True, True]))
    second = MoveOrder("departments_2", "department", 40, ("bj_core", "bj_tongzhou"), "bj_central")
    flows = institutions.move(second, np.array([True, True]))
    counts = institutions.counts()
    # only the 5 never-moved departments of the core are candidates; the 40 in Tongzhou stay
    np.testing.assert_array_equal(counts[:, CORE, DEPARTMENT], [0, 0])
    np.testing.assert_array_equal(counts[:, TONGZHOU, DEPARTMENT], [40, 40])
    np.testing.assert_array_equal(counts[:, CENTRAL, DEPARTMENT], [30, 30])
    np.testing.assert_array_equal(flows[:, CORE, CENTRAL], [5 * 343, 5 * 343])
    np.testing.assert_array_equal(institutions.moved_count, [45, 45])
    np.testing.assert_array_equal(institutions.staff_moved, [45 * 343, 45 * 343])


def test_which_institutions_move_is_drawn_by_run_and_fixed_by_the_seed():
    def chosen(seeds):
        inst = Institutions(REGIONS, Streams(seeds))
        inst.move(MoveOrder("soe", "soe_hq", 10, ("bj_core", "bj_central"), "xiongan"), np.ones(len(seeds), bool))
        return inst.moved

    a, b = chosen([1, 2]), chosen([1, 2])
    np.testing.assert_array_equal(a, b)
    assert (a.sum(axis=1) == 10).all()
    assert not np.array_equal(a[0], a[1])  # two seeds draw different headquarters
    np.testing.assert_array_equal(chosen([2])[0], a[1])  # a run draws the same alone or in a batch


def test_institutions_of_a_region_the_scenario_removed_are_left_out():
    codes = tuple("gone" if code == "bj_core" else code for code in REGIONS.codes)
    institutions = Institutions(replace(REGIONS, codes=codes), Streams([1]))
    counts = institutions.counts()[0]
    assert counts[CORE].sum() == 0  # the core's rows (the first of the table) are skipped, the rest still read
    np.testing.assert_array_equal(counts[CENTRAL], [30, 10, 20, 25, 57])
    np.testing.assert_array_equal(counts[OTHER], [5, 2, 10, 0, 0])


def test_an_order_beyond_what_the_origins_held_in_2014_is_refused_naming_the_policy(institutions) -> None:
    from sim.errors import InputError

    held = int(np.count_nonzero((institutions.kind == HOSPITAL) & np.isin(institutions.region[0], [CORE, CENTRAL])))
    move = {"kind": "institution_move", "institution": "hospital", "from": ["bj_core", "bj_central"], "to": "xiongan"}
    institutions.check_orders({"exactly_all": {**move, "count": held}}, "story.toml")  # all of them: allowed
    with pytest.raises(InputError, match=rf"policies\.too_many\.count: {held + 1} hospital .* hold {held} in 2014"):
        institutions.check_orders({"too_many": {**move, "count": held + 1}}, "story.toml")


def test_an_order_in_no_run_moves_nothing_and_a_run_ordered_later_draws_as_if_alone():
    order = MoveOrder("soe", "soe_hq", 10, ("bj_core", "bj_central"), "xiongan")
    batch, alone = Institutions(REGIONS, Streams([1, 2])), Institutions(REGIONS, Streams([2]))
    assert not batch.move(order, np.zeros(2, bool)).any()  # ordered nowhere this month
    batch.move(order, np.array([True, False]))  # run 0 first; run 1 (seed 2) must not draw yet
    later = batch.move(order, np.array([False, True]))
    np.testing.assert_array_equal(later[1], alone.move(order, np.ones(1, bool))[0])
    np.testing.assert_array_equal(batch.region[1], alone.region[0])


def test_orders_are_checked_after_other_policies_in_a_single_run_and_tallies_cannot_be_written_into():
    from sim.errors import InputError

    institutions = Institutions(REGIONS, Streams([1]))
    move = {"kind": "institution_move", "institution": "hospital", "from": ["bj_core"], "to": "xiongan", "count": 11}
    with pytest.raises(InputError, match=r"policies\.too_many\.count: 11 hospital .* hold 10 in 2014"):
        institutions.check_orders({"a_campaign": {"kind": "demolition"}, "too_many": move}, "story.toml")
    jobs = institutions.jobs()  # kept until the next move: a caller writing into it would change later months
    with pytest.raises(ValueError, match="read-only"):
        jobs[0, CORE] = 0.0
