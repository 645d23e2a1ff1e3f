"""Firms as agents: a struct of arrays with the run axis first, (run, slot).

One slot is one agent; an agent stands for ``weight`` real firms (1 for Beijing's
manufacturing firms and wholesale markets, which the report counts in thousands;
super-individuals elsewhere, see ``sim/data/firms_2014.csv``). Dead slots are
reused by entrants. Every count this module reports is in real firms.

One month, in order (``step``):
1. ageing, then exit with hazard exit_rate_s * (1 + young_exit_boost * exp(-age / 3));
2. dispersal programmes: targeted Beijing units leave with hazard rate * cost_sensitivity;
   a share closes, the rest relocate to a destination chosen by logit;
3. spontaneous relocation: hazard relocation_rate * exp(cost_push * cost_sensitivity * (rent - 1));
4. entry: would-be entrants arrive as entry_rate_s * firms_rs; Beijing's catalogue covers a
   share of them, of whom ``apply_despite_ban`` apply and are refused (counted, F1) and some
   register outside Beijing instead; the admitted become agents;
5. branches: Beijing high-end firms open branches in Tianjin and Hebei (N2).

Destination utility for a unit of sector s moving from o to d (a move is a change of
registration, so Beijing's catalogue turns away the covered share of movers into Beijing):
    U_d = - rent_weight * rent_level_d * rent_d - distance_weight * travel_time_od
          - access_weight * travel_time_d,core + agglomeration_weight * ln(1 + firms_ds)
          + incentive_ds + ln(1 - coverage_ds)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from sim.random import Streams
from sim.regions import Regions
from sim.sectors import FIRM_SECTORS

N_SECTORS = len(FIRM_SECTORS)
MANUFACTURING, WHOLESALE, HIGH_END, OTHER = range(N_SECTORS)
YOUNG_FIRM_AGE = 3.0  # years: e-folding age of the young-firm exit boost (assumed)


@dataclass(frozen=True)
class FirmParams:
    """Firm parameters with the run axis first: (run,) or (run, sector)."""

    entry_rate: np.ndarray
    exit_rate: np.ndarray
    young_exit_boost: np.ndarray
    high_end_entry_growth: np.ndarray
    high_end_growth_years: np.ndarray
    apply_despite_ban: np.ndarray
    refused_register_elsewhere: np.ndarray
    relocation_rate: np.ndarray
    cost_push: np.ndarray
    rent_weight: np.ndarray
    distance_weight: np.ndarray
    access_weight: np.ndarray
    agglomeration_weight: np.ndarray
    branch_rate: np.ndarray
    pharma_share: np.ndarray
    cost_sensitivity_spread: np.ndarray


@dataclass(frozen=True)
class FirmTable:
    """The 2014 firm stock per (region, sector), from ``sim/data/firms_2014.csv``."""

    firms: np.ndarray  # real firms (region, sector)
    employees_per_firm: np.ndarray  # jobs/firm (region, sector)
    agent_weight: np.ndarray  # real firms per agent (region, sector)


def load_firm_table(regions: Regions) -> FirmTable:
    shape = (len(regions), N_SECTORS)
    firms, employees, weight = np.zeros(shape), np.zeros(shape), np.ones(shape)
    with (resources.files("sim") / "data" / "firms_2014.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["region"] not in regions.codes:
                continue  # a region merged away by the scenario
            at = regions.index(row["region"]), FIRM_SECTORS.index(row["sector"])
            firms[at], employees[at], weight[at] = (
                float(row[k]) for k in ("firms", "employees_per_firm", "agent_weight")
            )
    return FirmTable(firms, employees, weight)


@dataclass(frozen=True)
class FirmContext:
    """What the rest of the model tells the firms this month (policy levers are scenario-wide)."""

    time: float  # decimal year
    dt: float  # years
    rent: np.ndarray  # rent relative to the region's own 2014 level (run, region)
    travel_time: np.ndarray  # hours (region, region)
    coverage: np.ndarray  # catalogue share refused (region, sector)
    incentive: np.ndarray  # utility (region, sector)
    pharma_incentive: np.ndarray  # utility (region,)
    dispersals: tuple  # active programmes: (name, sector, rate, region mask, close share, destination mask)


@dataclass
class FirmCounters:
    """Cumulative outcomes since the start, in real firms."""

    runs: int
    regions: int
    refused: np.ndarray = field(init=False)  # (run,)
    dispersed: np.ndarray = field(init=False)  # (run, sector)
    dispersed_closed: np.ndarray = field(init=False)  # (run, sector)
    relocated: np.ndarray = field(init=False)  # dispersed and relocated, by destination (run, sector, region)
    relocated_pharma: np.ndarray = field(init=False)  # (run, region)
    spontaneous_moves: np.ndarray = field(init=False)  # (run, sector)
    entries: np.ndarray = field(init=False)  # (run, sector)
    exits: np.ndarray = field(init=False)  # (run, sector), dispersal closures included
    branches: np.ndarray = field(init=False)  # (run, region)
    diverted: np.ndarray = field(init=False)  # refused entrants registered elsewhere (run, region)
    beijing_entrants: np.ndarray = field(init=False)  # last 12 months of Beijing's admitted entrants (run, 12, sector)

    def __post_init__(self) -> None:
        b, r, s = self.runs, self.regions, N_SECTORS
        self.refused = np.zeros(b)
        self.dispersed, self.dispersed_closed = np.zeros((b, s)), np.zeros((b, s))
        self.relocated, self.relocated_pharma = np.zeros((b, s, r)), np.zeros((b, r))
        self.spontaneous_moves, self.entries, self.exits = np.zeros((b, s)), np.zeros((b, s)), np.zeros((b, s))
        self.branches, self.diverted = np.zeros((b, r)), np.zeros((b, r))
        self.beijing_entrants = np.zeros((b, 12, s))

    def high_end_share(self) -> np.ndarray:
        """Share of high-end firms among Beijing's admitted entrants over the last 12 months (run,)."""
        total = self.beijing_entrants.sum(axis=(1, 2))
        return np.divide(
            self.beijing_entrants[..., HIGH_END].sum(axis=1), total, out=np.full_like(total, np.nan), where=total > 0
        )


