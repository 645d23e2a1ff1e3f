"""The firms' month with its per-slot hazard chains compiled (numba): the same events from the same draws.

``Firms.step`` (sim/firms.py) is the reference: three hazard chains (exit, dispersal,
spontaneous relocation) of about 15 numpy operations over every used slot, each tested
against one uniform draw per slot. ``CompiledFirms.step`` draws the same uniforms from the
same streams in the same order into the same buffer, then one compiled loop per chain bounds
each agent's monthly probability from above without an exponential (``_exp_bound``) and keeps
the agents whose draw falls below the bound: the candidates, one to a few in a hundred. Their
exact probability is then computed with the reference's own numpy operations in the
reference's order, and the draw decides as there. So every event is the reference's, bit for
bit: numba's ``exp`` (libm) and numpy's (SIMD) differ in the last bit for about one value in
twenty, which is why the compiled loop never decides an event itself; the bounds exceed the
true probabilities by far more than the last bits of numpy's exp and expm1 (``SLACK``).

Everything else in the month (destination choices, moves, closures, entry, space) is the
reference's code, called from here; the glue of ``step`` is repeated because the reference
keeps its per-slot work inline. tests/test_firms_kernel.py checks that both paths give equal
events, firm counts and recorded outputs. Needs numba (the ``fast`` extra).
"""

from __future__ import annotations

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

SLACK = 1.0 + 1e-9  # covers the last bits of numpy's exp and expm1 and of the bounds' own rounding, widely


@njit(cache=True, inline="always", error_model="numpy")
def _exp_bound(a):
    """An upper bound of exp(min(a, 50)) for a > 0 and of 1 for a <= 0 (or NaN), with no exponential.

    (e^x)^64 with e^x <= 1 / (1 - x + x^2/2 - x^3/6) for 0 <= x = a / 64 <= 50 / 64 (the cubic is the
    alternating Taylor series of e^-x, a lower bound, positive there): within 0.01 % of exp(a) for
    a < 4, a factor 7 at 50. A hazard's exponent only makes it larger, so a bound of 1 below 0 holds.
    """
    x = a * (1.0 / 64.0)
    x = x if x > 0.0 else 0.0
    x = x if x < 0.78125 else 0.78125
    bound = 1.0 / (1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0))))
    bound *= bound
    bound *= bound
    bound *= bound
    bound *= bound
    bound *= bound
    return bound * bound


# The bounds of the three monthly probabilities, 1 - exp(-h dt) <= |h| dt (for any sign of h):
#   exit        |exit_rate_s| (1 + |young_exit_boost|) exp(min(rent_exit_response c (rho - 1), 50)) dt
#   dispersal   |rate c| dt
#   relocation  |relocation_rate| exp(min(cost_push c (rho - 1), 50)) dt
# (0 <= exp(-age / 3) <= 1). A NaN anywhere makes the reference's probability NaN, which never fires:
# such an agent may be left out. Each kernel works on a block of runs (``uniform`` holds their draws),
# gathers by cell in one loop and computes the bounds in another (that one vectorises), then lists
# the candidates: agents whose draw is below their bound. Returns the number written.


@njit(cache=True, error_model="numpy")
def _exit_candidates(alive, cell, age, sensitivity, uniform, start, width, dt, rent_by_cell, exit_by_cell, response,
                     boost, scratch, run_out, slot_out, draw_out):  # fmt: skip
    """Ages every slot of the block's runs by dt, then lists the exit candidates."""
    found = 0
    argument, rate, bound = scratch[0], scratch[1], scratch[2]
    for k in range(uniform.shape[0]):
        b = start + k
        ages, cells, costs, draws, alive_b = age[b], cell[b], sensitivity[b], uniform[k], alive[b]
        for s in range(width):
            ages[s] += dt
        response_b = response[b]
        for s in range(width):
            argument[s] = response_b * costs[s] * rent_by_cell[cells[s]]
            rate[s] = exit_by_cell[cells[s]]
        factor = (1.0 + abs(boost[b])) * dt * SLACK
        for s in range(width):
            bound[s] = abs(rate[s]) * _exp_bound(argument[s]) * factor
        for s in range(width):
            if alive_b[s] and draws[s] < bound[s]:
                run_out[found], slot_out[found], draw_out[found] = b, s, draws[s]
                found += 1
    return found


