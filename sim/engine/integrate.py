"""Fixed-step integrators over named stocks.

Contract for a model (the derivative function ``f``):

1. ``f(t, state)`` takes the time ``t`` [years] and a dict of stocks, each an
   array whose first axis is the batch (run) axis;
2. it returns a dict with the same keys and shapes: the net rate of change of
   each stock [stock unit per year];
3. it is pure: it neither mutates ``state`` nor keeps hidden state, so RK4 may
   call it four times per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

State = dict[str, np.ndarray]
Derivative = Callable[[float, Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def _axpy(y: Mapping[str, np.ndarray], k: Mapping[str, np.ndarray], h: float) -> State:
    """y + h * k, stock by stock."""
    return {name: y[name] + h * k[name] for name in y}


def euler_step(f: Derivative, t: float, y: Mapping[str, np.ndarray], dt: float) -> State:
    """One explicit Euler step: first order, the usual choice of SD tools."""
    return _axpy(y, f(t, y), dt)


def rk4_step(f: Derivative, t: float, y: Mapping[str, np.ndarray], dt: float) -> State:
    """One classical Runge-Kutta step: fourth order."""
    k1 = f(t, y)
    k2 = f(t + dt / 2, _axpy(y, k1, dt / 2))
    k3 = f(t + dt / 2, _axpy(y, k2, dt / 2))
    k4 = f(t + dt, _axpy(y, k3, dt))
    return {n: y[n] + dt / 6 * (k1[n] + 2 * k2[n] + 2 * k3[n] + k4[n]) for n in y}


INTEGRATORS: dict[str, Callable[[Derivative, float, Mapping[str, np.ndarray], float], State]] = {
    "euler": euler_step,
    "rk4": rk4_step,
}


def step(f: Derivative, t: float, y: Mapping[str, np.ndarray], dt: float, method: str = "rk4") -> State:
    """Advance ``y`` from ``t`` to ``t + dt`` with the named method."""
    try:
        integrator = INTEGRATORS[method]
    except KeyError:
        raise ValueError(f"unknown integration method {method!r}; expected one of {sorted(INTEGRATORS)}") from None
    return integrator(f, t, y, dt)


def integrate(
    f: Derivative,
    y0: Mapping[str, np.ndarray],
    t0: float,
    dt: float,
    n_steps: int,
    method: str = "rk4",
    record: Sequence[str] | None = None,
    record_every: int = 1,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Integrate ``n_steps`` steps of ``dt`` from ``t0``.

    Returns the output times and, for each recorded stock, an array with the
    time axis first: ``(n_out, batch, ...)``. Output times are every
    ``record_every`` steps, the start and (if it falls on the grid) the end.
    """
    if n_steps < 0 or record_every < 1:
        raise ValueError("n_steps must be >= 0 and record_every >= 1")
    names = list(y0) if record is None else list(record)
    y = {k: np.asarray(v, dtype=float) for k, v in y0.items()}
    times, frames = [], {n: [] for n in names}
    for i in range(n_steps + 1):
        if i % record_every == 0:
            times.append(t0 + i * dt)
            for n in names:
                frames[n].append(y[n].copy())
        if i < n_steps:
            y = step(f, t0 + i * dt, y, dt, method)
    return np.array(times), {n: np.stack(v) for n, v in frames.items()}
