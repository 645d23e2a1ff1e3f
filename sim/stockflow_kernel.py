"""The stock-and-flow part compiled with numba: ``replay`` of the stocks, for sweeps and calibration.

The same equations as ``StockFlow.derivative`` (docs/model.md sections 4-5), written as loops
over runs, regions and pairs in one compiled function, so that a month costs microseconds
instead of numpy's per-call overhead of about 150 array operations. Used by
``sim.stockflow.replay(..., compiled=True)`` when only stocks are asked for, and month by
month by the coupled model when it runs compiled (``advance``; ``sim.compiled``); it needs
the optional ``fast`` extra (numba). tests/test_stockflow_kernel.py checks it against the numpy
equations to rounding, for Euler and RK4 and random parameter sets, so an equation changed
in one place and not the other fails a test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from sim.population import FLOOR
from sim.stockflow import DT, STOCK_OUTPUTS, AgentEffects, MonthInputs, StockFlow

KERNEL_OUTPUTS = STOCK_OUTPUTS
"""The outputs the kernel gives (stocks); rates (net migration, flows) need ``StockFlow.observe``."""

# per-run scalars, in the order of the kernel's `scalars` columns
SCALARS = (
    "jobs_weight",
    "housing_weight",
    "services_weight",
    "travel_time_weight",
    "move_sensitivity",
    "outside_in_migration",
    "outside_capture",
    "outside_trend",
    "elsewhere_utility",
    "target_occupancy",
    "housing_adjustment_time",
    "construction_time",
    "service_adjustment_time",
    "registration_tie",
)
# per-run, per-region parameters, in the order of the kernel's `regional` rows
REGIONAL = ("region_constant", "registration_rate", "max_build_rate", "local_service_norm")


@njit(cache=True)
def _derivative(y, dy, n, sc, rg, logit_base, same, follow, jobs, services, friction, penalty, removal, build, cap,
                captime, inflow, births, deaths, years):  # fmt: skip
    """Rates of one run's flat state ``y`` into ``dy``.

    ``y`` holds, in order: residents by group and region, housing, construction stages by region,
    local services, following stages by pair, and the four counters by region. ``friction`` is
    exp(-(w_time tt_ij + (C_j + tie [registered]) [other province])) by group, 0 on the diagonal,
    and ``penalty`` exp(-C_j): the month's levers, so that the utilities cost no exponential
    (exp(U_gij) = exp(A_j) friction_gij).
    """
    wj, wh, ws, lam, big_g, capture, trend, elsewhere = sc[0], sc[1], sc[2], sc[4], sc[5], sc[6], sc[7], sc[8]
    occ, t_h, t_c, t_s = sc[9], sc[10], sc[11], sc[12]
    follow_time = follow[1]
    h0, c0, l0, f0, q0 = 2 * n, 3 * n, 6 * n, 7 * n, 7 * n + 3 * n * n
    total = np.empty(n)
    attract = np.empty(n)
    removed = np.empty(n)  # housing demolished: campaigns plus any excess over a cap
    for j in range(n):
        total[j] = y[j] + y[n + j]
        housing = y[h0 + j]
        removed[j] = removal[j] * housing + max(housing - cap[j] / occ, 0.0) / captime[j]
        s = y[l0 + j] + services[j]
        attract[j] = (
            rg[0, j]
            + wj * np.log(max(jobs[j] / total[j], FLOOR))
            - wh * min(total[j] / housing, 1 / FLOOR)
            + ws * np.log(max(s / total[j], FLOOR))
        )
    for k in range(dy.shape[0]):
        dy[k] = 0.0
    # migration between regions and to the rest of China: the logit with the outside option (utility 0)
    shift = 0.0
    for j in range(n):
        shift = max(shift, attract[j])  # no exponential overflows: every weight is at most 1
    pull = np.empty(n)
    for j in range(n):
        pull[j] = np.exp(attract[j] - shift)
    outside = np.exp(-shift)
    tie = np.exp(-sc[13])  # registered residents' outside option carries the registration tie
    for i in range(n):
        for g in range(2):
            out_weight = outside * tie if g == 0 else outside
            denominator = out_weight
            for j in range(n):
                denominator += pull[j] * friction[g, i, j]
            inverse = 1.0 / denominator
            gap = shift + np.log(denominator) - attract[i] - rg[1 + g, i]  # inclusive value - attraction - 2014 gap
            probability = 1.0 / (1.0 + np.exp(-(logit_base[g, i] + lam * gap)))
            movers = y[g * n + i] * (probability + removed[i] / y[h0 + i])  # the displaced move as well
            dy[g * n + i] -= movers
            for j in range(n):
                if j != i:
                    into = g if (g == 1 or same[i, j] > 0.5) else 1  # registered arrive elsewhere as migrants
                    dy[into * n + j] += movers * (pull[j] * friction[g, i, j] * inverse)
            dy[q0 + 3 * n + i] += movers * (out_weight * inverse)  # out_to_outside_cum
    top = max(shift, elsewhere)
    scale = np.exp(shift - top)
    pulls = np.exp(elsewhere - top)
    for j in range(n):
        pulls += pull[j] * penalty[j] * scale
    pool = big_g / capture * np.exp(trend * years)
    for j in range(n):
        arriving = pool * (pull[j] * penalty[j] * scale) / pulls
        dy[n + j] += arriving
        dy[q0 + 2 * n + j] = arriving
    # natural change and registration
    for j in range(n):
        registering = rg[3, j] * y[n + j]
        for g in range(2):
            born, died = births[j] * y[g * n + j], deaths[j] * y[g * n + j]
            dy[g * n + j] += born - died
            dy[q0 + j] += born
            dy[q0 + n + j] += died
        dy[j] += registering
        dy[n + j] -= registering
    # households following relocated staff (DELAY3 per pair); pairs that never moved staff hold nothing
    drain = 3.0 / follow_time
    for i in range(n):
        for j in range(n):
            base = f0 + (i * n + j) * 3
            if inflow[i, j] == 0.0 and y[base] == 0.0 and y[base + 1] == 0.0 and y[base + 2] == 0.0:
                continue
            d0 = y[base] * drain
            d1 = y[base + 1] * drain
            d2 = y[base + 2] * drain
            dy[base] = inflow[i, j] - d0
            dy[base + 1] = d0 - d1
            dy[base + 2] = d1 - d2
            dy[i] -= d2
            if same[i, j] > 0.5:
                dy[j] += d2
            else:
                dy[n + j] += d2
    # housing and its construction (DELAY3), local services (SMOOTH)
    for j in range(n):
        housing = y[h0 + j]
        stages = y[c0 + 3 * j] + y[c0 + 3 * j + 1] + y[c0 + 3 * j + 2]
        rate = build[j] if build[j] == build[j] else rg[4, j]  # NaN: the parameter
        starts = min(max((min(total[j], cap[j]) / occ - housing - stages) / t_h, 0.0), rate * housing)
        d0 = y[c0 + 3 * j] * (3.0 / t_c)
        d1 = y[c0 + 3 * j + 1] * (3.0 / t_c)
        d2 = y[c0 + 3 * j + 2] * (3.0 / t_c)
        dy[c0 + 3 * j] = starts - d0
        dy[c0 + 3 * j + 1] = d0 - d1
        dy[c0 + 3 * j + 2] = d1 - d2
        dy[h0 + j] = d2 - removed[j]
        dy[l0 + j] = (rg[5, j] * total[j] - y[l0 + j]) / t_s


@njit(cache=True)
def _record(y, out, n):
    """The output stocks of the flat state: residents by group, housing, local services, counters."""
    out[: 3 * n] = y[: 3 * n]
    out[3 * n : 4 * n] = y[6 * n : 7 * n]
    out[4 * n :] = y[7 * n + 3 * n * n :]


@njit(cache=True)
def _rate(y, dy, n, r, ri, m, sc, rg, logit_base, same, follow, jobs, services, friction, penalty, removal, build,
          cap, captime, inflow, births, deaths, years):  # fmt: skip
    """``_derivative`` for run ``r`` (inputs of run ``ri``) in month ``m``."""
    _derivative(y, dy, n, sc[r], rg[r], logit_base[r], same, follow[r], jobs[m, ri], services[m, ri], friction,
                penalty, removal[m, ri], build[m, ri], cap[m, ri], captime[m, ri], inflow, births[m], deaths[m],
                years[m])  # fmt: skip


@njit(cache=True)
def _integrate(y0, n, rk4, sc, rg, logit_base, same, follow, jobs, services, control, tt, removal, build, cap, captime,
               staff, added, births, deaths, years, history):  # fmt: skip
    """All runs, all months: ``history`` (month + 1, run, 8 n) gets, at each month's start, the residents
    by group, housing, local services and the counters (the outputs; not the delay stages)."""
    runs, size = y0.shape
    months = jobs.shape[0]
    dy, k2, k3, k4, mid = np.empty(size), np.empty(size), np.empty(size), np.empty(size), np.empty(size)
    inflow, friction, penalty = np.empty((n, n)), np.zeros((2, n, n)), np.empty(n)
    for r in range(runs):
        y = y0[r].copy()
        ri = r if jobs.shape[1] > 1 else 0
        factor = follow[r, 0] / DT
        for m in range(months):
            _record(y, history[m, r], n)
            for j in range(n):
                y[2 * n + j] += added[m, ri, j]  # housing delivered at the month's start
            for i in range(n):
                for j in range(n):
                    inflow[i, j] = staff[m, ri, i, j] * factor
            levers_changed = m == 0
            if not levers_changed:
                for j in range(n):
                    levers_changed |= control[m, ri, j] != control[m - 1, ri, j]
                    for i in range(n):
                        levers_changed |= tt[m, ri, i, j] != tt[m - 1, ri, i, j]
            if levers_changed:  # the levers' part of the utilities, once per change
                for j in range(n):
                    penalty[j] = np.exp(-control[m, ri, j])
                    for i in range(n):
                        if i != j:
                            cross = 1.0 - same[i, j]
                            cost = sc[r, 3] * tt[m, ri, i, j] + control[m, ri, j] * cross
                            friction[0, i, j] = np.exp(-(cost + sc[r, 13] * cross))  # registered: the tie
                            friction[1, i, j] = np.exp(-cost)
            _rate(y, dy, n, r, ri, m, sc, rg, logit_base, same, follow, jobs, services, friction, penalty, removal,
                  build, cap, captime, inflow, births, deaths, years)  # fmt: skip
            if rk4:
                for k in range(size):
                    mid[k] = y[k] + DT / 2 * dy[k]
                _rate(mid, k2, n, r, ri, m, sc, rg, logit_base, same, follow, jobs, services, friction, penalty,
                      removal, build, cap, captime, inflow, births, deaths, years)  # fmt: skip
                for k in range(size):
                    mid[k] = y[k] + DT / 2 * k2[k]
                _rate(mid, k3, n, r, ri, m, sc, rg, logit_base, same, follow, jobs, services, friction, penalty,
                      removal, build, cap, captime, inflow, births, deaths, years)  # fmt: skip
                for k in range(size):
                    mid[k] = y[k] + DT * k3[k]
                _rate(mid, k4, n, r, ri, m, sc, rg, logit_base, same, follow, jobs, services, friction, penalty,
                      removal, build, cap, captime, inflow, births, deaths, years)  # fmt: skip
                for k in range(size):
                    y[k] = y[k] + DT / 6 * (dy[k] + 2 * k2[k] + 2 * k3[k] + k4[k])
            else:
                for k in range(size):
                    y[k] = y[k] + DT * dy[k]
        _record(y, history[months, r], n)


@njit(cache=True)
def _month(y, n, rk4, sc, rg, logit_base, same, follow, jobs, services, control, tt, removal, build, cap, captime,
           staff, births, deaths, years):  # fmt: skip
    """One month of every run's flat state ``y`` (run, size), in place, with this month's inputs (run, ...):
    ``_integrate``'s month for the coupled model (the housing delivered at the month's start is in ``y``)."""
    runs, size = y.shape
    dy, k2, k3, k4, mid = np.empty(size), np.empty(size), np.empty(size), np.empty(size), np.empty(size)
    inflow, friction, penalty = np.empty((n, n)), np.zeros((2, n, n)), np.empty(n)
    for r in range(runs):
        factor = follow[r, 0] / DT
        for j in range(n):
            penalty[j] = np.exp(-control[r, j])
            for i in range(n):
                inflow[i, j] = staff[r, i, j] * factor
                if i != j:
                    cross = 1.0 - same[i, j]
                    cost = sc[r, 3] * tt[r, i, j] + control[r, j] * cross
                    friction[0, i, j] = np.exp(-(cost + sc[r, 13] * cross))
                    friction[1, i, j] = np.exp(-cost)
        state = y[r]
        _derivative(state, dy, n, sc[r], rg[r], logit_base[r], same, follow[r], jobs[r], services[r], friction,
                    penalty, removal[r], build[r], cap[r], captime[r], inflow, births, deaths, years)  # fmt: skip
        if rk4:
            for k in range(size):
                mid[k] = state[k] + DT / 2 * dy[k]
            _derivative(mid, k2, n, sc[r], rg[r], logit_base[r], same, follow[r], jobs[r], services[r], friction,
                        penalty, removal[r], build[r], cap[r], captime[r], inflow, births, deaths, years)  # fmt: skip
            for k in range(size):
                mid[k] = state[k] + DT / 2 * k2[k]
            _derivative(mid, k3, n, sc[r], rg[r], logit_base[r], same, follow[r], jobs[r], services[r], friction,
                        penalty, removal[r], build[r], cap[r], captime[r], inflow, births, deaths, years)  # fmt: skip
            for k in range(size):
                mid[k] = state[k] + DT * k3[k]
            _derivative(mid, k4, n, sc[r], rg[r], logit_base[r], same, follow[r], jobs[r], services[r], friction,
                        penalty, removal[r], build[r], cap[r], captime[r], inflow, births, deaths, years)  # fmt: skip
            for k in range(size):
                state[k] = state[k] + DT / 6 * (dy[k] + 2 * k2[k] + 2 * k3[k] + k4[k])
        else:
            for k in range(size):
                state[k] = state[k] + DT * dy[k]


STATE = ("population", "housing", "housing_in_construction", "local_services", "households_following")
STATE += ("births_cum", "deaths_cum", "in_from_outside_cum", "out_to_outside_cum")


def _constants(model: StockFlow) -> tuple[np.ndarray, ...]:
    """The kernel's per-run parameters of a ``StockFlow`` (scalars, regional rows, logit base, follow) and the
    same-province matrix as floats."""
    p, runs, n = model.params, model.runs, len(model.regions)
    scalars = np.stack([np.broadcast_to(np.asarray(getattr(p, k), float), (runs,)) for k in SCALARS], axis=1)
    regional = np.stack([np.broadcast_to(np.asarray(getattr(p, k), float), (runs, n)) for k in REGIONAL], axis=1)
    gaps = np.broadcast_to(p.move_gap_2014, (runs, 2, n))  # rows: alpha, gap (registered, migrant), the rest
    regional = np.concatenate([regional[:, :1], gaps, regional[:, 1:]], axis=1)
    follow = np.stack(
        [model.follow["household_follow_share"] * model.follow["household_size"], model.follow["follow_time"]], axis=1
    )
    logit_base = np.broadcast_to(model.logit_base_rates, (runs, 2, n))
    return tuple(np.ascontiguousarray(a, dtype=float) for a in (scalars, regional, logit_base, follow, model.same))


def advance(model: StockFlow, time: float, inputs: MonthInputs) -> None:
    """``StockFlow.advance`` (one substep) compiled: the same equations, equal to rounding (about 1e-15).

    For the coupled model asked to run compiled (``Model(compiled=True)``); tests/test_stockflow_kernel.py
    compares whole runs with the numpy path.
    """
    if model.scenario.method not in ("euler", "rk4"):
        raise ValueError(f"unknown integration method {model.scenario.method!r}")
    runs, n = model.runs, len(model.regions)
    if getattr(model, "_kernel_constants", None) is None:
        model._kernel_constants = _constants(model)
    scalars, regional, logit_base, follow, same = model._kernel_constants
    s = model.state
    y = np.concatenate([s[k].reshape(runs, -1) for k in STATE], axis=1)  # every stock is (run, ...)
    year = np.floor(time)
    if year not in model._vital:
        model._vital[year] = model.regions.vital_rates(time)
    births, deaths = model._vital[year]
    model.note_moves(inputs.staff_moved)  # the pairs the numpy derivative follows (observe)

    def batch(a, *shape):
        if a.shape == (runs, *shape) and a.dtype == float and a.flags.c_contiguous:
            return a  # the usual case: no copy, no broadcast view
        return np.ascontiguousarray(np.broadcast_to(a, (runs, *shape)), dtype=float)

    _month(y, n, model.scenario.method == "rk4", scalars, regional, logit_base, same, follow,
           batch(inputs.jobs, n), batch(inputs.services, n), batch(inputs.control, n),
           batch(inputs.travel_time, n, n), batch(inputs.housing_removal, n), batch(inputs.build_rate, n),
           batch(inputs.housing_cap, n), batch(inputs.cap_time, n), batch(inputs.staff_moved, n, n),
           np.asarray(births, float), np.asarray(deaths, float), float(time - model.scenario.start))  # fmt: skip
    start = 0
    for key in STATE:
        shape = s[key].shape[1:]
        size = s[key][0].size
        s[key] = y[:, start : start + size].reshape(runs, *shape)
        start += size


INPUTS = ("jobs", "services", "control", "travel_time", "housing_removal")
INPUTS += ("build_rate", "housing_cap", "cap_time", "staff_moved", "housing_added")
_STACKED: dict[tuple[int, int, float], tuple[AgentEffects, dict[str, np.ndarray]]] = {}


def _stacked(effects: AgentEffects, model: StockFlow, times: np.ndarray) -> dict[str, np.ndarray]:
    """The inputs and vital rates over the months, (month, run or 1, ...), kept for the next batch of a sweep."""
    key = (id(effects), id(model.regions), float(times[0]))
    hit = _STACKED.get(key)
    if hit is not None and hit[0] is effects:
        return hit[1]
    stacked = {}
    for name in (*INPUTS, "observed_services"):
        arrays = (
            [effects.at(m - 1).services for m in range(len(times))]
            if name == "observed_services"
            else [getattr(m, name) for m in effects.months]
        )
        shape = np.broadcast_shapes(*{np.shape(a) for a in arrays})
        stacked[name] = np.ascontiguousarray(np.stack([np.broadcast_to(a, shape) for a in arrays]), dtype=float)
    vital = [model.regions.vital_rates(t) for t in times[:-1]]
    stacked["births"], stacked["deaths"] = np.array([v[0] for v in vital]), np.array([v[1] for v in vital])
    if len(_STACKED) >= 8:
        _STACKED.clear()
    _STACKED[key] = (effects, stacked)
    return stacked


def replay_stocks(
    model: StockFlow, effects: AgentEffects, outputs: Sequence[str] = KERNEL_OUTPUTS
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``sim.stockflow.replay`` for the stock outputs, from a ``StockFlow`` built for the batch."""
    scenario, runs, n = model.scenario, model.runs, len(model.regions)
    unknown = set(outputs) - set(KERNEL_OUTPUTS)
    if unknown:
        raise ValueError(f"the compiled replay gives stocks only, not {sorted(unknown)}")
    if scenario.method not in ("euler", "rk4"):
        raise ValueError(f"unknown integration method {scenario.method!r}")
    scalars, regional, logit_base, follow, same = _constants(model)
    s = model.state
    y0 = np.concatenate(
        [
            s["population"].reshape(runs, -1),
            s["housing"],
            s["housing_in_construction"].reshape(runs, -1),
            s["local_services"],
            s["households_following"].reshape(runs, -1),
            s["births_cum"],
            s["deaths_cum"],
            s["in_from_outside_cum"],
            s["out_to_outside_cum"],
        ],
        axis=1,
    )
    months = len(effects.months)
    times = scenario.start + np.arange(months + 1) * DT
    inputs = _stacked(effects, model, times)
    history = np.empty((months + 1, runs, 8 * n))
    _integrate(
        np.ascontiguousarray(y0),
        n,
        scenario.method == "rk4",
        scalars,
        regional,
        logit_base,
        same,
        follow,
        *(inputs[k] for k in INPUTS),
        inputs["births"],
        inputs["deaths"],
        times[:-1] - scenario.start,
        history,
    )
    services = inputs["observed_services"]
    cum = history[..., 4 * n :].reshape(months + 1, runs, 4, n)
    everything = {
        "population": history[..., :n] + history[..., n : 2 * n],
        "migrant_population": history[..., n : 2 * n],
        "housing_capacity": history[..., 2 * n : 3 * n],
        "service_capacity": history[..., 3 * n : 4 * n] + services,
        "births_cum": cum[:, :, 0],
        "deaths_cum": cum[:, :, 1],
        "in_from_outside_cum": cum[:, :, 2],
        "out_to_outside_cum": cum[:, :, 3],
    }
    return times, {k: np.ascontiguousarray(everything[k]) for k in outputs}


