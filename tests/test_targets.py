"""Calibration targets are data that name real outputs; the default run is measured against them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sim
from sim.calibration.targets import load_targets
from sim.model import RECORDED

ROOT = Path(__file__).resolve().parents[1]
TARGETS = load_targets()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_target_names_an_output_and_its_provenance(name):
    target = TARGETS[name]
    assert target.output in RECORDED
    assert target.words and target.meaning
    assert target.sigma > 0


def test_the_default_run_yields_a_finite_value_for_every_target():
    ds = sim.run(sim.load_scenario(ROOT / "scenarios" / "historical.toml"))
    for name, target in TARGETS.items():
        value = float(target.model_value(ds))
        assert np.isfinite(value), name
        assert value > 0 or target.change_from is not None, name


def test_misfits_by_hand():
    target = TARGETS["F1"]  # at least 23,000, tolerance 10 %
    np.testing.assert_allclose(target.misfit([23000 - 2300, 23000, 30000]), [-1.0, 0.0, 0.0])
    change = TARGETS["F6_change_2017"]  # -2.2 10k, within 5 10k
    np.testing.assert_allclose(change.misfit([-22000 + 50000]), [1.0])
    nearly = TARGETS["F3"]  # nearly 3,000: just under is fine, over is not
    np.testing.assert_allclose(nearly.misfit([3300, 2900, 2400]), [1.0, 0.0, -1.0])
