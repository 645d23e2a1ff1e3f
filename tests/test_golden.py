"""Golden regression test: the default run's key outputs, stored in tests/golden/historical.json.

Any change to these numbers fails, intended or not. When a change is intended (a new
equation, a recalibration), look at the differences this test prints, then regenerate
with one command and commit the new file with the change that explains it:

    python -m pytest tests/test_golden.py --regenerate-golden

The default run is deterministic (same scenario and seed, same numbers), so the tolerance
only absorbs floating-point noise between platforms: RTOL relative, ATOL absolute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SCENARIOS

import sim

GOLDEN = Path(__file__).parent / "golden" / "historical.json"
RTOL, ATOL = 1e-6, 1e-6
YEARS = (2017, 2020, 2025, 2035)
BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]


def key_outputs(ds) -> dict[str, float]:
    """The default run's key outputs by name: 'variable[.label...].year' -> value."""
    out: dict[str, float] = {}
    beijing = ds.region.isin(BEIJING)
    for year in YEARS:
        at = ds.sel(time=float(year))
        for region in ds.region.values:
            out[f"population.{region}.{year}"] = float(at.population.sel(region=region))
        out[f"population.beijing.{year}"] = float(at.population.where(beijing).sum())
        out[f"migrant_population.beijing.{year}"] = float(at.migrant_population.where(beijing).sum())
        for sector in ds.firms.sector.values:
            if sector != "public":
                out[f"firms.beijing.{sector}.{year}"] = float(at.firms.sel(sector=sector).where(beijing).sum())
        out[f"jobs.beijing.{year}"] = float(at.jobs.where(beijing).sum())
        out[f"institutions_moved_cum.{year}"] = float(at.institutions_moved_cum)
    for year in (2017, 2020):
        at = ds.sel(time=float(year))
        for sector in ("manufacturing", "wholesale_logistics"):
            out[f"dispersed_firms_cum.{sector}.{year}"] = float(at.dispersed_firms_cum.sel(sector=sector))
            out[f"dispersed_closed_cum.{sector}.{year}"] = float(at.dispersed_closed_cum.sel(sector=sector))
        out[f"refused_registrations_cum.{year}"] = float(at.refused_registrations_cum)
        out[f"high_end_share_new_entrants.{year}"] = float(at.high_end_share_new_entrants)
    workforce = ds.construction_workforce
    out["construction_workforce.peak"] = float(workforce.max())
    out["construction_workforce.peak_year"] = float(ds.time[int(np.argmax(workforce.values))])
    return out


@pytest.fixture(scope="module")
def default_run():
    return sim.run(sim.load_scenario(SCENARIOS / "historical.toml"))


def test_the_default_run_matches_the_golden_file(default_run, request):
    current = key_outputs(default_run)
    if request.config.getoption("--regenerate-golden"):
        GOLDEN.write_text(
            json.dumps(
                {
                    "scenario": "scenarios/historical.toml",
                    "rtol": RTOL,
                    "atol": ATOL,
                    "regenerate": "python -m pytest tests/test_golden.py --regenerate-golden",
                    "values": current,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        pytest.skip(f"regenerated {GOLDEN.name}: review `git diff` and commit it with the change that explains it")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert sorted(current) == sorted(golden["values"]), "the set of key outputs changed: regenerate"
    wrong = [
        f"{name}: golden {golden['values'][name]:.9g}, now {value:.9g}"
        for name, value in current.items()
        if not np.isclose(value, golden["values"][name], rtol=golden["rtol"], atol=golden["atol"], equal_nan=True)
    ]
    assert not wrong, f"{len(wrong)} key outputs changed (if intended, regenerate):\n" + "\n".join(wrong)


def test_the_golden_values_are_plausible_for_the_default_run():
    """The stored numbers themselves are sane (guards a golden file regenerated from a broken model)."""
    values = json.loads(GOLDEN.read_text(encoding="utf-8"))["values"]
    for year in YEARS:
        # broad bounds, not a calibration target (bulletins 2014-2023: 21.5-21.9 million; issue 11 calibrates)
        assert 15e6 < values[f"population.beijing.{year}"] < 28e6, year
        assert 0 < values[f"migrant_population.beijing.{year}"] < values[f"population.beijing.{year}"]
    assert values["dispersed_firms_cum.manufacturing.2020"] > values["dispersed_firms_cum.manufacturing.2017"] > 0
    assert 0 < values["high_end_share_new_entrants.2020"] < 1
    assert values["construction_workforce.peak"] > 0 and 2017 <= values["construction_workforce.peak_year"] <= 2035
    assert values["institutions_moved_cum.2025"] >= values["institutions_moved_cum.2020"] > 0
