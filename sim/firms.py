"""Firms as agents (a struct of arrays with the run axis first, (run, slot)) and commercial space.

One slot is one agent; an agent stands for ``weight`` real firms (1 for Beijing's
manufacturing firms and wholesale markets, which the report counts in thousands;
super-individuals elsewhere, see ``sim/data/firms_2014.csv``). Dead slots are
reused by entrants. Every count this module reports is in real firms.

The module also owns each region's commercial floor space V_r [workplaces: the space one
job occupies] and its rent. Occupancy u_r = jobs_r / V_r; the rent index relative to the
region's own 2014 level is rho_r = (u_r / u0)^rent_elasticity (capped at RENT_INDEX_MAX),
and the cost of space in the destination logit is rent_level_2014_r * rho_r.

One month, in order (``step``):
0. space: dated policies add or remove floor space (``floor_space_change``); rents from
   the start-of-month occupancy;
1. ageing, then exit with hazard
   exit_rate_s * (1 + young_exit_boost * exp(-age / 3)) * exp(rent_exit_response * c_i * (rho_r - 1));
2. dispersal programmes: targeted Beijing units leave with hazard rate * c_i;
   a share closes, the rest relocate to a destination chosen by logit;
3. spontaneous relocation: hazard relocation_rate * exp(cost_push * c_i * (rho_r - 1));
   movers turned away by Beijing's catalogue are counted as refused changes (F1);
4. entry bounded by demand: would-be entrants
   W_rs = entry_rate_s * g_s(t) * N0_rs * D_rs / D0_rs * min(exp(-rent_entry_response * (rho_r - 1)), 2) * dt
   with demand D_rs = P_r^(1 - reach_s) * A_r^reach_s (local residents and market access
   A_r = sum_d P_d exp(-market_decay * tau_rd)); Beijing's catalogue covers a share of them,
   of whom ``apply_despite_ban`` apply and are refused (F1) and some register outside Beijing;
5. branches of Zhongguancun firms (N2) in Tianjin and Hebei;
6. construction: space starts toward occupancy u0, at most space_max_build_rate_r * V_r a
   year, delivered by a third-order delay.

Destination utility for a unit of sector s moving from o to d (a move is a change of
registration, so Beijing's catalogue turns away the covered share of movers into Beijing):
    U_d = - rent_weight * rent_level_d * rho_d - distance_weight * travel_time_od
          - access_weight * travel_time_d,core + agglomeration_weight * ln(1 + firms_ds)
          + incentive_ds + ln(1 - coverage_ds)
A mover into a region resolved more finely than itself splits into agents of the
destination's weight (real firms are conserved), so every firm can choose every region.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.random import Streams
from sim.regions import Regions
from sim.sectors import FIRM_SECTORS
from sim.timeline import Dispersal

N_SECTORS = len(FIRM_SECTORS)
MANUFACTURING, WHOLESALE, HIGH_END, OTHER = range(N_SECTORS)
# sectors whose transfers count as K2 projects (assumed): industrial transfer proper, resolved one to one
# in Beijing; high-end moves are 100-firm super-individuals, each of which would add a lump of projects
INDUSTRIAL = (MANUFACTURING, WHOLESALE)
IS_INDUSTRIAL = np.isin(np.arange(N_SECTORS), INDUSTRIAL)  # by sector index (a lookup is cheaper than isin)
YOUNG_FIRM_AGE = 3.0  # years: e-folding age of the young-firm exit boost (assumed)
RENT_INDEX_MAX = 10.0  # rent index cap: ten times the 2014 rent (assumed; keeps hazards finite)
MAX_EXPONENT = 50.0  # cap on hazard exponents (exp(50) makes any monthly probability 1)
COST_SPLIT = 3.0  # cost sensitivity above which agents are always checked (a few in a thousand; speed only)
LIMIT_SLACK = 1.0 + 1e-9  # a limit of monthly probabilities covers the last bits of exp, expm1 and bounds, widely
ENTRY_BOOST_MAX = 2.0  # cheap space at most doubles would-be entrants (assumed; demand bounds entry, not rent)
GROWTH = 8  # columns grow by at least 1/GROWTH of their capacity when full (capacity stays close to use)
MAX_AGENTS_PER_RUN = 1_000_000  # firm agents a run may hold (about 40 MB of columns); 20x the 2014 stock
SPACE_DELAY_ORDER = 3
FIT_ITERATIONS, FIT_TOLERANCE = 500, 1e-9  # destination-constant balancing (log inflow / stock)


@dataclass(frozen=True)
class FirmParams:
    """Firm parameters with the run axis first: (run,), (run, sector) or (run, region)."""

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
    market_reach: np.ndarray
    market_decay: np.ndarray
    rent_elasticity: np.ndarray
    rent_entry_response: np.ndarray
    rent_exit_response: np.ndarray
    space_occupancy_2014: np.ndarray
    space_adjustment_time: np.ndarray
    space_construction_time: np.ndarray
    space_max_build_rate: np.ndarray
    zhongguancun_share: np.ndarray
    firms_per_project: np.ndarray


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
    """What the rest of the model tells the firms this month (all arrays run-first)."""

    time: float  # decimal year
    dt: float  # years
    travel_time: np.ndarray  # hours (run, region, region)
    coverage: np.ndarray  # catalogue share refused (run, region, sector)
    incentive: np.ndarray  # utility (run, region, sector)
    pharma_incentive: np.ndarray  # utility (run, region)
    dispersals: tuple[Dispersal, ...]  # programmes, rate 0 in runs where one is not active
    population: np.ndarray  # residents (run, region), for demand
    floor_space_change: np.ndarray  # workplaces added (+) or removed (-) by policies this month (run, region)


@dataclass
class FirmCounters:
    """Cumulative outcomes since the start, in real firms."""

    runs: int
    regions: int
    refused: np.ndarray = field(init=False)  # new registrations refused (run,)
    refused_changes: np.ndarray = field(init=False)  # changes of registration into Beijing refused (run,)
    dispersed: np.ndarray = field(init=False)  # (run, sector)
    dispersed_closed: np.ndarray = field(init=False)  # (run, sector)
    relocated: np.ndarray = field(init=False)  # dispersed and relocated, by destination (run, sector, region)
    relocated_pharma: np.ndarray = field(init=False)  # (run, region)
    spontaneous_moves: np.ndarray = field(init=False)  # (run, sector)
    moves_from_beijing: np.ndarray = field(init=False)  # any move out of a Beijing region (run, sector, region)
    transfers: np.ndarray = field(init=False)  # industrial firms moved into Tongzhou or north3 from Beijing (run,)
    entries: np.ndarray = field(init=False)  # (run, sector)
    exits: np.ndarray = field(init=False)  # (run, sector), dispersal closures included
    branches: np.ndarray = field(init=False)  # (run, region)
    diverted: np.ndarray = field(init=False)  # refused entrants registered elsewhere (run, region)
    beijing_entrants: np.ndarray = field(init=False)  # last 12 months of Beijing's admitted entrants (run, 12, sector)

    def __post_init__(self) -> None:
        b, r, s = self.runs, self.regions, N_SECTORS
        self.refused, self.refused_changes, self.transfers = np.zeros(b), np.zeros(b), np.zeros(b)
        self.dispersed, self.dispersed_closed = np.zeros((b, s)), np.zeros((b, s))
        self.relocated, self.relocated_pharma = np.zeros((b, s, r)), np.zeros((b, r))
        self.moves_from_beijing = np.zeros((b, s, r))
        self.spontaneous_moves, self.entries, self.exits = np.zeros((b, s)), np.zeros((b, s)), np.zeros((b, s))
        self.branches, self.diverted = np.zeros((b, r)), np.zeros((b, r))
        self.beijing_entrants = np.zeros((b, 12, s))

    def high_end_share(self) -> np.ndarray:
        """Share of high-end firms among Beijing's admitted entrants over the last 12 months (run,)."""
        total = self.beijing_entrants.sum(axis=(1, 2))
        return np.divide(
            self.beijing_entrants[..., HIGH_END].sum(axis=1), total, out=np.full_like(total, np.nan), where=total > 0
        )


