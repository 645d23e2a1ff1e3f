"""Each policy kind moves its lever the documented way (docs/model.md section 8) and leaves the rest alone.

One small timeline per kind, advanced month by month; the lever is checked by value in the
regions it names and unchanged everywhere else, before, during and after. Then the batch
timeline: runs with different policies get their own levers, stacked run-first.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.regions import load_regions
from sim.sectors import FIRM_SECTORS
from sim.timeline import BatchTimeline, Timeline

pytestmark = pytest.mark.fast

REGIONS = load_regions()
N = len(REGIONS)
CORE, CENTRAL, TONGZHOU, OTHER, XIONGAN = (
    REGIONS.index(c) for c in ("bj_core", "bj_central", "bj_tongzhou", "bj_other", "xiongan")
)
BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]
MANUFACTURING, WHOLESALE, HIGH_END, OTHER_SERVICES = range(len(FIRM_SECTORS))


def advanced(policies: dict, months: int, workforce: float = 1e6) -> Timeline:
    """A timeline after the events of months 0 .. months - 1."""
    timeline = Timeline(policies, REGIONS, 2014, workforce)
    for month in range(months):
        timeline.advance(month)
    return timeline


def untouched(timeline: Timeline, *changed: str) -> None:
    """Every lever not named is at its no-policy value."""
    fresh = Timeline({}, REGIONS, 2014, 1e6).levers
    for name in ("coverage", "control", "travel_time", "incentive", "pharma_incentive", "housing_removal"):
        if name not in changed:
            np.testing.assert_array_equal(getattr(timeline.levers, name), getattr(fresh, name), err_msg=name)
    for name in ("commercial_removal", "build_rate", "housing_cap", "cap_time"):
        if name not in changed:
            np.testing.assert_array_equal(getattr(timeline.levers, name), getattr(fresh, name), err_msg=name)
    if "dispersals" not in changed:
        assert timeline.levers.dispersals == {}


def test_no_policy_levers():
    levers = Timeline({}, REGIONS, 2014, 1e6).levers
    assert not levers.coverage.any() and not levers.control.any() and not levers.incentive.any()
    assert np.isnan(levers.build_rate).all() and np.isinf(levers.housing_cap).all()
    np.testing.assert_array_equal(levers.cap_time, np.ones(N))
    np.testing.assert_array_equal(levers.travel_time, REGIONS.travel_time)


def test_the_catalogue_covers_the_central_six_and_the_rest_of_beijing_only():
    policy = {
        "kind": "catalogue",
        "date": 2014.5,
        "coverage_central_six": {
            "manufacturing": 0.9,
            "wholesale_logistics": 0.8,
            "high_end": 0.0,
            "other_services": 0.3,
        },
        "coverage_elsewhere": {
            "manufacturing": 0.6,
            "wholesale_logistics": 0.5,
            "high_end": 0.0,
            "other_services": 0.1,
        },
    }
    assert not advanced({"c": policy}, 6).levers.coverage.any()
    timeline = advanced({"c": policy}, 7)
    coverage = timeline.levers.coverage
    for region in (CORE, CENTRAL):
        np.testing.assert_array_equal(coverage[region], [0.9, 0.8, 0.0, 0.3])
    for region in (TONGZHOU, OTHER):
        np.testing.assert_array_equal(coverage[region], [0.6, 0.5, 0.0, 0.1])
    assert not coverage[~REGIONS.beijing].any()
    untouched(timeline, "coverage")


def test_a_dispersal_programme_is_listed_from_start_to_end():
    policy = {
        "kind": "dispersal",
        "sector": "wholesale_logistics",
        "start": 2014.25,
        "end": 2015.0,
        "rate": 0.07,
        "close_share": 0.4,
        "regions": ["bj_core"],
        "destinations": ["xiongan", "tianjin"],
    }
    assert advanced({"markets": policy}, 3).levers.dispersals == {}
    timeline = advanced({"markets": policy}, 4)
    sector, rate, targeted, close, allowed = timeline.levers.dispersals["markets"]
    assert (sector, rate, close) == (WHOLESALE, 0.07, 0.4)
    np.testing.assert_array_equal(targeted, np.arange(N) == CORE)
    np.testing.assert_array_equal(np.flatnonzero(allowed), sorted([XIONGAN, REGIONS.index("tianjin")]))
    untouched(timeline, "dispersals")
    assert "markets" in advanced({"markets": policy}, 12).levers.dispersals  # December 2014 included
    assert advanced({"markets": policy}, 13).levers.dispersals == {}


@pytest.mark.parametrize("ramp_years", [0.0, 0.25])
def test_admission_control_ramps_in_equal_monthly_steps_in_its_regions(ramp_years):
    policy = {"kind": "admission_control", "date": 2015.0, "strength": 3.0, "ramp_years": ramp_years}
    policy["regions"] = BEIJING
    months = max(round(ramp_years * 12), 1)
    assert not advanced({"a": policy}, 12).levers.control.any()
    for k in range(1, months + 1):
        control = advanced({"a": policy}, 12 + k).levers.control
        np.testing.assert_allclose(control[REGIONS.beijing], 3.0 * k / months, rtol=1e-12)
        assert not control[~REGIONS.beijing].any()
    timeline = advanced({"a": policy}, 12 + months + 6)
    np.testing.assert_allclose(timeline.levers.control[REGIONS.beijing], 3.0, rtol=1e-12)
    untouched(timeline, "control")


def test_a_second_admission_control_ramps_from_the_level_then():
    first = {"kind": "admission_control", "date": 2014.0, "strength": 1.0, "ramp_years": 0.0, "regions": ["bj_core"]}
    second = {"kind": "admission_control", "date": 2015.0, "strength": 3.0, "ramp_years": 0.5, "regions": ["bj_core"]}
    timeline = advanced({"a": first, "b": second}, 12 + 3)
    assert timeline.levers.control[CORE] == pytest.approx(1.0 + (3.0 - 1.0) * 3 / 6)


def test_demolition_adds_its_rates_in_its_regions_while_it_lasts_and_campaigns_add_up():
    a = {"kind": "demolition", "start": 2014.0, "end": 2015.0, "housing_rate": 0.02, "commercial_rate": 0.03}
    a["regions"] = ["bj_core", "bj_central"]
    b = {"kind": "demolition", "start": 2014.5, "end": 2016.0, "housing_rate": 0.01, "commercial_rate": 0.0}
    b["regions"] = ["bj_core"]
    early, both, late = advanced({"a": a, "b": b}, 1), advanced({"a": a, "b": b}, 7), advanced({"a": a, "b": b}, 13)
    np.testing.assert_allclose(early.levers.housing_removal[[CORE, CENTRAL, TONGZHOU]], [0.02, 0.02, 0.0])
    np.testing.assert_allclose(both.levers.housing_removal[[CORE, CENTRAL, TONGZHOU]], [0.03, 0.02, 0.0])
    np.testing.assert_allclose(both.levers.commercial_removal[[CORE, CENTRAL, TONGZHOU]], [0.03, 0.03, 0.0])
    np.testing.assert_allclose(late.levers.housing_removal[[CORE, CENTRAL]], [0.01, 0.0], atol=1e-15)
    np.testing.assert_allclose(late.levers.commercial_removal, 0.0, atol=1e-15)
    assert not both.levers.housing_removal[~REGIONS.beijing].any()
    untouched(both, "housing_removal", "commercial_removal")
    ended = advanced({"a": a, "b": b}, 25)
    np.testing.assert_allclose(ended.levers.housing_removal, 0.0, atol=1e-15)


def test_land_release_sets_the_build_rate_in_its_regions_only():
    policy = {"kind": "land_release", "date": 2016.0, "housing_build_rate": 0.2, "regions": ["xiongan", "bj_other"]}
    assert np.isnan(advanced({"l": policy}, 24).levers.build_rate).all()
    timeline = advanced({"l": policy}, 25)
    rate = timeline.levers.build_rate
    np.testing.assert_array_equal(rate[[XIONGAN, OTHER]], [0.2, 0.2])
    assert np.isnan(np.delete(rate, [XIONGAN, OTHER])).all()
    untouched(timeline, "build_rate")


def test_a_housing_cap_sets_the_region_s_cap_and_time_only():
    policy = {"kind": "housing_cap", "date": 2015.0, "region": "bj_core", "population": 1.7e6, "years": 4.0}
    timeline = advanced({"cap": policy}, 13)
    assert timeline.levers.housing_cap[CORE] == 1.7e6 and timeline.levers.cap_time[CORE] == 4.0
    assert np.isinf(np.delete(timeline.levers.housing_cap, CORE)).all()
    np.testing.assert_array_equal(np.delete(timeline.levers.cap_time, CORE), 1.0)
    untouched(timeline, "housing_cap", "cap_time")
    assert np.isinf(advanced({"cap": policy}, 12).levers.housing_cap).all()


def test_rail_sets_the_travel_time_both_ways_between_its_ends_only():
    policy = {"kind": "rail", "date": 2015.0, "from": "bj_core", "to": "xiongan", "hours": 0.5}
    timeline = advanced({"r": policy}, 13)
    travel = timeline.levers.travel_time
    assert travel[CORE, XIONGAN] == travel[XIONGAN, CORE] == 0.5
    changed = np.zeros((N, N), bool)
    changed[CORE, XIONGAN] = changed[XIONGAN, CORE] = True
    np.testing.assert_array_equal(travel[~changed], REGIONS.travel_time[~changed])
    untouched(timeline, "travel_time")
    np.testing.assert_array_equal(advanced({"r": policy}, 12).levers.travel_time, REGIONS.travel_time)


def test_a_pharmaceutical_incentive_moves_only_the_pharmaceutical_lever():
    policy = {"kind": "incentive", "start": 2014.0, "end": 2015.0, "region": "xiongan", "utility": 2.0}
    policy |= {"sectors": list(FIRM_SECTORS), "pharma_only": True}
    timeline = advanced({"p": policy}, 1)
    np.testing.assert_array_equal(timeline.levers.pharma_incentive, 2.0 * (np.arange(N) == XIONGAN))
    untouched(timeline, "pharma_incentive")
    assert not advanced({"p": policy}, 13).levers.pharma_incentive.any()


def test_an_incentive_for_some_sectors_touches_those_cells_only():
    policy = {"kind": "incentive", "start": 2014.0, "end": float("inf"), "region": "tianjin", "utility": -1.5}
    policy |= {"sectors": ["manufacturing", "high_end"], "pharma_only": False}
    timeline = advanced({"i": policy}, 40)
    expected = np.zeros((N, len(FIRM_SECTORS)))
    expected[REGIONS.index("tianjin"), [MANUFACTURING, HIGH_END]] = -1.5
    np.testing.assert_array_equal(timeline.levers.incentive, expected)
    untouched(timeline, "incentive")


def test_construction_delivers_housing_and_services_when_each_project_completes():
    policy = {
        "kind": "construction",
        "start": 2014.0,
        "end": 2014.5,
        "projects": 2,
        "workers_per_project": 100.0,
        "duration_years": 1.0,
        "housing_per_project": 5000.0,
        "services_per_project": 700.0,
        "region": "xiongan",
    }
    timeline = Timeline({"build": policy}, REGIONS, 2014, 1e6)
    delivered = []
    for month in range(20):
        timeline.advance(month)
        done = timeline.take_completed()
        delivered.append((done.housing[XIONGAN], done.services[XIONGAN], done.housing.sum(), timeline.on_site))
    # projects start at months 0 and 6 and last 12 months: each delivers in the month it completes
    assert delivered[12][:3] == (5000.0, 700.0, 5000.0) and delivered[18][:3] == (5000.0, 700.0, 5000.0)
    assert sum(d[2] for d in delivered) == 10_000.0
    assert [d[3] for d in delivered[:6]] == [100.0] * 6 and delivered[6][3] == 200.0 and delivered[18][3] == 0.0


def test_a_batch_stacks_each_run_s_levers_and_dispersals_run_first():
    control = {"kind": "admission_control", "date": 2014.0, "strength": 2.0, "ramp_years": 0.0, "regions": BEIJING}
    dispersal = {
        "kind": "dispersal",
        "sector": "manufacturing",
        "start": 2014.0,
        "end": 2020.0,
        "rate": 0.05,
        "close_share": 0.6,
        "regions": BEIJING,
        "destinations": ["tianjin"],
    }
    strong = dict(control, strength=4.0)
    runs = [{"c": control, "d": dispersal}, {"c": strong}, {"c": control, "d": dispersal}]
    batch = BatchTimeline(runs, np.array([1e6, 1e6, 1e6]), REGIONS, 2014)
    assert len(batch.timelines) == 2 and list(batch.group) == [0, 1, 0]
    batch.advance(0)
    levers = batch.levers()
    np.testing.assert_array_equal(levers.control[:, CORE], [2.0, 4.0, 2.0])
    assert levers.coverage.shape == (3, N, len(FIRM_SECTORS)) and levers.travel_time.shape == (3, N, N)
    (programme,) = levers.dispersals
    assert programme.name == "d" and programme.sector == MANUFACTURING
    np.testing.assert_array_equal(programme.rate, [0.05, 0.0, 0.05])
    np.testing.assert_array_equal(programme.close_share, [0.6, 0.0, 0.6])
    np.testing.assert_array_equal(programme.targeted, REGIONS.beijing)
    np.testing.assert_array_equal(np.flatnonzero(programme.allowed), [REGIONS.index("tianjin")])
    assert batch.runs == 3
    np.testing.assert_array_equal(batch.members(1), [False, True, False])


def test_a_batch_hands_orders_with_their_runs_and_completed_capacity_by_run():
    move = {
        "kind": "institution_move",
        "start": 2014.0,
        "end": 2014.0,
        "count": 2,
        "institution": "school",
        "from": ["bj_core"],
        "to": "bj_other",
    }
    build = {
        "kind": "construction",
        "start": 2014.0,
        "end": 2014.0,
        "projects": 1,
        "workers_per_project": 10.0,
        "duration_years": 0.5,
        "housing_per_project": 300.0,
        "services_per_project": 20.0,
        "region": "xiongan",
    }
    batch = BatchTimeline([{"m": move}, {"b": build}], np.array([1e6, 1e6]), REGIONS, 2014)
    batch.advance(0)
    ((order, runs),) = batch.take_orders()
    assert (order.policy, order.kind, order.count) == ("m", "school", 2)
    assert (order.origins, order.destination) == (("bj_core",), "bj_other")
    np.testing.assert_array_equal(runs, [True, False])
    np.testing.assert_array_equal(batch.on_site(), [0.0, 10.0])
    for month in range(1, 7):
        batch.advance(month)
        done = batch.take_completed()
        if month < 6:
            assert not done.housing.any()
    np.testing.assert_array_equal(done.housing[:, XIONGAN], [0.0, 300.0])
    np.testing.assert_array_equal(done.services[:, XIONGAN], [0.0, 20.0])
    assert len(batch.logs()) == 2 and batch.logs()[0] is not batch.logs()[1]


def test_runs_with_different_workforces_get_their_own_timelines():
    build = {
        "kind": "construction",
        "start": 2014.0,
        "end": 2014.0,
        "projects": 2,
        "workers_per_project": 10.0,
        "duration_years": 1.0,
        "housing_per_project": 0.0,
        "services_per_project": 0.0,
        "region": "xiongan",
    }
    batch = BatchTimeline([{"b": build}, {"b": build}], np.array([10.0, 20.0]), REGIONS, 2014)
    batch.advance(0)
    np.testing.assert_array_equal(batch.on_site(), [10.0, 20.0])  # one project at a time with 10 workers


def build(projects: int, workers: float, start: float = 2014.0, end: float = 2014.0) -> dict:
    return {
        "kind": "construction",
        "start": start,
        "end": end,
        "projects": projects,
        "workers_per_project": workers,
        "duration_years": 0.25,
        "housing_per_project": 100.0,
        "services_per_project": 30.0,
        "region": "xiongan",
    }


def test_projects_finishing_in_the_same_month_deliver_the_sum():
    timeline = Timeline({"b": build(3, 10.0)}, REGIONS, 2014, 1e6)
    for month in range(4):
        timeline.advance(month)
    done = timeline.take_completed()
    assert done.housing[XIONGAN] == 300.0 and done.services[XIONGAN] == 90.0


def test_a_project_without_workers_starts_at_once_and_completes():
    timeline = Timeline({"b": build(2, 0.0)}, REGIONS, 2014, 0.0)
    for month in range(4):
        timeline.advance(month)
    assert timeline.take_completed().housing[XIONGAN] == 200.0 and timeline.on_site == 0.0


def test_one_worker_projects_take_turns_on_a_one_worker_workforce():
    timeline = Timeline({"b": build(2, 1.0)}, REGIONS, 2014, 1.0)
    delivered = []
    for month in range(8):
        timeline.advance(month)
        delivered.append(timeline.take_completed().housing[XIONGAN])
    assert delivered[3] == 100.0 and delivered[6] == 100.0 and sum(delivered) == 200.0  # the second waits 3 months


def test_pharmaceutical_incentives_in_one_region_add_up():
    policy = {"kind": "incentive", "start": 2014.0, "end": float("inf"), "region": "xiongan", "utility": 2.0}
    policy |= {"sectors": list(FIRM_SECTORS), "pharma_only": True}
    timeline = advanced({"p": policy, "q": dict(policy, utility=0.5)}, 1)
    assert timeline.levers.pharma_incentive[XIONGAN] == 2.5


def test_a_single_institution_move_is_ordered_in_its_start_month():
    move = {"kind": "institution_move", "start": 2014 + 5 / 12, "end": 2014 + 5 / 12, "count": 1}
    move |= {"institution": "hospital", "from": ["bj_core"], "to": "bj_other"}
    timeline = Timeline({"h": move}, REGIONS, 2014, 1e6)
    months = []
    for month in range(12):
        timeline.advance(month)
        months += [(month, order.count) for order in timeline.take_orders()]
    assert months == [(5, 1)]


def test_a_date_late_in_a_month_acts_in_that_month_not_the_next():
    policy = {"kind": "rail", "date": 2014 + 3.8 / 12, "from": "bj_core", "to": "xiongan", "hours": 0.5}
    timeline = Timeline({"r": policy}, REGIONS, 2014, 1e6)
    for month in range(4):
        timeline.advance(month)
    assert timeline.levers.travel_time[CORE, XIONGAN] == 0.5
    assert timeline.log == [(3.8, "r", "rail bj_core-xiongan opens: 0.5 h")]


def test_the_event_log_keeps_fractions_of_a_month_to_a_millionth():
    timeline = Timeline({"b": build(4, 1.0, 2014.0, 2014 + 1 / 12)}, REGIONS, 2014, 1e6)
    for month in range(2):
        timeline.advance(month)
    starts = [m for m, _, action in timeline.log if action.startswith("starts")]
    assert starts == [0.0, 0.333333, 0.666667, 1.0]


def test_a_one_year_ramp_takes_twelve_monthly_steps_and_says_so():
    policy = {"kind": "admission_control", "date": 2014.0, "strength": 1.2, "ramp_years": 1.0, "regions": BEIJING}
    timeline = advanced({"a": policy}, 12)
    np.testing.assert_allclose(timeline.levers.control[REGIONS.beijing], 1.2, rtol=1e-12)
    np.testing.assert_allclose(advanced({"a": policy}, 11).levers.control[REGIONS.beijing], 1.1, rtol=1e-12)
    two = advanced({"a": dict(policy, ramp_years=2 / 12)}, 3)
    actions = [action for _, _, action in two.log]
    assert actions == ["admission control towards 1.2 over 2 months", "admission control 1.2"]


def test_runs_with_the_same_policies_share_one_timeline_whatever_the_order_of_the_fields():
    policy = {"kind": "rail", "date": 2015.0, "from": "bj_core", "to": "xiongan", "hours": 0.5}
    reordered = dict(reversed(list(policy.items())))
    batch = BatchTimeline([{"r": policy}, {"r": reordered}], np.array([1e6, 1e6]), REGIONS, 2014)
    assert len(batch.timelines) == 1 and list(batch.group) == [0, 0]


def test_a_batch_timeline_s_errors_name_the_scenario_s_file():
    from sim.errors import InputError

    impossible = {"big": {"kind": "construction", "workers_per_project": 500.0}}
    with pytest.raises(InputError, match=r"story\.toml.*policies\.big\.workers_per_project"):
        BatchTimeline([impossible], np.array([100.0]), load_regions(), 2014, source="story.toml")
