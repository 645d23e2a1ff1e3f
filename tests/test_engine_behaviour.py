"""The engine's contract where closed forms of autonomous models cannot see it.

tests/test_engine.py checks accuracy and conservation on models that ignore time; these
check what a time-dependent model, a default argument or a step count would reveal: the
time handed to each RK4 stage, the default method, the work done, one hand-computed step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from sim.engine import material_delay, smooth, step
from sim.engine.integrate import euler_step, integrate, rk4_step

pytestmark = pytest.mark.fast


def counting(derivative):
    """The derivative with a call counter (``calls[0]``) and the times it was called at."""
    calls, times = [0], []

    def f(t: float, state: Mapping[str, np.ndarray]):
        calls[0] += 1
        times.append(t)
        return derivative(t, state)

    return f, calls, times


def cosine(t: float, state: Mapping[str, np.ndarray]):
    """dy/dt = cos(t): the exact solution sin(t) needs each stage at its own time."""
    return {"y": np.full_like(state["y"], np.cos(t))}


def test_rk4_stages_are_evaluated_at_t_t_half_and_t_plus_dt():
    f, calls, times = counting(cosine)
    new = rk4_step(f, 1.0, {"y": np.array([0.0])}, 0.5)
    assert calls[0] == 4 and times == [1.0, 1.25, 1.25, 1.5]
    # Simpson's rule for the integral of cos over [1, 1.5], exact for a quadrature of this size to 1e-5
    expected = 0.5 / 6 * (np.cos(1.0) + 4 * np.cos(1.25) + np.cos(1.5))
    np.testing.assert_allclose(new["y"], [expected], rtol=1e-14)
    np.testing.assert_allclose(new["y"], [np.sin(1.5) - np.sin(1.0)], rtol=1e-4)


def test_rk4_on_a_time_dependent_model_converges_to_the_exact_solution():
    times, out = integrate(cosine, {"y": np.array([0.0])}, 0.0, 1 / 12, 120)
    np.testing.assert_allclose(out["y"][:, 0], np.sin(times), atol=1e-7)


def test_euler_step_by_hand():
    f, calls, times = counting(lambda t, s: {"y": -2.0 * s["y"] + t})
    new = euler_step(f, 3.0, {"y": np.array([1.0, 4.0])}, 0.25)
    np.testing.assert_allclose(new["y"], [1.0 + 0.25 * (-2.0 + 3.0), 4.0 + 0.25 * (-8.0 + 3.0)], rtol=1e-15)
    assert calls[0] == 1 and times == [3.0]


def test_step_defaults_to_rk4():
    y = {"y": np.array([1.0])}
    assert step(cosine, 0.3, y, 0.5)["y"] == rk4_step(cosine, 0.3, y, 0.5)["y"]
    assert step(cosine, 0.3, y, 0.5)["y"] != euler_step(cosine, 0.3, y, 0.5)["y"]


@pytest.mark.parametrize(("method", "calls_per_step"), [("euler", 1), ("rk4", 4)])
def test_integrate_does_exactly_n_steps_of_work(method, calls_per_step):
    f, calls, times = counting(cosine)
    integrate(f, {"y": np.array([0.0])}, 2.0, 0.1, 7, method)
    assert calls[0] == 7 * calls_per_step
    assert max(times) == pytest.approx(2.0 + 0.7 if method == "rk4" else 2.0 + 0.6)


def test_integrate_starts_at_t0_and_steps_from_each_step_time():
    f, _, times = counting(cosine)
    integrate(f, {"y": np.array([0.0])}, 5.0, 0.5, 3, "euler")
    assert times == [5.0, 5.5, 6.0]


def test_material_delay_by_hand():
    """Order 2, T = 4: each stage drains at stage * 2 / 4; the first receives the inflow."""
    rates, outflow = material_delay(np.array([3.0]), np.array([[2.0, 8.0]]), 4.0)
    np.testing.assert_allclose(rates, [[3.0 - 1.0, 1.0 - 4.0]], rtol=1e-15)
    np.testing.assert_allclose(outflow, [4.0], rtol=1e-15)


def test_smooth_by_hand():
    np.testing.assert_allclose(smooth(np.array([10.0]), np.array([4.0]), 3.0), [2.0], rtol=1e-15)
    np.testing.assert_allclose(smooth(np.array([1.0]), np.array([4.0]), 0.5), [-6.0], rtol=1e-15)