def events_below(run: np.ndarray, slot: np.ndarray, draw: np.ndarray, hazard: np.ndarray, dt: float):
    """(run, slot) of the candidates whose draw is below their exact monthly probability, in order."""
    hit = draw < monthly_probability(hazard, dt)
    return run[hit], slot[hit]


def by_run(run: np.ndarray, values: np.ndarray, runs: int) -> list[np.ndarray]:
    """``values`` split by ``run`` (ascending): one array for each run 0..runs-1."""
    bounds = np.searchsorted(run, np.arange(runs + 1))
    return [values[bounds[b] : bounds[b + 1]] for b in range(runs)]


def monthly_probability(hazard: np.ndarray, dt: float) -> np.ndarray:
    """1 - exp(-hazard dt), the chance of an event of hazard h [1/year] within dt, in place (expm1: exact
    for small probabilities)."""
    np.negative(hazard, out=hazard)
    np.multiply(hazard, dt, out=hazard)
    np.expm1(hazard, out=hazard)
    return np.negative(hazard, out=hazard)


def nearness(travel_time: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """exp(-decay * tau_rd) (run, region, region): how much of a region's residents another reaches."""
    return np.exp(-decay[:, None, None] * travel_time)


def market_access(population: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Residents within reach of each region, A_r = sum_d P_d exp(-decay * tau_rd) [persons] (run, region), from
    ``nearness``."""
    return np.einsum("bd,brd->br", population, near)


def demand(population: np.ndarray, access: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """Demand D_rs = P_r^(1 - reach_s) * A_r^reach_s [persons] (run, region, sector)."""
    return np.exp(
        (1 - reach[:, None, :]) * np.log(population)[..., None] + reach[:, None, :] * np.log(access)[..., None]
    )


def rent_index(jobs: np.ndarray, space: np.ndarray, occupancy_2014: np.ndarray, elasticity: np.ndarray) -> np.ndarray:
    """Rent relative to the 2014 level: (occupancy / occupancy in 2014)^elasticity, capped [1] (run, region)."""
    occupancy = jobs / np.maximum(space, 1e-9)
    ratio = np.maximum(occupancy / occupancy_2014[:, None], 1e-12)
    return np.minimum(np.exp(np.minimum(elasticity[:, None] * np.log(ratio), MAX_EXPONENT)), RENT_INDEX_MAX)


def _catalogue_utility(coverage: np.ndarray) -> np.ndarray:
    """ln(1 - coverage) (run, sector, destination): a fully covered industry cannot register there (-inf)."""
    with np.errstate(divide="ignore"):
        return np.log1p(-coverage).transpose(0, 2, 1)


def space_starts(
    jobs: np.ndarray, space: np.ndarray, pipeline: np.ndarray, target_occupancy, adjustment_time, max_build_rate
) -> np.ndarray:
    """Floor space put into construction [workplaces/year] (run, region): the gap to the target
    occupancy net of what is being built, closed over the adjustment time, capped by land."""
    gap = jobs / target_occupancy[:, None] - space - pipeline
    return np.clip(gap / adjustment_time[:, None], 0.0, max_build_rate * space)


class Firms:
    """The firm population of a batch of runs, as columns of shape (run, slot), and its floor space."""

    def __init__(
        self, regions: Regions, table: FirmTable, params: FirmParams, streams: Streams, source: str = "parameters"
    ) -> None:
        self.regions, self.table, self.params, self.streams, self.source = regions, table, params, streams, source
        self.core = regions.index("bj_core") if "bj_core" in regions.codes else 0
        self.central = regions.index("bj_central") if "bj_central" in regions.codes else 0
        # K2: industrial firms moving from Beijing (outside Tongzhou) into Tongzhou or the northern counties
        self.transfer_origins = regions.beijing & ~np.isin(regions.codes, ("bj_tongzhou",))
        self.transfer_destinations = np.isin(regions.codes, ("bj_tongzhou", "north3"))
        self.outside = ~regions.beijing  # where refused entrants may register instead
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
        self.cell = np.zeros((runs, n), np.int32)  # flat (run, region, sector) index, kept with region and sector
        self.extent = np.zeros(runs, int)  # per run: slots ever used (random draws cover only these)
        self.agents = np.zeros(runs, int)  # per run: live agents, kept by ``_slots`` and ``_remove``
        self._free = [np.zeros(0, np.intp) for _ in range(runs)]  # per run: dead slots below extent, sorted
        self._lever_terms: dict[Any, tuple[tuple[np.ndarray, ...], np.ndarray]] = {}  # ``_kept``
        self._month: dict[Any, np.ndarray] | None = None  # terms shared by a step's calls (``step``)
        self._closed: dict[bytes, np.ndarray] = {}  # destinations closed to movers, by ``allowed``
        size = runs * len(regions) * N_SECTORS
        self._firm_tally, self._job_tally = np.zeros(size), np.zeros(size)  # kept up to date event by event
        self.counters = FirmCounters(runs, len(regions))
        ages = streams.random("firm ages", n) * 20.0  # assumed: initial ages uniform over 0-20 years
        for b in range(runs):  # run by run: the same draws as all at once, without batch-sized temporaries
            self._add(np.full(n, b), region, sector, ages[b], "initial firms")

        # 2014 references: the firms each region's demand supported, and the space they occupied
        p = params
        self.firms_2014 = np.round(table.firms / table.agent_weight) * table.agent_weight  # (region, sector)
        population = np.tile(regions.population_2014, (runs, 1))
        travel = np.broadcast_to(regions.travel_time, (runs, len(regions), len(regions)))
        self.demand_2014 = demand(
            population, market_access(population, nearness(travel, p.market_decay)), p.market_reach
        )
        jobs = self.jobs().sum(axis=2)
        self.space = jobs / p.space_occupancy_2014[:, None]  # workplaces (run, region)
        self.space_2014 = self.space.copy()
        self.space_pipeline = np.zeros((runs, len(regions), SPACE_DELAY_ORDER))
        self.destination_constant = self._fit_destination_constants()

    # -- bookkeeping -------------------------------------------------------------------------
    COLUMNS = ("alive", "region", "sector", "weight", "employees", "age", "cost_sensitivity", "pharma", "cell")

    def _grow(self, needed: int) -> None:
        capacity = self.alive.shape[1]
        extra = max(needed - capacity, capacity // GROWTH)
        for name in self.COLUMNS:
            column = getattr(self, name)
            setattr(self, name, np.concatenate([column, np.zeros((column.shape[0], extra), column.dtype)], axis=1))

    def _cells(self, run: np.ndarray, region: np.ndarray, sector: np.ndarray) -> np.ndarray:
        return ((run * len(self.regions) + region) * N_SECTORS + sector).astype(np.int32)

    def _book(self, cell: np.ndarray, weight: np.ndarray, employees: np.ndarray, sign: float) -> None:
        """Add (sign +1) or remove (-1) real firms and jobs in the tallies (integer-valued: exact)."""
        size = len(self._firm_tally)
        self._firm_tally += sign * np.bincount(cell, weights=weight, minlength=size)
        self._job_tally += sign * np.bincount(cell, weights=weight * employees, minlength=size)

    def _slots(self, run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free slots for new agents of ``run`` (sorted by run), each run's lowest free slots first.

        Returns the slots and the agents per run.
        """
        runs = self.alive.shape[0]
        per_run = np.bincount(run, minlength=runs)
        alive = self.agents
        if (alive + per_run > MAX_AGENTS_PER_RUN).any():
            b = int(np.argmax(alive + per_run))
            raise InputError(
                self.source,
                "firms",
                f"run {b} would hold {int(alive[b] + per_run[b]):,} firm agents, over the limit of "
                f"{MAX_AGENTS_PER_RUN:,}: the firm parameters (entry_rate, exit_rate, rent responses) "
                "make the firm population explode; expected values that keep it bounded",
            )
        if (per_run > self.alive.shape[1] - alive).any():
            self._grow(int((per_run + alive).max()))
        slots = []
        for b in np.flatnonzero(per_run):
            end, wanted = int(self.extent[b]), int(per_run[b])
            free, self._free[b] = self._free[b][:wanted], self._free[b][wanted:]  # dead slots, then fresh ones
            fresh = wanted - len(free)
            slots.append(np.concatenate([free, np.arange(end, end + fresh)]) if fresh else free)
            self.extent[b] = end + fresh
        slot = slots[0] if len(slots) == 1 else np.concatenate(slots) if slots else np.zeros(0, np.intp)
        self.alive[run, slot] = True
        self.agents += per_run
        return slot, per_run

    def _add(self, run: np.ndarray, region: np.ndarray, sector: np.ndarray, age: np.ndarray, stream: str) -> None:
        """Put new agents (given run by run, in order) into free slots, drawing their traits."""
        order = np.argsort(run, kind="stable")
        run, region, sector, age = run[order], region[order], sector[order], age[order]
        slot, per_run = self._slots(run)
        p = self.params
        sensitivity = self.streams.lognormal_runs(f"{stream}: cost sensitivity", p.cost_sensitivity_spread, per_run)
        pharma_draw = self.streams.random_runs(f"{stream}: pharma", per_run)
        self.region[run, slot], self.sector[run, slot] = region, sector
        self.cell[run, slot] = cell = self._cells(run, region, sector)
        self.weight[run, slot] = weight = self.table.agent_weight[region, sector]
        self.employees[run, slot] = employees = self.table.employees_per_firm[region, sector]
        self.age[run, slot] = age
        self.cost_sensitivity[run, slot] = sensitivity
        self.pharma[run, slot] = (sector == MANUFACTURING) & (pharma_draw < p.pharma_share[run])
        self._book(cell, weight, employees, +1.0)

    def _remove(self, run: np.ndarray, slot: np.ndarray) -> None:
        """End agents (closures); their slots join their run's free slots."""
        self.alive[run, slot] = False
        self._book(self.cell[run, slot], self.weight[run, slot], self.employees[run, slot], -1.0)
        self.agents -= np.bincount(run, minlength=len(self.agents))
        order = np.argsort(run, kind="stable")
        for b, ended in enumerate(by_run(run[order], slot[order], len(self.agents))):
            if len(ended):
                self._free[b] = np.sort(np.concatenate([self._free[b], ended]), kind="stable")  # two sorted runs

    def recount(self) -> tuple[np.ndarray, np.ndarray]:
        """Real firms and jobs by (run, region, sector) counted afresh from the agents (checks the tallies)."""
        runs, n_regions = self.alive.shape[0], len(self.regions)
        cell = ((np.arange(runs)[:, None] * n_regions + self.region) * N_SECTORS + self.sector)[self.alive]
        weight = self.weight[self.alive]
        size, shape = runs * n_regions * N_SECTORS, (runs, n_regions, N_SECTORS)
        firms = np.bincount(cell, weights=weight, minlength=size).reshape(shape)
        jobs = np.bincount(cell, weights=weight * self.employees[self.alive], minlength=size).reshape(shape)
        return firms, jobs

    def counts(self) -> np.ndarray:
        """Real firms by (run, region, sector) (a copy)."""
        return self._firm_tally.reshape(self.alive.shape[0], len(self.regions), N_SECTORS).copy()

    def jobs(self) -> np.ndarray:
        """Jobs by (run, region, sector) (a copy)."""
        return self._job_tally.reshape(self.alive.shape[0], len(self.regions), N_SECTORS).copy()

    def rent_index(self) -> np.ndarray:
        """Commercial rent relative to each region's own 2014 level [1] (run, region)."""
        p = self.params
        return rent_index(self.jobs().sum(axis=2), self.space, p.space_occupancy_2014, p.rent_elasticity)

    def rent(self) -> np.ndarray:
        """Commercial rent relative to the core's 2014 rent, rent_level_2014 * rho [1] (run, region)."""
        return self.regions.rent_level_2014 * self.rent_index()

    def projects(self) -> np.ndarray:
        """Industrial cooperation and transfer projects into Tongzhou and the northern counties (K2) (run,)."""
        return self.counters.transfers / self.params.firms_per_project

    # -- behaviour ---------------------------------------------------------------------------
    def destination_probabilities(
        self,
        ctx: FirmContext,
        counts: np.ndarray,
        rent: np.ndarray,
        allowed: np.ndarray | None = None,
        pharma: bool = False,
        catalogue: bool = True,
    ) -> np.ndarray:
        """Logit destination shares (run, sector, origin, destination).

        Without ``allowed`` (a firm moving of its own accord) the origin is one of the
        choices: a move within the region. With ``allowed`` (dispersed units, diverted
        entrants, branches) the origin is excluded and only allowed regions are open.
        ``rent`` is the rent index (run, region); ``catalogue=False`` gives the shares
        movers would choose if Beijing's catalogue turned nobody away (to count refusals).
        """
        memo = {} if self._month is None else self._month  # within a step: each term once a month
        key = (None if allowed is None else allowed.tobytes(), pharma, catalogue)
        if key in memo:
            return memo[key]
        utility = self._utility(ctx, counts, rent, pharma, catalogue, memo)
        if allowed is not None:
            if key[0] not in self._closed:
                n = ctx.travel_time.shape[-1]
                self._closed[key[0]] = np.eye(n, dtype=bool) | ~allowed[None, :]
            utility = np.where(self._closed[key[0]], -np.inf, utility)
        top = utility.max(axis=-1, keepdims=True)
        weights = np.exp(utility - np.where(np.isfinite(top), top, 0.0))
        total = weights.sum(axis=-1, keepdims=True)
        probs = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)  # no destination: all zero
        probs.flags.writeable = False  # shared by the month's choices
        memo[key] = probs
        return probs

    def _utility(self, ctx: FirmContext, counts, rent, pharma: bool, catalogue: bool, memo: dict) -> np.ndarray:
        """Destination utility (run, sector, origin, destination) before closing destinations, from terms kept
        in ``memo`` (this month's stock and rents) and ``_kept`` (the levers'), the same operations in the
        same order as written out in the module docstring."""
        if ("utility", pharma, catalogue) in memo:
            return memo["utility", pharma, catalogue]
        p, tt = self.params, ctx.travel_time
        if "by_destination" not in memo:
            cost_of_space = self.regions.rent_level_2014 * rent
            by_destination = -p.rent_weight[:, None] * cost_of_space - p.access_weight[:, None] * tt[:, :, self.core]
            memo["by_destination"] = by_destination[:, None, None, :]
            memo["agglomeration"] = p.agglomeration_weight[:, None, None] * np.log1p(counts).transpose(0, 2, 1)
        if ("by_sector", pharma) not in memo:
            incentive = self._kept(  # (run, sector, destination)
                ("incentive", pharma),
                (ctx.incentive, ctx.pharma_incentive),
                lambda: (ctx.incentive + (ctx.pharma_incentive[..., None] if pharma else 0.0)).transpose(0, 2, 1),
            )
            memo["by_sector", pharma] = memo["agglomeration"] + incentive + self.destination_constant
        by_sector = memo["by_sector", pharma]
        if catalogue:
            by_sector = by_sector + self._kept("catalogue", (ctx.coverage,), lambda: _catalogue_utility(ctx.coverage))
        by_origin = self._kept("by_origin", (tt,), lambda: (-p.distance_weight[:, None, None] * tt)[:, None, :, :])
        utility = memo["utility", pharma, catalogue] = memo["by_destination"] + by_sector[:, :, None, :] + by_origin
        return utility

    def _kept(self, name: Any, levers: tuple[np.ndarray, ...], compute: Callable[[], np.ndarray]) -> np.ndarray:
        """``compute()`` of the given levers, kept while they are the same immutable arrays (the timeline's
        levers are read-only and replaced when they change, so most months reuse the value)."""
        hit = self._lever_terms.get(name)
        if hit is not None and all(a is b for a, b in zip(hit[0], levers)):
            return hit[1]
        value = compute()
        if all(not a.flags.writeable and a.flags.owndata for a in levers):
            self._lever_terms[name] = (levers, value)
        return value

    def _fit_destination_constants(self) -> np.ndarray:
        """Destination constants kappa (run, sector, region) that put the 2014 stock at rest under moves.

        At 2014 conditions (rent index 1, no policy) the expected movers into each
        (region, sector), sum_o N0_os Q_s,o,d, equal those leaving it, N0_ds (all firms move
        at the same base hazard), so moves alone do not drift the stock; policies, rents
        and travel times then drive net moves. Balanced by the fixed point
        kappa_ds += ln(N0_ds / inflow_ds) (the origin is a choice, so a balance exists).
        """
        runs, n = len(self.streams.seeds), len(self.regions)
        zeros = np.zeros((runs, n, N_SECTORS))
        travel = np.broadcast_to(self.regions.travel_time, (runs, n, n))
        ctx = FirmContext(2014.0, 0.0, travel, zeros, zeros, zeros[..., 0], (), zeros[..., 0], zeros[..., 0])
        stock = np.broadcast_to(self.firms_2014, (runs, n, N_SECTORS))
        rent = np.ones((runs, n))
        self.destination_constant = np.zeros((runs, N_SECTORS, n))
        target = np.log(np.maximum(stock, 1e-300)).transpose(0, 2, 1)
        for _ in range(FIT_ITERATIONS):
            probs = self.destination_probabilities(ctx, stock, rent)
            inflow = np.einsum("bos,bsod->bsd", stock, probs)
            gap = target - np.log(np.maximum(inflow, 1e-300))
            self.destination_constant = self.destination_constant + gap
            if np.abs(gap).max() < FIT_TOLERANCE:
                break
        return self.destination_constant

    def _choose(
        self,
        run: np.ndarray,
        slot: np.ndarray,
        probs: np.ndarray,
        pharma_probs: np.ndarray | Callable[[], np.ndarray] | None,
        uniform: np.ndarray,
    ) -> np.ndarray:
        """Draw a destination per mover against its cumulative shares; -1 where none is open to it.

        ``pharma_probs`` (pharmaceutical firms' shares) may be a function: called only if a mover is one."""
        sector = self.sector[run, slot]
        rows = probs[run, sector, self.region[run, slot]]
        is_pharma = None if pharma_probs is None else self.pharma[run, slot]
        if is_pharma is not None and is_pharma.any():
            pharma_probs = pharma_probs() if callable(pharma_probs) else pharma_probs
            rows[is_pharma] = pharma_probs[run[is_pharma], MANUFACTURING, self.region[run[is_pharma], slot[is_pharma]]]
        total = rows.sum(axis=1)
        cumulative = np.cumsum(rows, axis=1)
        chosen = (cumulative < (uniform * total)[:, None]).sum(axis=1)
        return np.where(total > 0, np.minimum(chosen, rows.shape[1] - 1), -1).astype(np.int8)

    def step(self, ctx: FirmContext) -> None:
        """One month of firm life, in the order of the module docstring.

        Per-slot work runs over the used width only (slots some run has used), on flat
        indices into (run, region, sector) tables; random draws are made for candidates
        only; counts and jobs are kept by events, not recounted. Whom the per-slot events
        befall is chosen by ``_exits``, ``_dispersal_hits`` and ``_relocations``.
        """
        self._month = {}  # the destination logit's terms, shared by the month's choices
        try:
            self._step(ctx)
        finally:
            self._month = None

    def _step(self, ctx: FirmContext) -> None:
        p, c = self.params, self.counters
        counts, jobs = self.counts(), self.jobs().sum(axis=2)  # start-of-month stock drives this month's choices

        # 0. space changed by policy, rents from the start-of-month occupancy
        self.space = np.maximum(self.space + ctx.floor_space_change, 0.0)
        rent = rent_index(jobs, self.space, p.space_occupancy_2014, p.rent_elasticity)  # (run, region)
        rent_by_cell = np.repeat(rent - 1.0, N_SECTORS, axis=1).ravel()  # rent index - 1 by flat cell

        # 1. ageing and exit
        self.age[:, : self._width()] += ctx.dt  # dead slots age too; entry resets them
        split = self._cost_split()
        above = self._above(split)  # the month's agents checked for their costs
        run, slot = self._exits(rent_by_cell, split, above, ctx.dt)
        c.exits += self._by_sector(run, slot)
        self._remove(run, slot)

        # 2. dispersal programmes
        moved = np.zeros_like(self.alive)
        for programme in ctx.dispersals:
            if not (programme.rate > 0).any():
                continue
            name = programme.name
            run, slot = self._dispersal_hits(programme, moved, split, above, ctx.dt)
            c.dispersed += self._by_sector(run, slot)
            closing = self._draws(f"dispersal close: {name}", run) < programme.close_share[run]
            destination = np.full(len(run), -1, np.int8)
            relocating = ~closing
            if relocating.any():
                probs = self.destination_probabilities(ctx, counts, rent, programme.allowed)
                pharma_probs = partial(self.destination_probabilities, ctx, counts, rent, programme.allowed, True)
                uniform = self._draws(f"dispersal destination: {name}", run[relocating])
                destination[relocating] = self._choose(run[relocating], slot[relocating], probs, pharma_probs, uniform)
            closing |= destination < 0  # nowhere open to it: the unit closes instead
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

        # 3. spontaneous relocation (splits may have used new slots; movers of step 2 do not move again)
        run, slot = self._relocations(rent_by_cell, moved, split, above, ctx.dt)
        if len(run):
            probs = self.destination_probabilities(ctx, counts, rent)
            pharma_probs = partial(self.destination_probabilities, ctx, counts, rent, None, True)
            self._count_refused_changes(ctx, counts, rent, run, slot)
            destination = self._choose(run, slot, probs, pharma_probs, self._draws("relocation destination", run))
            between = (destination >= 0) & (destination != self.region[run, slot])  # else a move within the region
            run, slot, destination = run[between], slot[between], destination[between]
            c.spontaneous_moves += self._by_sector(run, slot)
            self._move(run, slot, destination, moved)  # moved is not read again this month

        # 4. entry under the catalogue, 5. branches
        self._enter(ctx, counts, rent)

        # 6. construction of floor space (Euler over the month; completions count from next month)
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

    def _count_refused_changes(
        self, ctx: FirmContext, counts: np.ndarray, rent: np.ndarray, run: np.ndarray, slot: np.ndarray
    ) -> None:
        """Movers whose first choice was a destination the catalogue covers, and who applied there (F1).

        Each mover would pick d with the catalogue-free shares Q_d; a share coverage_d of
        those choices is turned away, and a share ``apply_despite_ban`` of the turned-away
        applied anyway and were refused before choosing again (as for new registrations).
        """
        if not ctx.coverage.any():
            return
        free = self.destination_probabilities(ctx, counts, rent, catalogue=False)  # (run, sector, origin, dest)
        turned_away = np.einsum("bsod,bds->bso", free, ctx.coverage)
        expected = np.zeros(self.alive.shape[0])
        np.add.at(
            expected, run, self.weight[run, slot] * turned_away[run, self.sector[run, slot], self.region[run, slot]]
        )
        self.counters.refused_changes += self.streams.poisson(
            "refused changes", expected * self.params.apply_despite_ban
        )

    # -- whom the per-slot events befall ----------------------------------------------------------
    # Each selection stands for one uniform draw per used slot, an event where the draw is below the agent's
    # monthly probability, but draws only the candidates (``Streams.below``): slots whose draw is below their
    # run's limit, a bound of the monthly probability of every agent whose cost sensitivity is at most the
    # run's split, from the run's largest rate and rent (costs are lognormal, so >= 0, and each hazard grows
    # with its cost and its exponent; ``_limit``), and the agents above the split (a few in a thousand), whose
    # draws are made whatever they are. Only the candidates get their exact probability, by
    # the hazard formulas below on gathered agents (``run``, and ``at``: flat indices into the columns): numpy's
    # functions act elementwise, so an agent's probability is the number the formulas give over all agents
    # at once, and an agent left out could not have drawn an event. Takes by cell use mode="clip" (cells
    # are valid; "raise" would buffer ``out``: 10x slower).
    def _width(self) -> int:
        """Slots some run has used: per-slot work and draws cover these."""
        return int(self.extent.max())

    def _exit_rate_by_cell(self) -> np.ndarray:
        """exit_rate_s by flat (run, region, sector) cell."""
        runs, n = self.alive.shape[0], len(self.regions)
        return np.broadcast_to(self.params.exit_rate[:, None, :], (runs, n, N_SECTORS)).ravel()

    def _rent_push(self, response, run, at, rent_by_cell, out, scratch) -> np.ndarray:
        """exp(min(response * c_i * (rho_r - 1), 50)) into ``out`` (``scratch`` receives rho_r - 1)."""
        np.take(rent_by_cell, self.cell.take(at, mode="clip"), out=scratch, mode="clip")
        np.multiply(response[run], self.cost_sensitivity.take(at, mode="clip"), out=out)
        np.multiply(out, scratch, out=out)
        np.minimum(out, MAX_EXPONENT, out=out)
        return np.exp(out, out=out)

    def _exit_hazard(self, run, at, rent_by_cell, exit_by_cell, push, youth, hazard) -> np.ndarray:
        """exit_rate_s * (1 + young_exit_boost * exp(-age / 3)) * exp(min(rent_exit_response * c_i * (rho_r - 1),
        50)) into ``hazard``."""
        p = self.params
        self._rent_push(p.rent_exit_response, run, at, rent_by_cell, push, hazard)
        np.negative(self.age.take(at, mode="clip"), out=youth)
        np.divide(youth, YOUNG_FIRM_AGE, out=youth)
        np.exp(youth, out=youth)
        np.multiply(p.young_exit_boost[run], youth, out=youth)
        np.add(1, youth, out=youth)
        np.take(exit_by_cell, self.cell.take(at, mode="clip"), out=hazard, mode="clip")
        np.multiply(hazard, youth, out=hazard)
        return np.multiply(hazard, push, out=hazard)

    def _dispersal_hazard(self, programme: Dispersal, run, at, hazard) -> np.ndarray:
        """A programme's rate * c_i into ``hazard``."""
        return np.multiply(programme.rate[run], self.cost_sensitivity.take(at, mode="clip"), out=hazard)

    def _relocation_hazard(self, run, at, rent_by_cell, push, hazard) -> np.ndarray:
        """relocation_rate * exp(min(cost_push * c_i * (rho_r - 1), 50)) into ``hazard``."""
        p = self.params
        self._rent_push(p.cost_push, run, at, rent_by_cell, push, hazard)
        return np.multiply(p.relocation_rate[run], push, out=hazard)

    def _at(self, run: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Flat indices of (run, slot) into the (run, capacity) columns: a 1-D take is cheaper than a 2-D gather."""
        return run * self.alive.shape[1] + slot

    def _cost_ceiling(self) -> np.ndarray:
        """Each run's largest cost sensitivity over the used slots (NaN if one is NaN)."""
        return self.cost_sensitivity[:, : self._width()].max(axis=1, initial=0.0)  # costs are >= 0; 0 for no agents

    def _cost_split(self) -> np.ndarray:
        """Per run: the cost sensitivity up to which a run's limit covers the agents (``COST_SPLIT`` or the
        largest cost if lower; NaN if a cost is NaN)."""
        return np.minimum(self._cost_ceiling(), COST_SPLIT)

    def _push_bound(self, response: np.ndarray, rent_by_cell: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """Per run: at least exp(min(response * c_i * (rho_r - 1), 50)) of every agent with c_i <= ``cost``,
        >= 1 (NaN where ``cost`` is NaN)."""
        runs = self.alive.shape[0]
        top = np.fmax.reduce((response * cost)[:, None] * rent_by_cell.reshape(runs, -1), axis=1)
        return np.exp(np.minimum(np.maximum(top, 0.0), MAX_EXPONENT))

    @staticmethod
    def _limit(hazard_bound: np.ndarray, dt: float) -> np.ndarray:
        """Per run: above every agent's 1 - exp(-hazard dt) <= hazard dt, with slack for rounding; 2.0 (every
        draw passes) where the bound is not a number."""
        limit = hazard_bound * (dt * LIMIT_SLACK)
        return np.where(limit >= 0, limit, 2.0)

    def _above(self, split: np.ndarray) -> list[np.ndarray]:
        """Per run: the used slots whose cost sensitivity is above the run's ``split`` (sorted). Costs change
        only with entry, after the month's selections (a split mover's new slots copy its cost and have moved)."""
        width = self._width()
        row, slot = np.divmod(np.flatnonzero(self.cost_sensitivity[:, :width] > split[:, None]), width)
        return by_run(row, slot, len(split))

    def _below(
        self, stream: str, sizes: np.ndarray, limit: np.ndarray, above: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(run, slot, draw) of the used slots (``sizes`` per run) whose draw of ``stream`` is below their run's
        ``limit``, and of the slots ``above`` their run's split, run by run in slot order. Only these draws are
        made (``Streams.below``): the month's cost follows the candidates, not the agents."""
        kept = [a[a < size] for a, size in zip(above, sizes.tolist())]
        return self.streams.below(stream, sizes, limit, kept)

    def _exits(
        self, rent_by_cell: np.ndarray, split: np.ndarray, above: list[np.ndarray], dt: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(run, slot) of the agents that close this month (``_exit_hazard``)."""
        p, exit_by_cell = self.params, self._exit_rate_by_cell()
        top_rate = np.fmax.reduce(np.abs(exit_by_cell).reshape(len(self.extent), -1), axis=1)  # NaN never fires
        bound = (
            top_rate * (1.0 + np.abs(p.young_exit_boost)) * self._push_bound(p.rent_exit_response, rent_by_cell, split)
        )
        run, slot, draw = self._below("exit", self.extent, self._limit(bound, dt), above)
        alive = self.alive.take(self._at(run, slot), mode="clip")
        run, slot, draw = run[alive], slot[alive], draw[alive]
        at = self._at(run, slot)
        hazard = self._exit_hazard(run, at, rent_by_cell, exit_by_cell, *np.empty((3, len(run))))
        return events_below(run, slot, draw, hazard, dt)

    def _dispersal_hits(
        self, programme: Dispersal, moved: np.ndarray, split: np.ndarray, above: list[np.ndarray], dt: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(run, slot) of the agents a programme moves out this month (``_dispersal_hazard``): alive, not
        moved yet, of its sector, in a targeted region; a run draws from the programme's stream only while
        the programme is active there."""
        sizes = np.where(programme.rate > 0, self.extent, 0)
        limit = self._limit(np.abs(programme.rate) * split, dt)
        run, slot, draw = self._below(f"dispersal: {programme.name}", sizes, limit, above)
        at = self._at(run, slot)
        eligible = self.alive.take(at, mode="clip") & ~moved[run, slot]
        eligible &= (self.sector.take(at, mode="clip") == programme.sector) & programme.targeted[self.region.take(at)]
        run, slot, draw = run[eligible], slot[eligible], draw[eligible]
        hazard = self._dispersal_hazard(programme, run, self._at(run, slot), np.empty(len(run)))
        return events_below(run, slot, draw, hazard, dt)

    def _relocations(
        self, rent_by_cell: np.ndarray, moved: np.ndarray, split: np.ndarray, above: list[np.ndarray], dt: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(run, slot) of the agents that move of their own accord (``_relocation_hazard``): alive, not
        moved this month."""
        p = self.params
        bound = np.abs(p.relocation_rate) * self._push_bound(p.cost_push, rent_by_cell, split)
        run, slot, draw = self._below("relocation", self.extent, self._limit(bound, dt), above)
        eligible = self.alive.take(self._at(run, slot), mode="clip") & ~moved[run, slot]
        run, slot, draw = run[eligible], slot[eligible], draw[eligible]
        hazard = self._relocation_hazard(run, self._at(run, slot), rent_by_cell, *np.empty((2, len(run))))
        return events_below(run, slot, draw, hazard, dt)

    def _draws(self, stream: str, run: np.ndarray) -> np.ndarray:
        """One uniform draw per selected agent, ``run`` in ascending order (as np.nonzero gives it)."""
        return self.streams.random_runs(stream, np.bincount(run, minlength=self.alive.shape[0]))

    def _by_sector(self, run: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Real firms of the given agents by (run, sector)."""
        runs = self.alive.shape[0]
        cell = run * N_SECTORS + self.sector[run, slot]
        return np.bincount(cell, weights=self.weight[run, slot], minlength=runs * N_SECTORS).reshape(runs, N_SECTORS)

    def _move(self, run: np.ndarray, slot: np.ndarray, destination: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """Relocate agents (``run`` ascending); returns ``moved`` with the movers and any new slots marked.

        An agent of weight w moving into a region whose agents of its sector have weight
        w_d < w splits there into floor(w / w_d) agents of weight w_d plus one of the
        remainder, each with the mover's traits: the same real firms, resolved as the
        destination resolves them. Finer agents keep their weight.
        """
        c, regions = self.counters, self.regions
        origin, sector, weight = self.region[run, slot], self.sector[run, slot], self.weight[run, slot]
        from_beijing = regions.beijing[origin]
        np.add.at(
            c.moves_from_beijing,
            (run[from_beijing], sector[from_beijing], destination[from_beijing]),
            weight[from_beijing],
        )
        transfer = self.transfer_origins[origin] & self.transfer_destinations[destination] & IS_INDUSTRIAL[sector]
        np.add.at(c.transfers, run[transfer], weight[transfer])
        employees, old_cell = self.employees[run, slot], self.cell[run, slot]
        self.region[run, slot] = destination
        self.cell[run, slot] = new_cell = self._cells(run, destination, sector)
        self._book(old_cell, weight, employees, -1.0)
        self._book(new_cell, weight, employees, +1.0)
        moved[run, slot] = True
        target = self.table.agent_weight[destination, sector]
        splitting = weight > target * (1 + 1e-9)
        if not splitting.any():
            return moved
        run, slot, target = run[splitting], slot[splitting], target[splitting]
        pieces = np.floor(self.weight[run, slot] / target * (1 + 1e-12)).astype(int)  # whole agents of weight w_d
        remainder = self.weight[run, slot] - pieces * target
        extra = pieces - 1 + (remainder > 1e-9 * target)  # new agents beside the mover's own slot
        self.weight[run, slot] = target
        parent = np.repeat(np.arange(len(run)), extra)
        new_weight = np.repeat(target, extra)
        last = np.cumsum(extra) - 1  # each parent's last new agent carries the remainder
        has_remainder = remainder > 1e-9 * target
        new_weight[last[has_remainder]] = remainder[has_remainder]
        parent_run, parent_slot = run[parent], slot[parent]
        new_slot, _ = self._slots(parent_run)
        if moved.shape != self.alive.shape:  # the columns grew
            moved = np.concatenate([moved, np.zeros((moved.shape[0], self.alive.shape[1] - moved.shape[1]), bool)], 1)
        for name in ("region", "sector", "employees", "age", "cost_sensitivity", "pharma", "cell"):
            column = getattr(self, name)
            column[parent_run, new_slot] = column[parent_run, parent_slot]
        self.weight[parent_run, new_slot] = new_weight
        moved[parent_run, new_slot] = True
        return moved

    def would_be_entrants(self, ctx: FirmContext, rent: np.ndarray) -> np.ndarray:
        """Would-be entrants this month by (run, region, sector) [firms], bounded by demand and rent.

        W_rs = entry_rate_s * g_s(t) * N0_rs * D_rs / D0_rs * min(exp(-rent_entry_response * (rho_r - 1)), 2) * dt:
        the firms the region's 2014 demand supported, scaled by demand now, not the current
        stock, so entry does not compound and the stock approaches entry / exit.
        """
        p = self.params
        growth = np.ones((len(self.streams.seeds), N_SECTORS))
        years = np.minimum(ctx.time - 2014.0, p.high_end_growth_years)
        growth[:, HIGH_END] = np.exp(p.high_end_entry_growth * years)
        near = self._kept("nearness", (ctx.travel_time,), lambda: nearness(ctx.travel_time, p.market_decay))
        access = market_access(ctx.population, near)
        relative_demand = demand(ctx.population, access, p.market_reach) / self.demand_2014
        deterrence = np.minimum(
            np.exp(-np.minimum(p.rent_entry_response[:, None] * (rent - 1.0), MAX_EXPONENT)), ENTRY_BOOST_MAX
        )
        return (
            p.entry_rate[:, None, :]
            * growth[:, None, :]
            * self.firms_2014
            * relative_demand
            * deterrence[..., None]
            * ctx.dt
        )

    def seed_entrant_history(self, ctx: FirmContext) -> None:
        """Fill the 12-month entrant window with 2013 conditions (no catalogue), so F5 has a 2013 value."""
        wanted = self.would_be_entrants(ctx, self.rent_index())
        beijing = self.regions.beijing
        self.counters.beijing_entrants[:] = wanted[:, beijing].sum(axis=1)[:, None, :]

    def _enter(self, ctx: FirmContext, counts: np.ndarray, rent: np.ndarray) -> None:
        p, c, s, regions = self.params, self.counters, self.streams, self.regions
        wanted = self.would_be_entrants(ctx, rent)
        covered = wanted * ctx.coverage
        c.refused += s.poisson("refused", covered * p.apply_despite_ban[:, None, None]).sum(axis=(1, 2))
        weight = self.table.agent_weight
        admitted = s.poisson("entry", (wanted - covered) / weight)  # agents (run, region, sector)
        # refused would-be entrants who register outside Beijing, by logit from their origin
        probs = self.destination_probabilities(ctx, counts, rent, self.outside)  # (run, sector, origin, dest)
        diverting = covered * (p.apply_despite_ban * p.refused_register_elsewhere)[:, None, None]
        diverted = s.poisson("diverted", np.einsum("bos,bsod->bds", diverting, probs) / weight)
        # branches of Zhongguancun firms (a share of Beijing's high-end firms) in Tianjin and Hebei,
        # sent as from the central city (Haidian)
        zhongguancun = p.zhongguancun_share * counts[:, regions.beijing, HIGH_END].sum(axis=1)
        branching = p.branch_rate * zhongguancun * ctx.dt
        branches = np.zeros_like(admitted)
        branches[..., HIGH_END] = s.poisson(
            "branches", branching[:, None] * probs[:, HIGH_END, self.central] / weight[:, HIGH_END]
        )

        c.beijing_entrants[:, :-1] = c.beijing_entrants[:, 1:]  # the window moves on a month
        c.beijing_entrants[:, -1] = (admitted * weight)[:, regions.beijing].sum(axis=1)
        entering = admitted + diverted + branches
        c.entries += (entering * weight).sum(axis=1)
        c.diverted += (diverted * weight).sum(axis=2)
        c.branches += (branches * weight).sum(axis=2)
        new = entering.astype(int)
        run, region, sector = np.nonzero(new)
        times = new[run, region, sector]
        run, region, sector = np.repeat(run, times), np.repeat(region, times), np.repeat(sector, times)
        self._add(run, region, sector, np.zeros(len(run)), "entrants")
