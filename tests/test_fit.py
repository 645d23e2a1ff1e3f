"""The shipped fit: the default scenario, run (not stored numbers), against every calibration target.

scenarios/historical.toml extends calibration/fitted.toml. Each target must be within its
tolerance (calibration/targets.toml: counts 10 %, shares 3 points, Beijing's bulletin levels
1 % and year-on-year changes 5 10k, census districts 5 %), except those listed in UNREACHABLE
with the reason the model does not meet them (docs/calibration.md, "What the fit misses").
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
_SWINGS = (
    "the bulletins' year-on-year changes swing faster than the model follows: a fall of 16.5 10k in 2018, then "
    "0.6 in 2019; the model spreads the fall over both years (-7.2 and -7.9 10k) while admission control holds "
    "arrivals down; the district bulletins put 2019's stability in a shift from the central districts (Chaoyang "
    "-13.2, Haidian -12.1) to the outer ones (Changping +5.8), which the location mechanism does not make; "
    "docs/calibration.md"
)
UNREACHABLE: dict[str, str] = {
    "F6_change_2018": "+1.86 sigma (" + _SWINGS + ")",
    "F6_change_2019": "-1.46 sigma (" + _SWINGS + ")",
    "census_core": (
        "8.73 % of Beijing against the census's 8.29 % (+1.05 sigma): the core's fall was policy-driven and the "
        "location mechanism pulls residents back into the housing and services they leave; the fitted core relief "
        "(7.6 % of the core's housing a year from 2015, near its bound of 8 %) is already more than the courtyard "
        "programme is likely to have done; and the census may count the central districts lower than the bulletin "
        "basis the model follows (Chaoyang, Haidian and Shijingshan: 33.8 % of Beijing on the 2019 bulletins, "
        "32.7 % at the census); docs/calibration.md"
    ),
}


@pytest.fixture(scope="module")
def shipped():
    historical = sim.load_scenario(SCENARIOS / "historical.toml")
    return sim.run(replace(historical, end=2021))


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_is_within_its_tolerance_with_the_shipped_fit(name, shipped, request):
    if name in UNREACHABLE:
        request.applymarker(pytest.mark.xfail(reason=UNREACHABLE[name], strict=True))
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