def _rank_within_run(run: np.ndarray, per_run: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run for items sorted by run (``per_run`` = items of each run)."""
    return np.arange(len(run)) - np.repeat(np.cumsum(per_run) - per_run, per_run)


class Firms:
    """The firm population of a batch of runs, as columns of shape (run, slot)."""

    def __init__(self, regions: Regions, table: FirmTable, params: FirmParams, streams: Streams) -> None:
        self.regions, self.table, self.params, self.streams = regions, table, params, streams
        self.core = regions.index("bj_core") if "bj_core" in regions.codes else 0
        runs = len(streams.seeds)
        agents = np.round(table.firms / table.agent_weight).astype(int)  # (region, sector)
        region, sector = np.nonzero(agents)
        counts = agents[region, sector]
        region, sector = np.repeat(region, counts), np.repeat(sector, counts)
        n = len(region)
        self.alive = np.zeros((runs, n), bool)
        self.region = np.zeros((runs, n), np.int8)
        self.sector = np.zeros((runs, n), np.int8)
        self.weight = np.zeros((runs, n))
        self.employees = np.zeros((runs, n))
        self.age = np.zeros((runs, n))
        self.cost_sensitivity = np.ones((runs, n))
        self.pharma = np.zeros((runs, n), bool)
        self.extent = np.zeros(runs, int)  # per run: slots ever used (random draws cover only these)
        self._tallies: tuple[np.ndarray, np.ndarray] | None = None
        self.counters = FirmCounters(runs, len(regions))
        run = np.repeat(np.arange(runs), n)
        ages = streams.random("firm ages", n) * 20.0  # assumed: initial ages uniform over 0-20 years
        self._add(run, np.tile(region, runs), np.tile(sector, runs), ages.ravel(), "initial firms")

    # -- bookkeeping -------------------------------------------------------------------------
    def _grow(self, needed: int) -> None:
        capacity = self.alive.shape[1]
        extra = max(needed - capacity, capacity // 2)
        for name in ("alive", "region", "sector", "weight", "employees", "age", "cost_sensitivity", "pharma"):
            column = getattr(self, name)
            setattr(self, name, np.concatenate([column, np.zeros((column.shape[0], extra), column.dtype)], axis=1))

    def _add(self, run: np.ndarray, region: np.ndarray, sector: np.ndarray, age: np.ndarray, stream: str) -> None:
        """Put new agents (given run by run, in order) into free slots, drawing their traits."""
        runs = self.alive.shape[0]
        per_run = np.bincount(run, minlength=runs)
        free = ~self.alive
        if (per_run > free.sum(axis=1)).any():
            self._grow(int((per_run + self.alive.sum(axis=1)).max()))
            free = ~self.alive
        order = np.argsort(run, kind="stable")
        run, region, sector, age = run[order], region[order], sector[order], age[order]
        within = _rank_within_run(run, per_run)
        _, free_slot = np.nonzero(free)  # run-major order: each run's free slots, lowest first
        first_free = np.cumsum(free.sum(axis=1)) - free.sum(axis=1)
        slot = free_slot[first_free[run] + within]
        self._tallies = None
        p = self.params
        sensitivity = self.streams.lognormal_unit_mean(
            f"{stream}: cost sensitivity", p.cost_sensitivity_spread, per_run
        )
        pharma_draw = self.streams.random(f"{stream}: pharma", per_run)
        np.maximum.at(self.extent, run, slot + 1)
        self.alive[run, slot] = True
        self.region[run, slot], self.sector[run, slot] = region, sector
        self.weight[run, slot] = self.table.agent_weight[region, sector]
        self.employees[run, slot] = self.table.employees_per_firm[region, sector]
        self.age[run, slot] = age
        self.cost_sensitivity[run, slot] = sensitivity[run, within]
        self.pharma[run, slot] = (sector == MANUFACTURING) & (pharma_draw[run, within] < p.pharma_share[run])

    def _tally(self) -> tuple[np.ndarray, np.ndarray]:
        """Real firms and jobs of live agents by (run, region, sector); cached until agents change."""
        if self._tallies is None:
            runs, n_regions = self.alive.shape[0], len(self.regions)
            cell = ((np.arange(runs)[:, None] * n_regions + self.region) * N_SECTORS + self.sector)[self.alive]
            weight = self.weight[self.alive]
            size, shape = runs * n_regions * N_SECTORS, (runs, n_regions, N_SECTORS)
            firms = np.bincount(cell, weights=weight, minlength=size).reshape(shape)
            jobs = np.bincount(cell, weights=weight * self.employees[self.alive], minlength=size).reshape(shape)
            self._tallies = firms, jobs
        return self._tallies

    def counts(self) -> np.ndarray:
        """Real firms by (run, region, sector)."""
        return self._tally()[0]

    def jobs(self) -> np.ndarray:
        """Jobs by (run, region, sector)."""
        return self._tally()[1]

    # -- behaviour ---------------------------------------------------------------------------
    def destination_probabilities(
        self, ctx: FirmContext, counts: np.ndarray, allowed: np.ndarray | None = None, pharma: bool = False
    ) -> np.ndarray:
        """Logit destination shares (run, sector, origin, destination); staying is excluded."""
        p, tt = self.params, ctx.travel_time
        incentive = ctx.incentive + (ctx.pharma_incentive[:, None] if pharma else 0.0)  # (region, sector)
        cost_of_space = self.regions.rent_level_2014 * ctx.rent
        with np.errstate(divide="ignore"):  # a fully covered industry cannot register there: log(0) = -inf
            admitted = np.log1p(-ctx.coverage).T[None]  # (1, sector, destination)
        by_destination = -p.rent_weight[:, None] * cost_of_space - p.access_weight[:, None] * tt[:, self.core]
        by_sector = p.agglomeration_weight[:, None, None] * np.log1p(counts).transpose(0, 2, 1) + incentive.T + admitted
        by_origin = -p.distance_weight[:, None, None] * tt
        utility = by_destination[:, None, None, :] + by_sector[:, :, None, :] + by_origin[:, None, :, :]
        n = tt.shape[0]
        blocked = np.eye(n, dtype=bool) if allowed is None else np.eye(n, dtype=bool) | ~allowed[None, :]
        utility = np.where(blocked, -np.inf, utility)
        top = utility.max(axis=-1, keepdims=True)
        weights = np.exp(utility - np.where(np.isfinite(top), top, 0.0))
        total = weights.sum(axis=-1, keepdims=True)
        return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)  # no destination: all zero

    def _choose(
        self, run: np.ndarray, slot: np.ndarray, probs: np.ndarray, pharma_probs: np.ndarray | None, uniform: np.ndarray
    ) -> np.ndarray:
        """Draw a destination per mover; -1 where none is open to it.

        A super-individual cannot move into a region whose own agents are finer than it
        (a weight-200 Hebei agent does not become 200 Beijing firms at once); such a
        destination is closed to it, and firms reach finely resolved regions by entry.
        """
        sector = self.sector[run, slot]
        rows = probs[run, sector, self.region[run, slot]]
        if pharma_probs is not None:
            is_pharma = self.pharma[run, slot]
            rows[is_pharma] = pharma_probs[run[is_pharma], MANUFACTURING, self.region[run[is_pharma], slot[is_pharma]]]
        rows = rows * (self.table.agent_weight[:, sector].T >= self.weight[run, slot][:, None])
        total = rows.sum(axis=1)
        cumulative = np.cumsum(rows, axis=1)
        chosen = (cumulative < (uniform * total)[:, None]).sum(axis=1)
        return np.where(total > 0, np.minimum(chosen, rows.shape[1] - 1), -1).astype(np.int8)

    def step(self, ctx: FirmContext) -> None:
        """One month of firm life, in the order of the module docstring."""
        p, c = self.params, self.counters
        runs = np.arange(self.alive.shape[0])[:, None]
        counts = self.counts()  # the stock at the start of the month drives this month's choices
        self._tallies = None

        # 1. ageing and exit
        self.age += ctx.dt  # dead slots age too; entry resets them
        hazard = p.exit_rate[runs, self.sector] * (1 + p.young_exit_boost[:, None] * np.exp(-self.age / YOUNG_FIRM_AGE))
        exiting = self.alive & (self._uniform("exit") < -np.expm1(-hazard * ctx.dt))
        self._count_by_sector(c.exits, exiting)
        self.alive &= ~exiting

        # 2. dispersal programmes
        moved = np.zeros_like(self.alive)
        for name, sector, rate, targeted, close_share, allowed in ctx.dispersals:
            eligible = self.alive & ~moved & (self.sector == sector) & targeted[self.region]
            run, slot = np.nonzero(
                eligible & (self._uniform(f"dispersal: {name}") < -np.expm1(-rate * self.cost_sensitivity * ctx.dt))
            )
            np.add.at(c.dispersed, (run, self.sector[run, slot]), self.weight[run, slot])
            closing = self._draws(f"dispersal close: {name}", run) < close_share
            destination = np.full(len(run), -1, np.int8)
            relocating = ~closing
            if relocating.any():
                probs = self.destination_probabilities(ctx, counts, allowed)
                pharma_probs = self.destination_probabilities(ctx, counts, allowed, pharma=True)
                uniform = self._draws(f"dispersal destination: {name}", run[relocating])
                destination[relocating] = self._choose(run[relocating], slot[relocating], probs, pharma_probs, uniform)
            closing |= destination < 0  # nowhere open to it: the unit closes instead
            for total in (c.dispersed_closed, c.exits):
                np.add.at(
                    total,
                    (run[closing], self.sector[run[closing], slot[closing]]),
                    self.weight[run[closing], slot[closing]],
                )
            self.alive[run[closing], slot[closing]] = False
            run, slot, destination = run[~closing], slot[~closing], destination[~closing]
            weight = self.weight[run, slot]
            np.add.at(c.relocated, (run, self.sector[run, slot], destination), weight)
            is_pharma = self.pharma[run, slot]
            np.add.at(c.relocated_pharma, (run[is_pharma], destination[is_pharma]), weight[is_pharma])
            self._move(run, slot, destination)
            moved[run, slot] = True

        # 3. spontaneous relocation
        rent = np.take_along_axis(ctx.rent, self.region.astype(np.intp), axis=1)
        hazard = p.relocation_rate[:, None] * np.exp(p.cost_push[:, None] * self.cost_sensitivity * (rent - 1))
        run, slot = np.nonzero(self.alive & ~moved & (self._uniform("relocation") < -np.expm1(-hazard * ctx.dt)))
        if len(run):
            probs = self.destination_probabilities(ctx, counts)
            pharma_probs = self.destination_probabilities(ctx, counts, pharma=True)
            destination = self._choose(run, slot, probs, pharma_probs, self._draws("relocation destination", run))
            run, slot, destination = run[destination >= 0], slot[destination >= 0], destination[destination >= 0]
            np.add.at(c.spontaneous_moves, (run, self.sector[run, slot]), self.weight[run, slot])
            self._move(run, slot, destination)

        # 4. entry under the catalogue, 5. branches
        self._enter(ctx, counts)

    def _uniform(self, stream: str) -> np.ndarray:
        """One uniform draw per used slot of each run: (run, slot)."""
        return self.streams.random(stream, self.extent, self.alive.shape[1])

    def _draws(self, stream: str, run: np.ndarray) -> np.ndarray:
        """One uniform draw per selected agent, ``run`` in ascending order (as np.nonzero gives it)."""
        per_run = np.bincount(run, minlength=self.alive.shape[0])
        return self.streams.random(stream, per_run)[run, _rank_within_run(run, per_run)]

    def _count_by_sector(self, total: np.ndarray, mask: np.ndarray) -> None:
        run, slot = np.nonzero(mask)
        np.add.at(total, (run, self.sector[run, slot]), self.weight[run, slot])

    def _move(self, run: np.ndarray, slot: np.ndarray, destination: np.ndarray) -> None:
        """Relocate agents; a super-individual keeps its weight (it is the same firms, moved)."""
        self.region[run, slot] = destination

    def would_be_entrants(self, ctx: FirmContext, counts: np.ndarray) -> np.ndarray:
        """Would-be entrants this month by (run, region, sector) [firms]."""
        growth = np.ones((len(self.streams.seeds), N_SECTORS))
        years = np.minimum(ctx.time - 2014.0, self.params.high_end_growth_years)
        growth[:, HIGH_END] = np.exp(self.params.high_end_entry_growth * years)
        return self.params.entry_rate[:, None, :] * growth[:, None, :] * counts * ctx.dt

    def seed_entrant_history(self, ctx: FirmContext) -> None:
        """Fill the 12-month entrant window with 2013 conditions (no catalogue), so F5 has a 2013 value."""
        wanted = self.would_be_entrants(ctx, self.counts())
        beijing = self.regions.beijing
        self.counters.beijing_entrants[:] = wanted[:, beijing].sum(axis=1)[:, None, :]

    def _enter(self, ctx: FirmContext, counts: np.ndarray) -> None:
        p, c, s, regions = self.params, self.counters, self.streams, self.regions
        wanted = self.would_be_entrants(ctx, counts)
        covered = wanted * ctx.coverage
        c.refused += s.poisson("refused", covered * p.apply_despite_ban[:, None, None]).sum(axis=(1, 2))
        weight = self.table.agent_weight
        admitted = s.poisson("entry", (wanted - covered) / weight)  # agents (run, region, sector)
        outside = ~regions.beijing
        # refused would-be entrants who register outside Beijing, by logit from their origin
        probs = self.destination_probabilities(ctx, counts, outside)  # (run, sector, origin, dest)
        diverting = covered * (p.apply_despite_ban * p.refused_register_elsewhere)[:, None, None]
        diverted = s.poisson("diverted", np.einsum("bos,bsod->bds", diverting, probs) / weight)
        # branches of Beijing high-end firms in Tianjin and Hebei, sent as from the central city
        origin = regions.index("bj_central") if "bj_central" in regions.codes else 0
        branching = p.branch_rate * counts[:, regions.beijing, HIGH_END].sum(axis=1) * ctx.dt
        branches = np.zeros_like(admitted)
        branches[..., HIGH_END] = s.poisson(
            "branches", branching[:, None] * probs[:, HIGH_END, origin] / weight[:, HIGH_END]
        )

        c.beijing_entrants = np.roll(c.beijing_entrants, -1, axis=1)
        c.beijing_entrants[:, -1] = (admitted * weight)[:, regions.beijing].sum(axis=1)
        c.entries += ((admitted + diverted + branches) * weight).sum(axis=1)
        c.diverted += (diverted * weight).sum(axis=2)
        c.branches += (branches * weight).sum(axis=2)
        new = (admitted + diverted + branches).astype(int)
        run, region, sector = np.nonzero(new)
        times = new[run, region, sector]
        run, region, sector = np.repeat(run, times), np.repeat(region, times), np.repeat(sector, times)
        self._add(run, region, sector, np.zeros(len(run)), "entrants")
