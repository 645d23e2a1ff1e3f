"""The compiled month (``Model(compiled=True)``) against the numpy reference: the firms' compiled month
(sim/firms_kernel.py) gives the reference's events, agents and counters exactly; the stocks' compiled
month (sim.stockflow_kernel.advance) equals the numpy integration to rounding.

Needs numba (the `fast` extra); skipped without it, except under CI=true, where it fails.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import SCENARIOS

import sim
from sim.compiled import use_compiled
from sim.firms import Firms
from sim.model import Model
from sim.stockflow import STOCK_FLOW_OUTPUTS

try:
    import numba  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

# three runs that push every chain: high rent responses (hazard exponents at their cap), no young-firm boost,
# fast relocation, and a wide spread of cost sensitivities
OVERRIDES = [
    {},
    {"firms.rent_exit_response": 15.0, "firms.cost_push": 40.0, "firms.young_exit_boost": 0.0},
    {"firms.relocation_rate": 0.5, "firms.young_exit_boost": 8.0, "firms.cost_sensitivity_spread": 2.0},
]
OVERRIDES[1]["population.jobs_weight"] = 3.5  # the stocks differ too


@pytest.fixture(scope="module", autouse=True)
def needs_numba():
    if numba is None:
        if os.environ.get("CI") == "true":
            pytest.fail("numba is not installed; CI must test the compiled firm month (python -m pip install numba)")
        pytest.skip("numba is not installed (python -m pip install numba): the compiled firm month cannot run")


def both_paths(scenario, seeds, overrides=None):
    """The same batch run by the numpy reference and by the compiled month: (history, model) each."""
    runs = {}
    for compiled in (False, True):
        model = Model(scenario, seeds, overrides, compiled=compiled)
        runs[compiled] = model.run(), model
    assert isinstance(runs[True][1].firms, Firms) and type(runs[True][1].firms) is not Firms
    assert type(runs[False][1].firms) is Firms
    return runs[False], runs[True]


def assert_identical(reference, compiled):
    (ours, model), (theirs, fast) = reference, compiled
    assert ours.events == theirs.events
    assert set(ours.values) == set(theirs.values)
    for name, values in ours.values.items():
        if name in STOCK_FLOW_OUTPUTS:  # the stocks' compiled month: libm's exp and log, not numpy's
            np.testing.assert_allclose(theirs.values[name], values, rtol=1e-10, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(theirs.values[name], values, err_msg=name)
    for name in Firms.COLUMNS:  # every agent in the same slot with the same traits
        np.testing.assert_array_equal(getattr(fast.firms, name), getattr(model.firms, name), err_msg=name)
    counters = vars(model.firms.counters)
    for name, value in counters.items():
        np.testing.assert_array_equal(getattr(fast.firms.counters, name), value, err_msg=name)


def test_the_historical_run_is_identical():
    scenario = sim.load_scenario(SCENARIOS / "historical.toml")
    reference, compiled = both_paths(scenario, [scenario.seed])
    assert_identical(reference, compiled)
    c = reference[1].firms.counters
    assert c.exits.sum() > 0 and c.dispersed.sum() > 0 and c.spontaneous_moves.sum() > 0  # every chain fired


def test_a_batch_with_different_parameters_is_identical():
    scenario = sim.load_scenario(SCENARIOS / "historical.toml")
    reference, compiled = both_paths(scenario, [1, 2, 3], OVERRIDES)
    assert_identical(reference, compiled)
    exits = reference[1].firms.counters.exits.sum(axis=1)
    assert len(set(exits)) == 3  # the parameter sets made different histories


def test_the_bound_of_exp_is_above_numpy_exp():
    from sim.firms_kernel import SLACK, _exp_bound

    bound = numba.njit(lambda a: _exp_bound(a))
    a = np.concatenate([np.linspace(-60, 50, 200_001), np.logspace(-300, 1.699, 4000), [50.0, 60.0, np.inf]])
    values = np.array([bound(v) for v in a])
    assert (values * SLACK >= np.exp(np.minimum(a, 50.0))).all()  # with the kernels' slack: above numpy's exp
    assert (values[a <= 0] == 1.0).all() and bound(np.nan) == 1.0  # a hazard's exponent only raises it
    small = (a > 0) & (a < 4)
    assert (values[small] <= np.exp(a[small]) * 1.0001).all()  # and close to it where hazards are
    assert values[-3] <= np.exp(50.0) * 7


def test_the_switch(monkeypatch):
    import subprocess
    import sys

    assert use_compiled(None) and use_compiled(True)  # numba is loaded in this process
    assert not use_compiled(False)
    scenario = sim.load_scenario(SCENARIOS / "historical.toml")
    model = Model(scenario, [1])  # numba loaded: the firms' month compiled (the same numbers), the stocks' not
    assert model.compiled and not model.compiled_stocks and type(model.firms) is not Firms
    assert Model(scenario, [1], compiled=True).compiled_stocks
    monkeypatch.setenv("SIM_COMPILED", "1")
    assert Model(scenario, [1]).compiled_stocks
    monkeypatch.setenv("SIM_COMPILED", "0")
    assert not use_compiled(None) and not use_compiled(True)
    monkeypatch.delenv("SIM_COMPILED")
    monkeypatch.setenv("MUTANT_UNDER_TEST", "sim.firms.x_Firms__mutmut_1")  # mutmut: the numpy code under test
    assert not use_compiled(None)
    model = Model(scenario, [1], compiled=True)
    assert type(model.firms) is Firms and not model.compiled_stocks
    monkeypatch.delenv("MUTANT_UNDER_TEST")
    # a fresh process loads numba only when asked to (SIM_COMPILED=1): it costs more than it saves on one run
    program = "import sys; from sim.compiled import use_compiled; print(use_compiled(), 'numba' in sys.modules)"
    for switch, expected in (("", "False False"), ("1", "True False")):
        env = {**os.environ, "SIM_COMPILED": switch, "PYTHONPATH": str(SCENARIOS.parent)}
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == expected


@pytest.mark.parametrize("split_share", [1.0, 0.5])
@pytest.mark.parametrize("response", [1.0, -1.0, 0.0])
def test_a_runs_limit_leaves_out_only_agents_above_their_own_bound(response, split_share):
    """The exit and relocation kernels test a run's limit (for the costs up to its split) and the cost before
    an agent's own bound: the candidates are exactly the agents whose draw is below their own bound, whatever
    the signs and the split, and a run with a NaN cost tests every agent."""
    from sim.firms_kernel import SLACK, _exit_candidates, _exp_bound, _relocation_candidates

    bound = numba.njit(lambda a: _exp_bound(a))
    rng = np.random.default_rng(5)
    runs, width, cells = 3, 4000, 8
    cost = rng.lognormal(-2.0, 0.3, (runs, width))
    cost[2, 7] = np.nan  # run 2: no limit
    cell = rng.integers(0, cells, (runs, width)).astype(np.int32) + (np.arange(runs) * cells)[:, None]
    rent = rng.uniform(-0.5, 2.0, runs * cells)
    rate = rng.uniform(0.01, 0.3, runs * cells)
    alive = rng.random((runs, width)) < 0.9
    uniform = rng.random((runs, width)) * 0.1
    # the tightest agents: the largest cost, in the cells of the highest and lowest rent, at the highest rate,
    # each with a draw just below its own bound
    for run in range(runs):
        high, low = (
            run * cells + np.argmax(rent[run * cells : (run + 1) * cells]),
            run * cells + np.argmin(rent[run * cells : (run + 1) * cells]),
        )
        rate[[high, low]] = rate.max() + 0.01
        cell[run, :2], cost[run, :2], alive[run, :2] = (high, low), np.nanmax(cost[run]) * 2, True
    dt, out = 1 / 12, (np.empty(runs * width, np.int64), np.empty(runs * width, np.int64), np.empty(runs * width))
    split = cost.max(axis=1) * split_share  # the largest cost, or half of it (the tightest agents above it)
    responses, boost = np.full(runs, response), np.full(runs, 0.5)
    argument = responses[:, None] * cost * rent[cell]
    own = np.abs(rate[cell]) * np.vectorize(bound)(argument) * ((1 + 0.5) * dt * SLACK)
    uniform[:, :2] = own[:, :2] * (1 - 1e-12)
    assert (uniform < 1).all()
    found = _exit_candidates(uniform, 0, alive, cell, cost, dt, rent, rate, responses, boost, split, *out)
    expected = np.nonzero(alive & (uniform < own))
    np.testing.assert_array_equal(out[0][:found], expected[0])
    np.testing.assert_array_equal(out[1][:found], expected[1])
    assert 20 < found < runs * width / 2  # some candidates, not everyone
    moved = np.zeros_like(alive)
    relocation_rate = np.full(runs, 0.2)
    own = np.vectorize(bound)(argument) * (0.2 * dt * SLACK)
    uniform[:, :2] = own[:, :2] * (1 - 1e-12)
    found = _relocation_candidates(uniform, 0, alive, moved, cell, cost, dt, rent, responses, relocation_rate,
                                   split, *out)  # fmt: skip
    expected = np.nonzero(alive & (uniform < own))
    np.testing.assert_array_equal(out[1][:found], expected[1])
    np.testing.assert_array_equal(out[0][:found], expected[0])
