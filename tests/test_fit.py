"""The shipped fit: the default scenario, run (not stored numbers), against every calibration target.

scenarios/historical.toml extends calibration/fitted.toml. Each target must be within its
tolerance (calibration/targets.toml: counts 10 %, shares 3 points, Beijing's bulletin levels
1 % and year-on-year changes 5 10k, census districts 5 %), except those listed in UNREACHABLE
with the reason the model cannot meet them (docs/calibration.md, "What the fit misses").
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
    "the bulletins' year-on-year changes swing faster than the model follows: a fall of 16.5 10k in 2018 and "
    "0.6 in 2019 (and +36.8 then +18.9 in 2014-2015); the model's fall goes on in 2019 while admission control "
    "holds arrivals down (-13.1 10k), and its 2015 slows sooner (+11.9); no ensemble member meets both years of "
    "either pair (fit.md); docs/calibration.md"
)
_CENTRAL = (
    "the central districts keep 1-2 % too many residents: their fall is policy-driven (the core area relief, "
    "institution moves, dispersal) and the location mechanism pulls back residents into the housing and services "
    "they leave; the fitted core relief (4 % of the core's housing a year) and trend correction do not reach the "
    "census; docs/calibration.md"
)
UNREACHABLE: dict[str, str] = {
    "F6_2019": "1.0 sigma low: the fall goes on in 2019 (" + _SWINGS + ")",
    "F6_change_2015": _SWINGS,
    "F6_change_2019": _SWINGS,
    "census_core": _CENTRAL,
    "census_central_six": _CENTRAL,
    "census_north3": (
        "4 % below the census: the northern counties' growth comes from Beijing's outer districts and the rest of "
        "Hebei, whose move rates the origins of Beijing's arrivals now fix; docs/calibration.md"
    ),
    "origins_tianjin": (
        "5.0 % of Beijing's arrivals from other provinces against the census's 3.5 % (1.0 sigma): the census counts "
        "a stock, and a lower Tianjin move rate costs Tianjin's own census level; docs/calibration.md"
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
