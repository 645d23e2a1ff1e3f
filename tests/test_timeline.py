"""The simpy timeline: exact ordered logs of policy events and of projects competing for a workforce."""

from __future__ import annotations

import numpy as np
import pytest

from sim.regions import load_regions
from sim.timeline import Timeline

REGIONS = load_regions()


def catalogue(date: float) -> dict:
    return {
        "kind": "catalogue",
        "date": date,
        "coverage_central_six": {
            "manufacturing": 1.0,
            "wholesale_logistics": 0.5,
            "high_end": 0.0,
            "other_services": 0.2,
        },
        "coverage_elsewhere": {
            "manufacturing": 0.5,
            "wholesale_logistics": 0.0,
            "high_end": 0.0,
            "other_services": 0.0,
        },
    }


def project(start: float, end: float, projects: int, workers: float, years: float, housing: float = 0.0) -> dict:
    return {
        "kind": "construction",
        "start": start,
        "end": end,
        "projects": projects,
        "workers_per_project": workers,
        "duration_years": years,
        "housing_per_project": housing,
        "services_per_project": 0.0,
        "region": "xiongan",
    }


def run(policies: dict, months: int, workforce: float = 1e6) -> Timeline:
    timeline = Timeline(policies, REGIONS, 2014, workforce)
    for month in range(months):
        timeline.advance(month)
    return timeline


def test_policy_events_happen_in_date_order_at_the_start_of_their_month():
    policies = {
        "rail": {"kind": "rail", "date": 2015.5, "from": "bj_core", "to": "xiongan", "hours": 1.0},
        "ban": catalogue(2014.5),
        "programme": {
            "kind": "dispersal",
            "sector": "manufacturing",
            "start": 2014.25,
            "end": 2015.0,
            "rate": 0.1,
            "close_share": 0.5,
            "regions": ["bj_core"],
            "destinations": ["hebei_other"],
        },
        "control": {
            "kind": "admission_control",
            "date": 2016.0,
            "strength": 2.0,
            "ramp_years": 0.0,
            "regions": ["bj_core"],
        },
    }
    timeline = run(policies, 30)
    assert timeline.log == [
        (3, "programme", "dispersal of manufacturing starts"),
        (6, "ban", "catalogue in force"),
        (12, "programme", "dispersal of manufacturing ends"),
        (18, "rail", "rail bj_core-xiongan opens: 1 h"),
        (24, "control", "admission control 2"),
    ]
    core, xiongan = REGIONS.index("bj_core"), REGIONS.index("xiongan")
    levers = timeline.levers
    assert levers.travel_time[core, xiongan] == levers.travel_time[xiongan, core] == 1.0
    assert levers.control[core] == 2.0 and levers.control.sum() == 2.0
    assert levers.coverage[core, 0] == 1.0 and levers.coverage[REGIONS.index("bj_other"), 0] == 0.5
    assert levers.coverage[~REGIONS.beijing].sum() == 0
    assert levers.dispersals == {}


def test_advancing_month_by_month_applies_an_event_only_from_its_month():
    timeline = Timeline({"ban": catalogue(2014 + 5.5 / 12)}, REGIONS, 2014, 1e6)  # mid-June 2014
    for month in range(5):
        timeline.advance(month)
    assert timeline.levers.coverage.sum() == 0
    timeline.advance(5)
    assert timeline.levers.coverage.sum() > 0


def test_projects_compete_for_a_limited_workforce():
    """Three projects of 600 workers and a pool of 1,000: the second waits for the first to finish."""
    timeline = run({"build": project(2014.0, 2014 + 2 / 12, 3, 600.0, 0.5, housing=100.0)}, 24, workforce=1000.0)
    assert timeline.log == [
        (0, "build #1", "starts with 600 workers"),
        (6, "build #1", "completed"),
        (6, "build #2", "starts with 600 workers"),
        (12, "build #2", "completed"),
        (12, "build #3", "starts with 600 workers"),
        (18, "build #3", "completed"),
    ]
    assert timeline.take_completed().housing[REGIONS.index("xiongan")] == 300.0
    assert timeline.take_completed().housing.sum() == 0  # taken once


