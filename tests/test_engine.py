"""Tests of the generic stock-and-flow engine (sim.engine) against closed forms.

The engine carries every stock of the model, so its accuracy, convergence order,
conservation of material and batch independence are checked here against
analytic solutions rather than against stored outputs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import INTEGRATORS, Lookup, State, integrate, material_delay, smooth, step

MONTH = 1.0 / 12.0
METHODS = ("euler", "rk4")


def decay_model(rate: np.ndarray | float):
    """dy/dt = -rate * y, the simplest model with an exact solution."""

    def derivative(t: float, state: Mapping[str, np.ndarray]) -> State:
        return {"y": -rate * state["y"]}

    return derivative


def relative_error(computed: np.ndarray, exact: np.ndarray) -> float:
    """Largest pointwise relative error, so a small late value cannot hide a bad fit."""
    return float(np.max(np.abs(computed - exact) / np.abs(exact)))


def decay_error(method: str, dt: float, rate: float = 0.3, t_end: float = 20.0) -> float:
    """Relative error over a whole exponential-decay run."""
    n_steps = round(t_end / dt)
    times, out = integrate(decay_model(rate), {"y": np.array([1.0])}, 0.0, dt, n_steps, method)
    exact = np.exp(-rate * times)[:, None]
    return relative_error(out["y"], exact)


# 1. Exponential decay at the documented monthly step.


def test_exponential_decay_rk4_monthly_is_accurate() -> None:
    """RK4 at dt = 1 month must reproduce y0 exp(-k t) to 1e-6 over 20 years."""
    y0 = np.array([2.5, 40.0])
    rate = 0.3
    times, out = integrate(decay_model(rate), {"y": y0}, 0.0, MONTH, 240, "rk4")
    assert out["y"].shape == (241, 2)
    assert times[-1] == pytest.approx(20.0)
    exact = y0[None, :] * np.exp(-rate * times)[:, None]
    assert relative_error(out["y"], exact) < 1e-6


def test_euler_is_less_accurate_than_rk4_on_decay() -> None:
    """Euler is first order, so at the same step it must be far worse than RK4."""
    euler_error = decay_error("euler", MONTH)
    rk4_error = decay_error("rk4", MONTH)
    assert rk4_error < 1e-6
    assert euler_error > 1e-3  # about 7.5e-2 relative at t = 20 years
    assert euler_error > 1e3 * rk4_error


# 2. Logistic growth.


def test_logistic_growth_rk4_monthly_is_accurate() -> None:
    """A nonlinear stock must also meet 1e-6 at the monthly step with RK4."""
    growth_rate, capacity, y0 = 0.5, 100.0, 1.0

    def derivative(t: float, state: Mapping[str, np.ndarray]) -> State:
        y = state["y"]
        return {"y": growth_rate * y * (1.0 - y / capacity)}

    times, out = integrate(derivative, {"y": np.array([y0])}, 0.0, MONTH, 360, "rk4")
    exact = capacity / (1.0 + (capacity / y0 - 1.0) * np.exp(-growth_rate * times))
    assert times[-1] == pytest.approx(30.0)
    assert relative_error(out["y"][:, 0], exact) < 1e-6
    assert out["y"][-1, 0] == pytest.approx(capacity, rel=1e-4)


# 3. Measured convergence order.


def final_decay_error(method: str, dt: float, rate: float = 1.0, t_end: float = 2.0) -> float:
    """Absolute error at t_end; the step must divide t_end exactly."""
    n_steps = round(t_end / dt)
    assert abs(n_steps * dt - t_end) < 1e-12
    _, out = integrate(decay_model(rate), {"y": np.array([1.0])}, 0.0, dt, n_steps, method)
    return abs(float(out["y"][-1, 0]) - np.exp(-rate * t_end))


@pytest.mark.parametrize(("method", "expected_order"), [("euler", 1.0), ("rk4", 4.0)])
def test_convergence_order(method: str, expected_order: float) -> None:
    """Halving dt must cut the error by 2**order: the method is what it claims to be."""
    steps = [0.1, 0.05, 0.025, 0.0125]
    errors = [final_decay_error(method, dt) for dt in steps]
    orders = [np.log2(coarse / fine) for coarse, fine in itertools.pairwise(errors)]
    tolerance = 0.1 if expected_order == 1.0 else 0.2
    for order in orders:
        assert abs(order - expected_order) < tolerance, (method, orders, errors)


# 4. Material delays.


def delay_step_model(inflow: float, delay_time: np.ndarray | float):
    """A delay fed by a constant inflow (a step from 0 at t = 0)."""

    def derivative(t: float, state: Mapping[str, np.ndarray]) -> State:
        d_stages, _ = material_delay(np.full(state["stages"].shape[:-1], inflow), state["stages"], delay_time)
        return {"stages": d_stages}

    return derivative


def delay_outflow(stages: np.ndarray, delay_time: np.ndarray | float) -> np.ndarray:
    """The outflow implied by recorded stages (the inflow does not affect it)."""
    _, outflow = material_delay(np.zeros(stages.shape[:-1]), stages, delay_time)
    return outflow


def test_first_order_delay_step_response() -> None:
    """DELAY1 of a unit step is 1 - exp(-t/T)."""
    delay_time = 2.0
    stages0 = np.zeros((1, 1))
    times, out = integrate(delay_step_model(1.0, delay_time), {"stages": stages0}, 0.0, 0.01, 1000, "rk4")
    outflow = delay_outflow(out["stages"], delay_time)[:, 0]
    exact = 1.0 - np.exp(-times / delay_time)
    np.testing.assert_allclose(outflow, exact, rtol=0, atol=1e-11)  # measured 1.9e-12


def test_third_order_delay_step_response() -> None:
    """DELAY3 of a unit step is the Erlang-3 distribution function."""
    delay_time = 2.0
    stages0 = np.zeros((1, 3))
    times, out = integrate(delay_step_model(1.0, delay_time), {"stages": stages0}, 0.0, 0.01, 1000, "rk4")
    outflow = delay_outflow(out["stages"], delay_time)[:, 0]
    x = 3.0 * times / delay_time
    exact = 1.0 - np.exp(-x) * (1.0 + x + x**2 / 2.0)
    np.testing.assert_allclose(outflow, exact, rtol=0, atol=2e-9)  # measured 5.4e-10
    # Material in transit is the integral of (1 - outflow): (T/3) * sum of Erlang-1..3 functions.
    erlang_sum = sum(1.0 - np.exp(-x) * sum(x**j / math.factorial(j) for j in range(k + 1)) for k in range(3))
    np.testing.assert_allclose(out["stages"][:, 0].sum(axis=-1), delay_time / 3.0 * erlang_sum, rtol=0, atol=1e-9)


def test_delay_time_per_run_broadcasts() -> None:
    """Different delay times in one batch each follow their own closed form."""
    delay_times = np.array([0.5, 1.0, 2.0, 4.0])
    stages0 = np.zeros((4, 3))
    times, out = integrate(delay_step_model(1.0, delay_times), {"stages": stages0}, 0.0, 0.005, 1600, "rk4")
    outflow = delay_outflow(out["stages"], delay_times)
    x = 3.0 * times[:, None] / delay_times[None, :]
    exact = 1.0 - np.exp(-x) * (1.0 + x + x**2 / 2.0)
    np.testing.assert_allclose(outflow, exact, rtol=0, atol=3e-8)  # worst run (T = 0.5) measured 8.9e-9


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("order", [1, 3, 6])
def test_material_delay_conserves_material(method: str, order: int) -> None:
    """Stages + cumulative outflow == cumulative inflow: a delay neither creates nor loses material."""
    delay_times = np.array([[1.5], [3.0]])  # per run, broadcast over two regions

    def inflow_at(t: float) -> np.ndarray:
        return np.array([[1.0, 2.0], [0.5, 4.0]]) * (1.0 + 0.8 * np.sin(2.0 * t)) + t

    def derivative(t: float, state: Mapping[str, np.ndarray]) -> State:
        inflow = inflow_at(t)
        d_stages, outflow = material_delay(inflow, state["stages"], delay_times)
        return {"stages": d_stages, "cumulative_in": inflow, "cumulative_out": outflow}

    state0 = {
        "stages": np.zeros((2, 2, order)),
        "cumulative_in": np.zeros((2, 2)),
        "cumulative_out": np.zeros((2, 2)),
    }
    _, out = integrate(derivative, state0, 0.0, 0.05, 400, method)
    in_transit = out["stages"].sum(axis=-1)
    balance = in_transit + out["cumulative_out"] - out["cumulative_in"]
    scale = np.max(np.abs(out["cumulative_in"]))
    assert scale > 10.0  # a non-trivial amount of material passed through
    assert np.max(np.abs(balance)) / scale < 1e-12
    assert np.all(out["stages"] >= 0.0)


def test_material_delay_rates_sum_to_inflow_minus_outflow() -> None:
    """At a single evaluation the stage rates already balance exactly."""
    rng = np.random.default_rng(7)
    stages = rng.uniform(0.0, 5.0, size=(5, 3, 4))
    inflow = rng.uniform(0.0, 2.0, size=(5, 3))
    d_stages, outflow = material_delay(inflow, stages, 2.5)
    assert d_stages.shape == stages.shape
    assert outflow.shape == inflow.shape
    np.testing.assert_allclose(d_stages.sum(axis=-1), inflow - outflow, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(outflow, stages[..., -1] * 4 / 2.5, rtol=1e-15)


# 5. SMOOTH.


@pytest.mark.parametrize("smoothing_time", [0.5, 2.0])
def test_smooth_step_response(smoothing_time: float) -> None:
    """SMOOTH of a unit step rises as 1 - exp(-t/T)."""

    def derivative(t: float, state: Mapping[str, np.ndarray]) -> State:
        return {"level": smooth(np.ones_like(state["level"]), state["level"], smoothing_time)}

    times, out = integrate(derivative, {"level": np.zeros(1)}, 0.0, 0.01, 600, "rk4")
    exact = 1.0 - np.exp(-times / smoothing_time)
    np.testing.assert_allclose(out["level"][:, 0], exact, rtol=0, atol=1e-9)


def test_smooth_is_at_rest_when_level_equals_value() -> None:
    """A perceived value equal to the actual one must not drift."""
    value = np.array([[1.0, -2.0], [3.5, 0.0]])
    np.testing.assert_array_equal(smooth(value, value.copy(), 1.7), np.zeros_like(value))


# 6. Lookup tables.


def test_lookup_interpolates_linearly() -> None:
    """Between points the table is the straight line through its neighbours."""
    table = Lookup((0.0, 1.0, 3.0), (0.0, 10.0, 20.0))
    assert table(0.5) == pytest.approx(5.0)
    assert table(1.0) == pytest.approx(10.0)
    assert table(2.0) == pytest.approx(15.0)
    assert table(3.0) == pytest.approx(20.0)


def test_lookup_extrapolates_flat() -> None:
    """Beyond its ends the table holds the end values (Vensim convention)."""
    table = Lookup((0.0, 1.0), (2.0, 4.0))
    assert table(-100.0) == pytest.approx(2.0)
    assert table(1e9) == pytest.approx(4.0)


def test_lookup_works_on_arrays() -> None:
    """A batch of inputs gives a batch of outputs of the same shape."""
    table = Lookup((0.0, 1.0, 2.0), (1.0, 3.0, 2.0))
    values = np.array([[-1.0, 0.25, 1.0], [1.5, 2.0, 5.0]])
    result = table(values)
    assert result.shape == values.shape
    np.testing.assert_allclose(result, [[1.0, 1.5, 3.0], [2.5, 2.0, 2.0]])


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ((0.0, 1.0, 1.0), (1.0, 2.0, 3.0)),  # repeated x
        ((0.0, 2.0, 1.0), (1.0, 2.0, 3.0)),  # decreasing x
        ((0.0, 1.0, 2.0), (1.0, 2.0)),  # length mismatch
        ((0.0,), (1.0,)),  # a single point is not a table
    ],
)
def test_lookup_rejects_bad_tables(x: tuple[float, ...], y: tuple[float, ...]) -> None:
    """An ill-formed table must fail when built, not give silent nonsense later."""
    with pytest.raises(ValueError):
        Lookup(x, y)


def test_lookup_from_points() -> None:
    """The scenario-file form [[x, y], ...] builds the same table."""
    table = Lookup.from_points([[0, 1], [2, 5], [4, 5]])
    assert table == Lookup((0.0, 2.0, 4.0), (1.0, 5.0, 5.0))
    assert all(isinstance(v, float) for v in table.x + table.y)
    assert table(1.0) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        Lookup.from_points([[0, 1], [0, 2]])


# 7. Batch independence.


def batch_equals_separate_runs(rates: np.ndarray, y0: np.ndarray, method: str, n_steps: int = 40) -> None:
    """Integrating runs together must give exactly what each run gives alone."""
    _, together = integrate(decay_model(rates), {"y": y0}, 0.0, MONTH, n_steps, method)
    for run in range(rates.shape[0]):
        _, alone = integrate(decay_model(rates[run : run + 1]), {"y": y0[run : run + 1]}, 0.0, MONTH, n_steps, method)
        np.testing.assert_allclose(together["y"][:, run : run + 1], alone["y"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_separate_runs(method: str) -> None:
    """Rates of shape (N, 1) broadcast over a state of shape (N, 3)."""
    rates = np.array([[0.05], [0.3], [1.0], [2.5]])
    y0 = np.arange(1.0, 13.0).reshape(4, 3)
    batch_equals_separate_runs(rates, y0, method)


@settings(max_examples=25, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=6),
    width=st.integers(min_value=1, max_value=4),
    method=st.sampled_from(METHODS),
)
def test_batch_equals_separate_runs_property(rates: list[float], width: int, method: str) -> None:
    """Any rates and widths: no run may leak into another."""
    rate_array = np.array(rates)[:, None]
    y0 = np.linspace(0.5, 5.0, len(rates) * width).reshape(len(rates), width)
    batch_equals_separate_runs(rate_array, y0, method, n_steps=12)


# 8. step() and integrate() bookkeeping.


def test_step_rejects_unknown_method_naming_choices() -> None:
    """A typo in the method must say which names would have worked."""
    with pytest.raises(ValueError) as raised:
        step(decay_model(1.0), 0.0, {"y": np.ones(1)}, 0.1, method="rk45")
    message = str(raised.value)
    assert "rk45" in message
    for name in INTEGRATORS:
        assert name in message


@pytest.mark.parametrize("method", METHODS)
def test_step_matches_one_step_of_integrate(method: str) -> None:
    """step() is the same update integrate() applies."""
    y0 = {"y": np.array([[1.0, 2.0]])}
    stepped = step(decay_model(0.7), 0.0, y0, 0.1, method)
    _, out = integrate(decay_model(0.7), y0, 0.0, 0.1, 1, method)
    np.testing.assert_array_equal(stepped["y"], out["y"][-1])
    if method == "euler":
        np.testing.assert_allclose(stepped["y"], y0["y"] * (1 - 0.07), rtol=1e-15)


def two_stock_model(t: float, state: Mapping[str, np.ndarray]) -> State:
    """Two stocks of different shapes, one of them time-dependent."""
    return {"a": -0.5 * state["a"], "b": np.full_like(state["b"], np.cos(t))}


def test_integrate_records_only_requested_names() -> None:
    """Unrequested stocks are integrated but not returned."""
    state0 = {"a": np.ones((2, 3)), "b": np.zeros((2,))}
    _, out = integrate(two_stock_model, state0, 0.0, 0.1, 10, "rk4", record=["b"])
    assert list(out) == ["b"]
    assert out["b"].shape == (11, 2)
    np.testing.assert_allclose(out["b"][-1], np.sin(1.0), rtol=1e-7)
    _, everything = integrate(two_stock_model, state0, 0.0, 0.1, 10, "rk4")
    assert set(everything) == {"a", "b"}
    assert everything["a"].shape == (11, 2, 3)


@pytest.mark.parametrize(("n_steps", "expected_indices"), [(12, [0, 3, 6, 9, 12]), (10, [0, 3, 6, 9])])
def test_integrate_record_every_times_grid(n_steps: int, expected_indices: list[int]) -> None:
    """Output every k steps from t0; the end only when it falls on that grid."""
    state0 = {"a": np.ones((2, 3)), "b": np.zeros((2,))}
    t0, dt = 2020.0, 0.25
    times, out = integrate(two_stock_model, state0, t0, dt, n_steps, "rk4", record_every=3)
    np.testing.assert_allclose(times, t0 + dt * np.array(expected_indices), rtol=0, atol=1e-9)
    _, every_step = integrate(two_stock_model, state0, t0, dt, n_steps, "rk4")
    for name in ("a", "b"):
        assert out[name].shape[0] == len(expected_indices)
        np.testing.assert_array_equal(out[name], every_step[name][expected_indices])


def test_integrate_leaves_initial_state_untouched_and_zero_steps() -> None:
    """The caller's y0 must survive a run; zero steps returns just the start."""
    y0 = {"y": np.array([[1.0, 2.0]])}
    times, out = integrate(decay_model(1.0), y0, 5.0, 0.1, 0)
    np.testing.assert_array_equal(times, [5.0])
    np.testing.assert_array_equal(out["y"], [[[1.0, 2.0]]])
    integrate(decay_model(1.0), y0, 0.0, 0.1, 20)
    np.testing.assert_array_equal(y0["y"], [[1.0, 2.0]])


@pytest.mark.parametrize(("n_steps", "record_every"), [(-1, 1), (10, 0)])
def test_integrate_rejects_bad_step_counts(n_steps: int, record_every: int) -> None:
    """Negative step counts and a zero output interval are caller errors."""
    with pytest.raises(ValueError):
        integrate(decay_model(1.0), {"y": np.ones(1)}, 0.0, 0.1, n_steps, record_every=record_every)