@njit(cache=True)
def start_flows(alpha, unfitted, control, travel, weight, tie, same, movers, outside_in):  # fmt: skip
    """Leavers and arrivals per region at the start for region constants ``alpha`` (run, region) each.

    The flows of ``fit_region_constants``' residual (moves at the observed rates, arrivals
    from the rest of China at their 2014 level), compiled: the fit evaluates them some fifty
    times per batch. Inputs of the start have the run axis first (length 1 or the batch's).
    """
    runs, n = alpha.shape
    leaving, arriving = np.zeros((runs, n)), np.zeros((runs, n))
    attract, utility = np.empty(n), np.empty(n)
    for r in range(runs):
        rc, rt = min(r, control.shape[0] - 1), min(r, travel.shape[0] - 1)
        top = -np.inf
        for j in range(n):
            attract[j] = alpha[r, j] + unfitted[r, j]
            top = max(top, attract[j] - control[rc, j])
        pulls = 0.0
        for j in range(n):
            pulls += np.exp(attract[j] - control[rc, j] - top)
        for j in range(n):
            arriving[r, j] += outside_in[r] * np.exp(attract[j] - control[rc, j] - top) / pulls
        for i in range(n):
            for g in range(2):
                out = -tie[r] if g == 0 else 0.0
                top = out
                for j in range(n):
                    if j != i:
                        cross = 1.0 - same[i, j]
                        u = attract[j] - weight[r] * travel[rt, i, j] - control[rc, j] * cross
                        if g == 0:
                            u -= tie[r] * cross
                        utility[j] = u
                        top = max(top, u)
                total = np.exp(out - top)
                for j in range(n):
                    if j != i:
                        total += np.exp(utility[j] - top)
                inclusive = top + np.log(total)
                share_out = np.exp(out - inclusive)
                leaving[r, i] += movers[r, g, i] * share_out
                for j in range(n):
                    if j != i:
                        share = np.exp(utility[j] - inclusive)
                        leaving[r, i] += movers[r, g, i] * share
                        arriving[r, j] += movers[r, g, i] * share
    return leaving, arriving
