"""The shipped fit: the default scenario, run (not stored numbers), against every calibration target.

scenarios/historical.toml extends calibration/fitted.toml. Each target must be within its
tolerance (calibration/targets.toml: counts 10 %, shares 3 points, Beijing's bulletin levels
1 % and year-on-year changes 5 10k, census districts 5 %).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import SCENARIOS

import sim
from sim.calibration.targets import load_targets

TARGETS = load_targets()
BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]

@pytest.fixture(scope="module")
def shipped():
    historical = sim.load_scenario(SCENARIOS / "historical.toml")
    return sim.run(replace(historical, end=2021))


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_is_within_its_tolerance_with_the_shipped_fit(name, shipped):
    target = TARGETS[name]
    value = float(target.model_value(shipped))
    assert abs(float(target.misfit(value))) <= 1.0, f"{name}: model {value:,.4g}, observed {target.value:,.4g}"


def test_beijing_grows_to_2016_and_falls_every_year_2017_to_2019(shipped):
    """F6's shape: the bulletins' growth in 2014-2016 and a fall in each of 2017, 2018 and 2019."""
    beijing = shipped.population.sel(region=BEIJING).sum("region")
    year_ends = beijing.sel(time=[2014.0, 2015.0, 2016.0, 2017.0, 2018.0, 2019.0, 2020.0], method="nearest").values
    changes = np.diff(year_ends)
    assert (changes[:3] > 0).all(), changes
    assert (changes[3:] < 0).all(), changes