def test_workforce_on_site_is_the_sum_of_running_projects():
    timeline = Timeline({"build": project(2014.0, 2014 + 3 / 12, 4, 500.0, 1.0)}, REGIONS, 2014, 1e6)
    on_site = []
    for month in range(18):
        timeline.advance(month)
        on_site.append(timeline.on_site)
    assert on_site[:5] == [500.0, 1000.0, 1500.0, 2000.0, 2000.0]
    assert on_site[11:16] == [2000.0, 1500.0, 1000.0, 500.0, 0.0]


def test_institution_moves_are_spread_from_start_to_end():
    move = {
        "kind": "institution_move",
        "start": 2015.0,
        "end": 2016.0,
        "institution": "school",
        "count": 3,
        "from": ["bj_core"],
        "to": "bj_other",
    }
    timeline = run({"schools": move}, 30)
    assert [entry[0] for entry in timeline.log] == [12, 18, 24]
    orders = timeline.take_orders()
    assert [order.count for order in orders] == [1, 1, 1]
    assert timeline.take_orders() == []


def test_an_incentive_is_added_then_removed():
    incentive = {
        "kind": "incentive",
        "start": 2015.0,
        "end": 2016.0,
        "region": "xiongan",
        "utility": 1.5,
        "sectors": ["high_end"],
        "pharma_only": False,
    }
    timeline = Timeline({"xiongan": incentive}, REGIONS, 2014, 1e6)
    for month in range(13):
        timeline.advance(month)
    assert timeline.levers.incentive[REGIONS.index("xiongan"), 2] == pytest.approx(1.5)
    for month in range(13, 25):
        timeline.advance(month)
    assert np.all(timeline.levers.incentive == 0)
    assert [action for _, _, action in timeline.log] == ["incentive starts", "incentive ends"]


def test_every_first_of_the_month_acts_in_its_own_month():
    """Dates as decimal years must not land a hair before their month (2015-08-01 is month 19, not 18)."""
    import datetime as dt

    from sim.scenario import decimal_year

    for year in range(2014, 2051):
        for month in range(1, 13):
            date = decimal_year(dt.date(year, month, 1), "test", "date")
            timeline = Timeline({"ban": catalogue(date)}, REGIONS, 2014, 1e6)
            expected = (year - 2014) * 12 + month - 1
            if expected:
                timeline.advance(expected - 1)
                assert timeline.levers.coverage.sum() == 0, (year, month)
            timeline.advance(expected)
            assert timeline.levers.coverage.sum() > 0, (year, month)


def test_a_project_larger_than_the_workforce_is_bad_input():
    from sim.errors import InputError

    with pytest.raises(InputError, match="policies.build.workers_per_project"):
        Timeline({"build": project(2014.0, 2015.0, 2, 600.0, 1.0)}, REGIONS, 2014, 500.0)


def test_batch_levers_are_restacked_after_every_change_and_cannot_be_changed_in_place():
    """``BatchTimeline.levers`` keeps its stack until a lever changes: every month of two policy sets (every
    policy kind of the shipped plans, pharma incentives included) equals a fresh stack; in-place edits raise."""
    import sim
    from sim.timeline import BatchTimeline

    scenarios = [sim.load_scenario(f"scenarios/{name}.toml") for name in ("historical", "plan2021")]
    batch = BatchTimeline([s.policies for s in scenarios], np.array([2e5, 2e5]), REGIONS, 2014)
    changes = 0
    for month in range(12 * 21):
        before = batch.levers()
        batch.advance(month)
        now, fresh = batch.levers(), batch._stack()
        changes += now is not before
        for name in now.__dataclass_fields__:
            if name != "dispersals":
                assert np.array_equal(getattr(now, name), getattr(fresh, name), equal_nan=True), (month, name)
        assert [(d.name, list(d.rate), list(d.close_share)) for d in now.dispersals] == [
            (d.name, list(d.rate), list(d.close_share)) for d in fresh.dispersals
        ]
    assert 10 < changes < 200  # restacked when something changed, not every month
    with pytest.raises(ValueError, match="read-only"):
        batch.levers().control[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        batch.timelines[0].levers.pharma_incentive[0] += 1.0
