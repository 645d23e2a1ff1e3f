"""Shared fixtures: the shipped scenarios and short variants of them written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

pytest_plugins = ["tiers"]  # test tiers (-m fast) and --regenerate-golden: tests/tiers.py

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def write_scenario(folder: Path, text: str, name: str = "story.toml", extends: str = "historical.toml") -> Path:
    """A scenario file in ``folder`` that extends a shipped one (by absolute path) with ``text``."""
    path = folder / name
    path.write_text(f'extends = "{(SCENARIOS / extends).as_posix()}"\n{text}')
    return path


@pytest.fixture
def short_historical(tmp_path: Path) -> sim.Scenario:
    """The historical scenario, 2014-2016: every mechanism at work, fast."""
    return sim.load_scenario(write_scenario(tmp_path, "[run]\nend = 2016\n"))


# A short story in which every input of the stocks moves in 2014-2016: a cap, demolition, land release,
# delivered housing, a rail line (the compiled kernel and the XMILE export are checked on it).
EVERY_INPUT_MOVES = """
[run]
end = 2017

[policies.test_demolition]
kind = "demolition"
start = 2015-03-01
end = 2016-06-01
housing_rate = 0.02
commercial_rate = 0.02
regions = ["bj_central"]

[policies.test_land]
kind = "land_release"
date = 2015-01-01
housing_build_rate = 0.0005  # below the parameter, so that it binds
regions = ["xiongan", "bj_tongzhou", "north3"]

[policies.test_cap]
kind = "housing_cap"
date = 2015-06-01
region = "bj_core"
population = 1_900_000
years = 1.0

[policies.test_blocks]
kind = "construction"
start = 2014-03-01
end = 2014-09-01
projects = 6
workers_per_project = 100
duration_years = 1.0
housing_per_project = 8400
services_per_project = 500

[policies.test_rail]
kind = "rail"
date = 2015-07-01
from = "bj_core"
to = "xiongan"
hours = 1.0
"""
