"""The firms' month with its per-slot hazard chains compiled (numba): the same events from the same draws.

``Firms.step`` (sim/firms.py) is the reference: three hazard chains (exit, dispersal,
spontaneous relocation) of about 15 numpy operations over every used slot, each tested
against one uniform draw per slot. ``CompiledFirms.step`` draws the same uniforms from the
same streams in the same order into the same buffer, then one compiled loop per chain bounds
each agent's monthly probability from above without an exponential (powers of 2^(1/16) from a
table, at most 4.4 % above exp) and keeps the agents whose draw falls below the bound: the
candidates, one to a few in a hundred. Their exact probability is then computed with the
reference's own numpy operations in the reference's order, and the draw decides as there. So
every event is the reference's, bit for bit: numba's ``exp`` (libm) and numpy's (SIMD) differ in
the last bit for about one value in twenty, which is why the compiled loop never decides an
event itself. The bound holds because every factor's bound is at least numpy's rounded value
and rounding is monotone (``SLACK`` covers the last bits of numpy's exp, expm1 and exp2).

Everything else in the month (destination choices, moves, closures, entry, space) is the
reference's code, called from here; the glue of ``step`` is repeated because the reference
keeps its per-slot work inline. tests/test_firms_kernel.py checks that both paths give equal
events, firm counts and recorded outputs. Needs numba (the ``fast`` extra).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sim.firms import (
    MAX_EXPONENT,
    N_SECTORS,
    SPACE_DELAY_ORDER,
    YOUNG_FIRM_AGE,
    FirmContext,
    Firms,
    rent_index,
    space_starts,
)

LOG2E = 1.4426950408889634
STEPS = 16  # bounds are 2^(k / STEPS) for the next k above x log2(e): at most 2^(1/16) = 1.044 times exp(x)
LOWEST, HIGHEST = 0, 80  # the table's range of powers of 2 (exponents are capped at 50: exp(50) < 2^73)
POW2 = np.exp2(np.arange(LOWEST * STEPS, HIGHEST * STEPS + 1) / STEPS)
SLACK = 1.0 + 1e-9  # covers numpy's exp, expm1 and exp2 (a few units in the last place) with a wide margin


@njit(cache=True)
def _exp_above(x, table):
    """An upper bound of exp(x) and of numpy's rounded exp(x); +inf for NaN or beyond the table.

    1 for x <= 0 and 1 / (1 - x) for small x (e^-x >= 1 - x) cost no look-up: the common cases."""
    if x <= 0.0:
        return SLACK
    if x < 0.25:
        return SLACK / (1.0 - x)
    t = x * (LOG2E * STEPS)
    if not t < (HIGHEST - 1) * STEPS:
        return np.inf
    return table[int(math.ceil(t)) - LOWEST * STEPS] * SLACK


@njit(cache=True)
def _probability_above(hazard_bound, dt):
    """A bound of -expm1(-h dt) from a bound of h >= 0 (-expm1(-x) <= x for all x)."""
    x = hazard_bound * dt
    if x > 0.0:
        return x * SLACK
    if x <= 0.0:
        return 0.0
    return np.inf  # NaN: the exact path decides


@njit(cache=True)
def _exit_candidates(alive, cell, age, sensitivity, uniform, start, width, dt, rent_by_cell, exit_by_cell, response,
                     boost, table, run_out, slot_out, draw_out):  # fmt: skip
    """Age every slot of the block's runs by dt; list alive agents whose exit draw is below their bound.

    The bound of exit_rate (1 + boost exp(-age / 3)) exp(min(response c (rho - 1), 50)) takes each
    factor's bound in the reference's order. Returns the number of candidates written.
    """
    found = 0
    for k in range(uniform.shape[0]):
        b = start + k
        for s in range(width):
            age[b, s] += dt
            if not alive[b, s]:
                continue
            u = uniform[k, s]
            c = cell[b, s]
            rate = exit_by_cell[c]
            if rate >= 0.0:
                push = min(response[b] * sensitivity[b, s] * rent_by_cell[c], MAX_EXPONENT)
                youth = 1.0 + max(boost[b], 0.0) * _exp_above(-age[b, s] / YOUNG_FIRM_AGE, table)
                if boost[b] != boost[b]:
                    youth = np.inf
                bound = _probability_above(rate * youth * _exp_above(push, table), dt)
            else:
                bound = np.inf  # a negative or NaN rate: no bound, the exact path decides
            if u < bound:
                run_out[found], slot_out[found], draw_out[found] = b, s, u
                found += 1
    return found


@njit(cache=True)
def _dispersal_candidates(alive, moved, sector, region, targeted, programme_sector, sensitivity, uniform, start, width,
                          rate, dt, run_out, slot_out, draw_out):  # fmt: skip
    """Eligible agents (alive, not moved this month, the programme's sector and regions) whose draw is
    below the bound of 1 - exp(-rate c dt). Returns the number of candidates written."""
    found = 0
    for k in range(uniform.shape[0]):
        b = start + k
        for s in range(width):
            if not alive[b, s] or moved[b, s] or sector[b, s] != programme_sector or not targeted[region[b, s]]:
                continue
            u = uniform[k, s]
            if u < _probability_above(rate[b] * sensitivity[b, s], dt):
                run_out[found], slot_out[found], draw_out[found] = b, s, u
                found += 1
    return found


@njit(cache=True)
def _relocation_candidates(alive, moved, cell, sensitivity, uniform, start, width, dt, rent_by_cell, cost_push, rate,
                           table, run_out, slot_out, draw_out):  # fmt: skip
    """Agents alive and not moved this month whose draw is below the bound of
    1 - exp(-relocation_rate exp(min(cost_push c (rho - 1), 50)) dt). Returns the number written."""
    found = 0
    for k in range(uniform.shape[0]):
        b = start + k
        for s in range(width):
            if not alive[b, s] or moved[b, s]:
                continue
            u = uniform[k, s]
            if rate[b] >= 0.0:
                push = min(cost_push[b] * sensitivity[b, s] * rent_by_cell[cell[b, s]], MAX_EXPONENT)
                bound = _probability_above(rate[b] * _exp_above(push, table), dt)
            else:
                bound = 0.0 if rate[b] < 0.0 else np.inf  # a negative hazard never fires; NaN: exact path
            if u < bound:
                run_out[found], slot_out[found], draw_out[found] = b, s, u
                found += 1
    return found


def _probability(hazard: np.ndarray, dt: float) -> np.ndarray:
    """1 - exp(-hazard dt) by the reference's operations (``Firms._events``), in place."""
    np.negative(hazard, out=hazard)
    np.multiply(hazard, dt, out=hazard)
    np.expm1(hazard, out=hazard)
    np.negative(hazard, out=hazard)
    return hazard


class CompiledFirms(Firms):
    """``Firms`` whose month runs the per-slot hazard chains compiled; the same results (module docstring)."""

    def _candidate_buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reused outputs of the compiled loops, one entry per slot of a block of runs."""
        size = self._work.shape[1] * self._work.shape[2]
        held = getattr(self, "_candidates", None)
        if held is None or len(held[0]) < size:
            self._candidates = (np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size))
        return self._candidates

    def _decide(self, found: int, probability, *args) -> tuple[np.ndarray, np.ndarray]:
        """(run, slot) of the candidates whose draw is below ``probability(run, slot, *args)``, in order."""
        run, slot, draw = (a[:found].copy() for a in self._candidate_buffers())
        hit = draw < probability(run, slot, *args)
        return run[hit], slot[hit]

    def _exit_probability(self, run, slot, rent_by_cell, exit_by_cell, dt) -> np.ndarray:
        """The reference's exit probability (``Firms.step`` step 1), same operations in the same order."""
        p, cell = self.params, self.cell[run, slot]
        hazard = np.take(rent_by_cell, cell)
        push = np.multiply(p.rent_exit_response[run], self.cost_sensitivity[run, slot])
        np.multiply(push, hazard, out=push)
        np.minimum(push, MAX_EXPONENT, out=push)
        np.exp(push, out=push)
        youth = np.negative(self.age[run, slot])
        np.divide(youth, YOUNG_FIRM_AGE, out=youth)
        np.exp(youth, out=youth)
        np.multiply(p.young_exit_boost[run], youth, out=youth)
        np.add(1, youth, out=youth)
        hazard = np.take(exit_by_cell, cell)
        np.multiply(hazard, youth, out=hazard)
        np.multiply(hazard, push, out=hazard)
        return _probability(hazard, dt)

    def _dispersal_probability(self, run, slot, rate, dt) -> np.ndarray:
        """The reference's dispersal chance (``Firms.step`` step 2)."""
        chance = np.multiply(-rate[run], self.cost_sensitivity[run, slot])
        np.multiply(chance, dt, out=chance)
        np.expm1(chance, out=chance)
        return np.negative(chance, out=chance)

    def _relocation_probability(self, run, slot, rent_by_cell, dt) -> np.ndarray:
        """The reference's relocation probability (``Firms.step`` step 3)."""
        p = self.params
        hazard = np.take(rent_by_cell, self.cell[run, slot])
        push = np.multiply(p.cost_push[run], self.cost_sensitivity[run, slot])
        np.multiply(push, hazard, out=push)
        np.minimum(push, MAX_EXPONENT, out=push)
        np.exp(push, out=push)
        hazard = np.multiply(p.relocation_rate[run], push)
        return _probability(hazard, dt)

    def step(self, ctx: FirmContext) -> None:
        """One month of firm life, as ``Firms.step`` (same order, draws and events)."""
        p, c = self.params, self.counters
        runs, n = self.alive.shape[0], len(self.regions)
        counts, jobs = self.counts(), self.jobs().sum(axis=2)

        # 0. space changed by policy, rents from the start-of-month occupancy
        self.space = np.maximum(self.space + ctx.floor_space_change, 0.0)
        rent = rent_index(jobs, self.space, p.space_occupancy_2014, p.rent_elasticity)
        rent_by_cell = np.repeat(rent - 1.0, N_SECTORS, axis=1).ravel()
        width = int(self.extent.max())

        # 1. ageing and exit
        exit_by_cell = np.ascontiguousarray(np.broadcast_to(p.exit_rate[:, None, :], (runs, n, N_SECTORS))).ravel()
        found_run, found_slot = [], []
        for rows in self._blocks():
            uniform = self._work[3, : rows.stop - rows.start, :width]
            uniform = self.streams.random_into("exit", self.extent, uniform, rows)
            found = _exit_candidates(self.alive, self.cell, self.age, self.cost_sensitivity, uniform, rows.start, width,
                                     ctx.dt, rent_by_cell, exit_by_cell, p.rent_exit_response, p.young_exit_boost,
                                     POW2, *self._candidate_buffers())  # fmt: skip
            run, slot = self._decide(found, self._exit_probability, rent_by_cell, exit_by_cell, ctx.dt)
            found_run.append(run), found_slot.append(slot)
        run, slot = np.concatenate(found_run), np.concatenate(found_slot)
        c.exits += self._by_sector(run, slot)
        self._remove(run, slot)

        # 2. dispersal programmes
        moved = np.zeros_like(self.alive)
        for programme in ctx.dispersals:
            active = programme.rate > 0
            if not active.any():
                continue
            name, rate, width = programme.name, np.asarray(programme.rate, float), int(self.extent.max())
            targeted = np.ascontiguousarray(programme.targeted, dtype=bool)
            sizes = np.where(active, self.extent, 0)
            found_run, found_slot = [], []
            for rows in self._blocks():
                uniform = self._work[3, : rows.stop - rows.start, :width]
                uniform = self.streams.random_into(f"dispersal: {name}", sizes, uniform, rows)
                found = _dispersal_candidates(self.alive, moved, self.sector, self.region, targeted, programme.sector,
                                              self.cost_sensitivity, uniform, rows.start, width, rate, ctx.dt,
                                              *self._candidate_buffers())  # fmt: skip
                run, slot = self._decide(found, self._dispersal_probability, rate, ctx.dt)
                found_run.append(run), found_slot.append(slot)
            run, slot = np.concatenate(found_run), np.concatenate(found_slot)
            c.dispersed += self._by_sector(run, slot)
            closing = self._draws(f"dispersal close: {name}", run) < programme.close_share[run]
            destination = np.full(len(run), -1, np.int8)
            relocating = ~closing
            if relocating.any():
                probs = self.destination_probabilities(ctx, counts, rent, programme.allowed)
                pharma_probs = self.destination_probabilities(ctx, counts, rent, programme.allowed, pharma=True)
                uniform = self._draws(f"dispersal destination: {name}", run[relocating])
                destination[relocating] = self._choose(run[relocating], slot[relocating], probs, pharma_probs, uniform)
            closing |= destination < 0
            closed = self._by_sector(run[closing], slot[closing])
            c.dispersed_closed += closed
            c.exits += closed
            self._remove(run[closing], slot[closing])
            run, slot, destination = run[~closing], slot[~closing], destination[~closing]
            weight = self.weight[run, slot]
            np.add.at(c.relocated, (run, self.sector[run, slot], destination), weight)
            is_pharma = self.pharma[run, slot]
            np.add.at(c.relocated_pharma, (run[is_pharma], destination[is_pharma]), weight[is_pharma])
            moved = self._move(run, slot, destination, moved)

        # 3. spontaneous relocation
        width = int(self.extent.max())
        found_run, found_slot = [], []
        for rows in self._blocks():
            uniform = self._work[3, : rows.stop - rows.start, :width]
            uniform = self.streams.random_into("relocation", self.extent, uniform, rows)
            found = _relocation_candidates(self.alive, moved, self.cell, self.cost_sensitivity, uniform, rows.start,
                                           width, ctx.dt, rent_by_cell, p.cost_push, p.relocation_rate, POW2,
                                           *self._candidate_buffers())  # fmt: skip
            run, slot = self._decide(found, self._relocation_probability, rent_by_cell, ctx.dt)
            found_run.append(run), found_slot.append(slot)
        run, slot = np.concatenate(found_run), np.concatenate(found_slot)
        if len(run):
            probs = self.destination_probabilities(ctx, counts, rent)
            pharma_probs = self.destination_probabilities(ctx, counts, rent, pharma=True)
            self._count_refused_changes(ctx, counts, rent, run, slot)
            destination = self._choose(run, slot, probs, pharma_probs, self._draws("relocation destination", run))
            between = (destination >= 0) & (destination != self.region[run, slot])
            run, slot, destination = run[between], slot[between], destination[between]
            c.spontaneous_moves += self._by_sector(run, slot)
            self._move(run, slot, destination, moved)

        # 4. entry under the catalogue, 5. branches
        self._enter(ctx, counts, rent)

        # 6. construction of floor space
        starts = space_starts(
            jobs,
            self.space,
            self.space_pipeline.sum(axis=2),
            p.space_occupancy_2014,
            p.space_adjustment_time,
            p.space_max_build_rate,
        )
        outflow = self.space_pipeline * (SPACE_DELAY_ORDER / p.space_construction_time)[:, None, None]
        inflow = np.concatenate([starts[..., None], outflow[..., :-1]], axis=2)
        self.space_pipeline = self.space_pipeline + (inflow - outflow) * ctx.dt
        self.space = self.space + outflow[..., -1] * ctx.dt
