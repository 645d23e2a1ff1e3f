"""The firms' month with its per-slot hazard chains compiled (numba): the same events from the same draws.

``Firms.step`` (sim/firms.py) is the reference: it asks ``_exits``, ``_dispersal_hits`` and
``_relocations`` whom the month's per-slot events befall, each a hazard chain of about 15 numpy
operations over every used slot tested against one uniform draw per slot. ``CompiledFirms``
overrides only these three: it draws the same uniforms from the same streams in the same order
into the same buffer (``Firms._uniform``), then one compiled loop per chain bounds each agent's
monthly probability from above without an exponential (``_exp_bound``) and keeps the agents whose
draw falls below the bound: the candidates, one to a few in a hundred (a run-wide limit, tested first,
spares computing most agents' bounds). Their exact probability is
then computed by the reference's own hazard methods (``Firms._exit_hazard`` ...) and
``monthly_probability`` on the gathered candidates, and the draw decides as there. So every
event is the reference's, bit for bit: numba's ``exp`` (libm) and numpy's (SIMD) differ in the
last bit for about one value in twenty, which is why the compiled loop never decides an event
itself; the bounds exceed the true probabilities by far more than the last bits of numpy's exp
and expm1 (``SLACK``).

The rest of the month (``Firms.step``: destination choices, moves, closures, entry, space) is
the reference's, not repeated here. tests/test_firms_kernel.py checks that both paths give equal
events, firm counts and recorded outputs. Needs numba (the ``fast`` extra).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.firms import LIMIT_SLACK, Firms, events_below
from sim.timeline import Dispersal

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
# such an agent may be left out. Each kernel works on a block of runs (``uniform`` holds their draws,
# (block, width); the block starts at run ``start``) and lists the candidates: agents whose draw is below
# their bound. Most draws are far above every agent's bound, so a run's ``limit`` (a bound of the bounds of
# the agents whose cost sensitivity is at most the run's ``split``, ``Firms._cost_split``, from its largest
# rate and rent: costs are lognormal, so >= 0, and the bounds grow with the cost and the exponent) is tested
# first, with the cost; an agent's own bound is computed only for draws under the limit and for costs above
# the split, by the same operations as before, so the candidates are the same.
# Returns the number written.


@njit(cache=True, inline="always", error_model="numpy")
def _limit(split, bound):
    """``bound`` (a bound of a run's bounds up to the split) with slack; 2.0 (every draw passes) when the
    split is not finite (a NaN cost)."""
    return bound * LIMIT_SLACK if abs(split) < np.inf else 2.0


@njit(cache=True, error_model="numpy")
def _exit_candidates(uniform, start, alive, cell, sensitivity, dt, rent_by_cell, exit_by_cell, response, boost,
                     split, run_out, slot_out, draw_out):  # fmt: skip
    """Lists the exit candidates among alive agents."""
    found = 0
    width = uniform.shape[1]
    cells_per_run = len(exit_by_cell) // alive.shape[0]
    for k in range(uniform.shape[0]):
        b = start + k
        cells, costs, draws, alive_b = cell[b], sensitivity[b], uniform[k], alive[b]
        response_b = response[b]
        factor = (1.0 + abs(boost[b])) * dt * SLACK
        top_rate, top_argument = 0.0, 0.0
        for c in range(b * cells_per_run, (b + 1) * cells_per_run):
            top_rate = max(top_rate, abs(exit_by_cell[c]))
            top_argument = max(top_argument, response_b * split[b] * rent_by_cell[c])
        limit, split_b = _limit(split[b], top_rate * _exp_bound(top_argument) * factor), split[b]
        for s in range(width):
            if (draws[s] < limit or costs[s] > split_b) and alive_b[s]:
                argument = response_b * costs[s] * rent_by_cell[cells[s]]
                if draws[s] < abs(exit_by_cell[cells[s]]) * _exp_bound(argument) * factor:
                    run_out[found], slot_out[found], draw_out[found] = b, s, draws[s]
                    found += 1
    return found


@njit(cache=True, error_model="numpy")
def _dispersal_candidates(uniform, start, alive, moved, sector, region, targeted, programme_sector, sensitivity, rate,
                          dt, split, run_out, slot_out, draw_out):  # fmt: skip
    """Lists the candidates among eligible agents: alive, not moved this month, the programme's sector
    and targeted regions."""
    found = 0
    width = uniform.shape[1]
    for k in range(uniform.shape[0]):
        b = start + k
        costs, draws = sensitivity[b], uniform[k]
        factor = abs(rate[b]) * dt * SLACK
        limit, split_b = _limit(split[b], split[b] * factor), split[b]
        for s in range(width):
            if (
                (draws[s] < limit or costs[s] > split_b)
                and draws[s] < abs(costs[s]) * factor
                and alive[b, s]
                and not moved[b, s]
            ):
                if sector[b, s] == programme_sector and targeted[region[b, s]]:
                    run_out[found], slot_out[found], draw_out[found] = b, s, draws[s]
                    found += 1
    return found


@njit(cache=True, error_model="numpy")
def _relocation_candidates(uniform, start, alive, moved, cell, sensitivity, dt, rent_by_cell, cost_push, rate,
                           split, run_out, slot_out, draw_out):  # fmt: skip
    """Lists the relocation candidates among agents alive and not moved this month."""
    found = 0
    width = uniform.shape[1]
    cells_per_run = len(rent_by_cell) // alive.shape[0]
    for k in range(uniform.shape[0]):
        b = start + k
        cells, costs, draws = cell[b], sensitivity[b], uniform[k]
        push_b = cost_push[b]
        factor = abs(rate[b]) * dt * SLACK
        top_argument = 0.0
        for c in range(b * cells_per_run, (b + 1) * cells_per_run):
            top_argument = max(top_argument, push_b * split[b] * rent_by_cell[c])
        limit, split_b = _limit(split[b], _exp_bound(top_argument) * factor), split[b]
        for s in range(width):
            if (draws[s] < limit or costs[s] > split_b) and alive[b, s] and not moved[b, s]:
                if draws[s] < _exp_bound(push_b * costs[s] * rent_by_cell[cells[s]]) * factor:
                    run_out[found], slot_out[found], draw_out[found] = b, s, draws[s]
                    found += 1
    return found


class CompiledFirms(Firms):
    """``Firms`` whose three per-slot selections run compiled; the same results (module docstring)."""

    def _candidates(self, stream: str, sizes: np.ndarray, kernel, *args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(run, slot, draw) of the candidates ``kernel(uniform, start, *args, split, *buffers)`` lists, block
        of runs by block, from the reference's draws (``Firms._uniform``); ``split``: ``Firms._cost_split``."""
        size = self._work.size
        buffers = getattr(self, "_candidate_buffers", None)  # run, slot, draw
        if buffers is None or len(buffers[0]) < size:  # the loops do not check
            self._candidate_buffers = buffers = (*np.empty((2, size), np.int64), np.empty(size))
        width, parts = self._width(), []
        split = self._cost_split()
        for rows in self._blocks():
            found = kernel(self._uniform(stream, rows, width, sizes), rows.start, *args, split, *buffers)
            parts.append(tuple(a[:found].copy() for a in buffers))
        return tuple(np.concatenate(column) for column in zip(*parts))

    def _exits(self, rent_by_cell: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        p, exit_by_cell = self.params, self._exit_rate_by_cell()
        run, slot, draw = self._candidates("exit", self.extent, _exit_candidates, self.alive, self.cell,
                                           self.cost_sensitivity, dt, rent_by_cell, exit_by_cell,
                                           p.rent_exit_response, p.young_exit_boost)  # fmt: skip
        hazard = self._exit_hazard(run, self._at(run, slot), rent_by_cell, exit_by_cell, *np.empty((3, len(run))))
        return events_below(run, slot, draw, hazard, dt)

    def _dispersal_hits(self, programme: Dispersal, moved: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        sizes, rate = np.where(programme.rate > 0, self.extent, 0), np.asarray(programme.rate, float)
        targeted = np.ascontiguousarray(programme.targeted, dtype=bool)
        run, slot, draw = self._candidates(f"dispersal: {programme.name}", sizes, _dispersal_candidates, self.alive,
                                           moved, self.sector, self.region, targeted, programme.sector,
                                           self.cost_sensitivity, rate, dt)  # fmt: skip
        hazard = self._dispersal_hazard(programme, run, self._at(run, slot), np.empty(len(run)))
        return events_below(run, slot, draw, hazard, dt)

    def _relocations(self, rent_by_cell: np.ndarray, moved: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        run, slot, draw = self._candidates("relocation", self.extent, _relocation_candidates, self.alive, moved,
                                           self.cell, self.cost_sensitivity, dt, rent_by_cell, p.cost_push,
                                           p.relocation_rate)  # fmt: skip
        hazard = self._relocation_hazard(run, self._at(run, slot), rent_by_cell, *np.empty((2, len(run))))
        return events_below(run, slot, draw, hazard, dt)
