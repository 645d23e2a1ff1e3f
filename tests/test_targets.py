"""Calibration targets are data that name real outputs; the default run is measured against them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from sim.model import RECORDED

ROOT = Path(__file__).resolve().parents[1]
TARGETS = tomllib.loads((ROOT / "calibration" / "targets.toml").read_text(encoding="utf-8"))


def read(ds: xr.Dataset, target: dict) -> float:
    """The model's value for a target: select (lists summed), then the time or the maximum."""
    values = ds[target["output"]]
    for dim, labels in target.get("select", {}).items():
        values = values.sel({dim: labels})
        if isinstance(labels, list):
            values = values.sum(dim)
    return float(values.max() if target["time"] == "max" else values.sel(time=target["time"]))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_target_names_an_output_and_its_provenance(name):
    target = TARGETS[name]
    assert target["output"] in RECORDED
    assert target["words"] and target["meaning"]
    assert target["relation"] in ("about", "at least", "nearly")
    assert 0 < target["tolerance"] < 1


def test_the_default_run_yields_a_finite_value_for_every_target():
    ds = sim.run(sim.load_scenario(ROOT / "scenarios" / "historical.toml"))
    for name, target in TARGETS.items():
        value = read(ds, target)
        assert np.isfinite(value) and value > 0, name
