"""The compiled stock-and-flow kernel equals the numpy equations (to rounding), Euler and RK4.

Needs numba (the `fast` extra); skipped without it, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import EVERY_INPUT_MOVES, write_scenario

import sim
from sim.model import Model
from sim.stockflow import replay

try:
    import numba  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

OVERRIDES = [
    {},
    {"population.jobs_weight": 3.5, "population.move_sensitivity": 1.7, "housing.construction_time": 1.0},
    {"population.housing_weight": 12.0, "population.outside_trend": 0.05, "institutions.follow_time": 0.5},
    {"population.travel_time_weight": 2.5, "housing.max_build_rate": 0.08, "services.adjustment_time": 0.5},
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    if numba is None:
        if os.environ.get("CI") == "true":
            pytest.fail("numba is not installed; CI must test the compiled kernel (python -m pip install numba)")
        pytest.skip("numba is not installed (python -m pip install numba): the compiled kernel cannot run")
    scenario = sim.load_scenario(write_scenario(tmp_path_factory.mktemp("kernel"), EVERY_INPUT_MOVES))
    model = Model(scenario, [4], record_effects=True)
    model.run()
    return scenario, model.effects()


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_the_kernel_equals_the_numpy_equations(recorded, method):
    from sim.stockflow_kernel import KERNEL_OUTPUTS

    scenario, effects = recorded
    scenario = replace(scenario, method=method)
    times, ours = replay(scenario, effects, OVERRIDES, KERNEL_OUTPUTS)
    compiled_times, compiled = replay(scenario, effects, OVERRIDES, KERNEL_OUTPUTS, compiled=True)
    np.testing.assert_array_equal(compiled_times, times)
    for name in KERNEL_OUTPUTS:
        assert compiled[name].shape == ours[name].shape, name
        np.testing.assert_allclose(compiled[name], ours[name], rtol=1e-10, atol=1e-6, err_msg=name)
    # the parameter sets differ, and the housing cap, demolition and deliveries are at work
    assert not np.allclose(ours["population"][-1, 0], ours["population"][-1, 1])
    assert ours["housing_capacity"][-1, 0, 0] < ours["housing_capacity"][0, 0, 0]


def test_the_kernel_gives_stocks_only(recorded):
    scenario, effects = recorded
    with pytest.raises(ValueError, match="stocks only"):
        replay(scenario, effects, [{}], ["net_migration"], compiled=True)


def test_the_compiled_region_constant_fit_equals_the_numpy_fit(recorded):
    from sim.parameters import stack_parameters
    from sim.stockflow import StockFlow

    scenario, effects = recorded
    values = stack_parameters(scenario, OVERRIDES)
    compiled = StockFlow(scenario, values, effects.start, compiled=True).params
    ours = StockFlow(scenario, values, effects.start).params
    for name in ("region_constant", "move_gap_2014", "elsewhere_utility"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(ours, name), rtol=1e-9, atol=1e-10, err_msg=name)
    assert not np.allclose(ours.region_constant[0], ours.region_constant[1])  # the overrides move the constants


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_the_coupled_models_compiled_month_equals_the_numpy_month(recorded, method):
    """``Model(compiled=True)`` advances the stocks with ``sim.stockflow_kernel.advance``: equal to rounding."""
    from sim.stockflow import STOCK_FLOW_OUTPUTS

    scenario = replace(recorded[0], method=method)
    overrides = OVERRIDES[:3]
    ours = Model(scenario, [4, 5, 6], overrides, compiled=False).run()
    compiled = Model(scenario, [4, 5, 6], overrides, compiled=True).run()
    for name in STOCK_FLOW_OUTPUTS:
        np.testing.assert_allclose(compiled.values[name], ours.values[name], rtol=1e-10, atol=1e-6, err_msg=name)
    for name in set(ours.values) - set(STOCK_FLOW_OUTPUTS):  # the agents drew the same numbers
        np.testing.assert_array_equal(compiled.values[name], ours.values[name], err_msg=name)
    # households followed staff, and the parameter sets made different histories
    assert ours.values["staff_moved_cum"][-1].max() > 0
    assert not np.allclose(ours.values["population"][-1, 0], ours.values["population"][-1, 1])


def test_the_switch(recorded, monkeypatch):
    """The stocks' compiled month runs only when asked for (``compiled=True`` or ``SIM_COMPILED=1``), never
    because numba is loaded; ``SIM_COMPILED=0`` and a mutation run (``MUTANT_UNDER_TEST``) force numpy; the
    firms' month is numpy's on every path (design record 57)."""
    import subprocess
    import sys

    from sim.compiled import asked_for
    from sim.firms import Firms

    scenario = recorded[0]
    monkeypatch.delenv("SIM_COMPILED", raising=False)
    assert "numba" in sys.modules  # loaded by the fixture's kernels
    assert not asked_for(None) and asked_for(True) and not asked_for(False)
    model = Model(scenario, [1])
    assert not model.compiled_stocks and type(model.firms) is Firms
    model = Model(scenario, [1], compiled=True)
    assert model.compiled_stocks and type(model.firms) is Firms
    monkeypatch.setenv("SIM_COMPILED", "1")
    assert Model(scenario, [1]).compiled_stocks and not Model(scenario, [1], compiled=False).compiled_stocks
    monkeypatch.setenv("SIM_COMPILED", "0")
    assert not asked_for(None) and not asked_for(True)
    monkeypatch.delenv("SIM_COMPILED")
    monkeypatch.setenv("MUTANT_UNDER_TEST", "sim.firms.x_Firms__mutmut_1")  # mutmut: the numpy code under test
    assert not Model(scenario, [1], compiled=True).compiled_stocks
    monkeypatch.delenv("MUTANT_UNDER_TEST")
    # a fresh process does not load numba to decide: SIM_COMPILED=1 asks for the kernel where it is installed
    program = "import sys; from sim.compiled import asked_for; print(asked_for(), 'numba' in sys.modules)"
    root = str(Path(sim.__file__).resolve().parents[1])
    for switch, expected in (("", "False False"), ("1", "True False")):
        env = {**os.environ, "SIM_COMPILED": switch, "PYTHONPATH": root}
        env.pop("MUTANT_UNDER_TEST", None)
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == expected
