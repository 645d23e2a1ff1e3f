"""The policy-story scenarios: each opens with its story and sources, runs, and moves things the way its story says.

Directions are compared on medians of four seeds (the firm agents' noise in Xiong'an's jobs is of
the size of the effects), all scenarios on the same seeds; five batches of full runs take about a
minute, so the directional tests are slow (CI runs them as their own step).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
STORIES = ("xiongan_accelerated", "rail_first", "incentives_withdrawn", "core_strict")
BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]


@pytest.fixture(scope="module")
def runs() -> dict[str, xr.Dataset]:
    batches = {}
    for name in ("historical", "plan2021", *STORIES):
        scenario = sim.load_scenario(SCENARIOS / f"{name}.toml")
        batches[name] = sim.run_batch(scenario, [scenario.seed, 1, 2, 3])
    return batches


def median(series: xr.DataArray) -> float:
    return float(series.median("run"))


@pytest.mark.parametrize("name", STORIES)
def test_story_file_opens_with_story_and_sources(name: str) -> None:
    text = (SCENARIOS / f"{name}.toml").read_text(encoding="utf-8")
    header = text.split("\nextends", 1)[0]
    assert header.startswith("# Story:") and "# Sources:" in header
    assert len(text.splitlines()) < 60, "a story states only what it changes"
    scenario = sim.load_scenario(SCENARIOS / f"{name}.toml")
    assert scenario.name == name and scenario.description
    assert re.search(r'^extends = "plan2021.toml"', text, flags=re.M)


@pytest.mark.slow
def test_xiongan_accelerated_grows_xiongan_most(runs: dict[str, xr.Dataset]) -> None:
    at = {n: runs[n].sel(region="xiongan", time=2035.0) for n in ("historical", "plan2021", "xiongan_accelerated")}
    residents = {n: median(x.population) for n, x in at.items()}
    jobs = {n: median(x.jobs.sum("sector")) for n, x in at.items()}
    assert residents["xiongan_accelerated"] > residents["plan2021"] > residents["historical"]
    assert jobs["xiongan_accelerated"] > jobs["plan2021"] > jobs["historical"]
    moved = {n: float(runs[n].institutions_moved_cum.sel(time=2035.0).max()) for n in at}
    assert moved["xiongan_accelerated"] - moved["plan2021"] == (10 - 4) + (6 - 2) + (12 - 4)


@pytest.mark.slow
def test_incentives_withdrawn_brings_fewer_firms_to_xiongan_and_north3(runs: dict[str, xr.Dataset]) -> None:
    """Same path to the end of 2024 (common random numbers), then fewer firms arrive over 2025-2035: in the
    median, and in at least three of the four seeds (with the fit of 2 December one seed's paths part after
    2025 and its withdrawn run has 3 % more arrivals, the others 35-56 % fewer: the agents' noise)."""
    plan, withdrawn = runs["plan2021"], runs["incentives_withdrawn"]
    until = dict(time=slice(None, 2025.0))
    np.testing.assert_array_equal(plan.firms.sel(**until).values, withdrawn.firms.sel(**until).values)

    def arrivals(ds: xr.Dataset) -> xr.DataArray:
        firms = ds.firms.sel(region=["xiongan", "north3"]).sum(("region", "sector"))
        return firms.sel(time=2035.0) - firms.sel(time=2025.0)

    assert median(arrivals(withdrawn)) < median(arrivals(plan))
    assert int((arrivals(withdrawn) < arrivals(plan)).sum()) >= 3, "fewer in three of four seeds"


@pytest.mark.slow
def test_rail_first_disperses_nothing_by_order(runs: dict[str, xr.Dataset]) -> None:
    """No programme disperses firms and no institution moves, so Beijing keeps more of both than under plan2021.

    (Residents: the revised model gives Beijing in 2035 the same population either way, within the seeds' noise.)
    """
    rail, plan = runs["rail_first"], runs["plan2021"]
    assert float(rail.dispersed_firms_cum.sum()) == 0 and float(rail.institutions_moved_cum.max()) == 0
    manufacturing = {
        n: median(ds.firms.sel(region=BEIJING, sector="manufacturing").sum("region").isel(time=7 * 12))
        for n, ds in (("rail_first", rail), ("plan2021", plan))
    }
    assert manufacturing["rail_first"] > manufacturing["plan2021"], "Beijing's manufacturing at the start of 2021"
    institutions = {
        n: median(ds.institutions.sel(region="bj_core", time=2035.0).sum("institution"))
        for n, ds in (("rail_first", rail), ("plan2021", plan))
    }
    assert institutions["rail_first"] > institutions["plan2021"]


@pytest.mark.slow
def test_core_strict_holds_the_core_at_or_below_its_plan_level_from_2021_only(runs: dict[str, xr.Dataset]) -> None:
    """The same path as plan2021 to 2021 (the cap is not yet in force), then a core at most about 170 万 by 2035
    and at or below plan2021's in every seed. The cap is a ceiling: with the fitted parameters the core falls
    below the plan level anyway (1 Dec 2026 fit: both about 150 万 in 2035), so the story can only be held to
    what a ceiling guarantees."""
    plan, strict = runs["plan2021"], runs["core_strict"]
    until = dict(time=slice(None, 2021.0))
    np.testing.assert_array_equal(plan.population.sel(**until).values, strict.population.sel(**until).values)
    core = {n: ds.population.sel(region="bj_core") for n, ds in (("plan2021", plan), ("core_strict", strict))}
    assert (core["core_strict"].sel(time=2035.0) <= core["plan2021"].sel(time=2035.0)).all(), "in every seed"
    assert (core["core_strict"].sel(time=2035.0) <= 1_700_000 * 1.04).all(), "at most about the plan level"