@njit(cache=True, error_model="numpy")
def _dispersal_candidates(alive, moved, sector, region, targeted, programme_sector, sensitivity, uniform, start, width,
                          rate, dt, scratch, run_out, slot_out, draw_out):  # fmt: skip
    """Lists the candidates among eligible agents: alive, not moved this month, the programme's sector
    and targeted regions."""
    found = 0
    bound = scratch[0]
    for k in range(uniform.shape[0]):
        b = start + k
        costs, draws = sensitivity[b], uniform[k]
        factor = abs(rate[b]) * dt * SLACK
        for s in range(width):
            bound[s] = abs(costs[s]) * factor
        for s in range(width):
            if draws[s] < bound[s] and alive[b, s] and not moved[b, s]:
                if sector[b, s] == programme_sector and targeted[region[b, s]]:
                    run_out[found], slot_out[found], draw_out[found] = b, s, draws[s]
                    found += 1
    return found


@njit(cache=True, error_model="numpy")
def _relocation_candidates(alive, moved, cell, sensitivity, uniform, start, width, dt, rent_by_cell, cost_push, rate,
                           scratch, run_out, slot_out, draw_out):  # fmt: skip
    """Lists the relocation candidates among agents alive and not moved this month."""
    found = 0
    argument, bound = scratch[0], scratch[2]
    for k in range(uniform.shape[0]):
        b = start + k
        cells, costs, draws = cell[b], sensitivity[b], uniform[k]
        push_b = cost_push[b]
        for s in range(width):
            argument[s] = push_b * costs[s] * rent_by_cell[cells[s]]
        factor = abs(rate[b]) * dt * SLACK
        for s in range(width):
            bound[s] = _exp_bound(argument[s]) * factor
        for s in range(width):
            if draws[s] < bound[s] and alive[b, s] and not moved[b, s]:
                run_out[found], slot_out[found], draw_out[found] = b, s, draws[s]
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

    def _candidate_buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Reused scratch (3, capacity) and outputs of the compiled loops (one entry per slot of a block)."""
        capacity = self._work.shape[2]
        size = self._work.shape[1] * capacity
        held = getattr(self, "_candidates", None)
        if held is None or held[0].shape[1] < capacity or len(held[1]) < size:  # the loops do not check bounds
            self._candidates = (np.empty((3, capacity)), *(np.empty(size, np.int64) for _ in "rs"), np.empty(size))
        return self._candidates

    def _collect(self, found: int, candidates: list[tuple[np.ndarray, ...]]) -> None:
        """Keep a block's candidates (run, slot, draw) out of the reused buffers."""
        candidates.append(tuple(a[:found].copy() for a in self._candidate_buffers()[1:]))

    @staticmethod
    def _decide(candidates: list[tuple[np.ndarray, ...]], probability, *args) -> tuple[np.ndarray, np.ndarray]:
        """(run, slot) of the candidates whose draw is below ``probability(run, slot, *args)``, in order:
        one evaluation for all blocks (numpy's functions act elementwise, so the values are the same)."""
        run, slot, draw = (np.concatenate(parts) for parts in zip(*candidates))
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
        candidates: list[tuple[np.ndarray, ...]] = []
        for rows in self._blocks():
            uniform = self._work[3, : rows.stop - rows.start, :width]
            uniform = self.streams.random_into("exit", self.extent, uniform, rows)
            found = _exit_candidates(self.alive, self.cell, self.age, self.cost_sensitivity, uniform, rows.start, width,
                                     ctx.dt, rent_by_cell, exit_by_cell, p.rent_exit_response, p.young_exit_boost,
                                     *self._candidate_buffers())  # fmt: skip
            self._collect(found, candidates)
        run, slot = self._decide(candidates, self._exit_probability, rent_by_cell, exit_by_cell, ctx.dt)
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
            candidates = []
            for rows in self._blocks():
                uniform = self._work[3, : rows.stop - rows.start, :width]
                uniform = self.streams.random_into(f"dispersal: {name}", sizes, uniform, rows)
                found = _dispersal_candidates(self.alive, moved, self.sector, self.region, targeted, programme.sector,
                                              self.cost_sensitivity, uniform, rows.start, width, rate, ctx.dt,
                                              *self._candidate_buffers())  # fmt: skip
                self._collect(found, candidates)
            run, slot = self._decide(candidates, self._dispersal_probability, rate, ctx.dt)
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
        candidates = []
        for rows in self._blocks():
            uniform = self._work[3, : rows.stop - rows.start, :width]
            uniform = self.streams.random_into("relocation", self.extent, uniform, rows)
            found = _relocation_candidates(self.alive, moved, self.cell, self.cost_sensitivity, uniform, rows.start,
                                           width, ctx.dt, rent_by_cell, p.cost_push, p.relocation_rate,
                                           *self._candidate_buffers())  # fmt: skip
            self._collect(found, candidates)
        run, slot = self._decide(candidates, self._relocation_probability, rent_by_cell, ctx.dt)
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
