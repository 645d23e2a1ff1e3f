"""The population model: residents by registration, housing and public services per region (stock and flow).

Every function here is a pure equation over arrays whose first axis is the run (batch)
axis. Residents are split by registration (axis ``group``: 0 registered, holding the
local hukou; 1 migrants) and region; origin-destination arrays add a destination axis.
Rates are per year; populations are persons. docs/model.md section 4 has the equations
with their sources; in short:

    attraction_j     = alpha_j + w_jobs ln(jobs_j / P_j) - w_housing P_j / H_j + w_services ln(S_j / P_j)
    U_gij            = attraction_j - w_time tt_ij - control_j [i in another province than j]    (j != i)
                       - tie [g registered and j in another province than i]
    U_gi,out         = 0 - tie [g registered]              (the rest of China sets the utility scale)
    inclusive_gi     = ln(sum_j exp(U_gij) + exp(U_gi,out))
    move_prob_gi     = expit(logit(m_gi) + lambda ((inclusive_gi - attraction_i) - gap_2014_gi))
    displaced_i      = removed_i / H_i                      (homes demolished: their residents must move)
    migration_gij    = (move_prob_gi + displaced_i) P_gi exp(U_gij) / exp(inclusive_gi)
    from_outside_j   = pool(t) exp(attraction_j - control_j) / (exp(E) + sum_k exp(attraction_k - control_k))

Staying is an alternative: the move probability rises when the origin gets worse
(fewer jobs, less housing) or the destinations better, and equals the observed rate
m_gi at the 2014 state. Residents whose homes are demolished (a campaign, housing above a
cap) move as well, wherever the same logit sends them: to other districts, other provinces
or the rest of China. Admission control limits arrivals from other provinces and the
rest of China, not moves between Beijing's districts. Registered residents who move to
another province arrive as migrants; migrants gain the local registration at a rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import InputError

REGISTERED, MIGRANT = 0, 1
GROUPS: tuple[str, ...] = ("registered", "migrant")
FLOOR = 1e-9  # smallest ratio inside a logarithm: a region with no jobs is very unattractive, not -inf


@dataclass(frozen=True)
class PopulationParams:
    """Population parameters, each with the run axis first: (run,) or (run, region)."""

    out_migration_rate: np.ndarray  # 1/year (run, region): 2014 probability of moving out, all residents
    migrant_mobility: np.ndarray  # (run,): migrants' move probability over registered residents'
    move_sensitivity: np.ndarray  # lambda (run,): response of moving to the utility gap
    outside_in_migration: np.ndarray  # persons/year (run,): 2014 arrivals from the rest of China
    outside_capture: np.ndarray  # (run,): share of the rest of China's movers who choose a modelled region in 2014
    outside_trend: np.ndarray  # 1/year (run,): growth of the rest of China's movers
    registration_rate: np.ndarray  # 1/year (run, region): migrants who gain the local registration
    jobs_weight: np.ndarray
    housing_weight: np.ndarray
    services_weight: np.ndarray
    travel_time_weight: np.ndarray  # utility/hour
    registration_tie: np.ndarray  # utility (run,): what registered residents give up by leaving their province
    same_province: np.ndarray  # bool (region, region)
    region_constant: np.ndarray  # alpha, utility (run, region): set by fit_region_constants
    move_gap_2014: np.ndarray  # inclusive value minus own attraction at the start (run, group, region)
    elsewhere_utility: np.ndarray  # E (run,): the rest of China's own pull on its movers
    target_occupancy: np.ndarray  # (run,)
    housing_adjustment_time: np.ndarray  # year (run,)
    construction_time: np.ndarray  # year (run,)
    max_build_rate: np.ndarray  # 1/year (run, region)
    service_adjustment_time: np.ndarray  # year (run,)
    local_service_norm: np.ndarray  # persons served per resident (run, region)


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function 1 / (1 + exp(-x)) (numpy's: importing scipy.special costs 0.15 s per command)."""
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray) -> np.ndarray:
    """The log-odds ln(p / (1 - p)), the inverse of ``expit``."""
    return np.log(p / (1.0 - p))


def _col(value: np.ndarray) -> np.ndarray:
    """A (run,) parameter as (run, 1) so it broadcasts along regions."""
    return value[:, None]


def base_move_rates(p: PopulationParams, migrant_share: np.ndarray) -> np.ndarray:
    """2014 move probability per year by registration (run, group, region), averaging to out_migration_rate."""
    ratio = _col(p.migrant_mobility)
    registered = p.out_migration_rate / (1 - migrant_share + migrant_share * ratio)
    return np.stack([registered, np.minimum(registered * ratio, 0.99)], axis=1)


def attraction(p: PopulationParams, population, housing, jobs, services) -> np.ndarray:
    """How good a region is to live in, before travel and control [utility] (run, region)."""
    return (
        p.region_constant
        + _col(p.jobs_weight) * np.log(np.maximum(jobs / population, FLOOR))
        - _col(p.housing_weight) * np.minimum(population / housing, 1 / FLOOR)
        + _col(p.services_weight) * np.log(np.maximum(services / population, FLOOR))
    )


def move_utilities(p: PopulationParams, attract, control, travel_time) -> np.ndarray:
    """Utility of each destination (run, group, origin, destination + outside); -inf on the diagonal.

    Registered residents who leave their province lose the local registration's access
    to schools, health insurance and housing: ``registration_tie`` off every such move.
    """
    cross = ~p.same_province
    utility = attract[:, None, :] - _col(p.travel_time_weight)[..., None] * travel_time - control[:, None, :] * cross
    n = attract.shape[1]
    utility[:, np.arange(n), np.arange(n)] = -np.inf
    utility = np.concatenate([utility, np.zeros((*utility.shape[:2], 1))], axis=-1)  # the rest of China: 0
    leaves_province = np.concatenate([cross, np.ones((n, 1), bool)], axis=1)
    tie = _col(p.registration_tie)[..., None] * leaves_province
    return np.stack([utility - tie, utility], axis=1)


def _max_last(a: np.ndarray) -> np.ndarray:
    """Maximum over the last (short, region) axis: elementwise over its slices, much faster than a reduction."""
    top = a[..., 0]
    for k in range(1, a.shape[-1]):
        top = np.maximum(top, a[..., k])
    return top


def _logsumexp(utility: np.ndarray) -> np.ndarray:
    top = _max_last(utility)
    return top + np.log(np.einsum("...j->...", np.exp(utility - top[..., None])))


@dataclass(frozen=True)
class MigrationFlows:
    between: np.ndarray  # persons/year (run, group, origin, destination)
    to_outside: np.ndarray  # persons/year (run, group, region)
    from_outside: np.ndarray  # persons/year (run, region), all migrants

    def net(self) -> np.ndarray:
        """Net migration into each region, both groups [persons/year] (run, region)."""
        between = self.between.sum(axis=1)
        return between.sum(axis=1) - between.sum(axis=2) + self.from_outside - self.to_outside.sum(axis=1)


def _flows(utility: np.ndarray, movers: np.ndarray, arrivals: np.ndarray) -> MigrationFlows:
    """Movers (run, group, origin) shared over destinations by the logit of ``utility``."""
    shares = np.exp(utility - _logsumexp(utility)[..., None])
    leaving = movers[..., None] * shares
    return MigrationFlows(leaving[..., :-1], leaving[..., -1], arrivals)


def outside_pool(p: PopulationParams, years_since_start: float) -> np.ndarray:
    """Movers of the rest of China who consider the modelled regions [persons/year] (run,)."""
    return p.outside_in_migration / p.outside_capture * np.exp(p.outside_trend * years_since_start)


def migration(
    p: PopulationParams,
    base_rates,
    population,
    housing,
    jobs,
    services,
    control,
    travel_time,
    years_since_start,
    displaced: np.ndarray | None = None,
) -> MigrationFlows:
    """This month's migration flows; ``population`` is (run, group, region), ``displaced`` (run, region)."""
    total = population.sum(axis=1)
    attract = attraction(p, total, housing, jobs, services)
    utility = move_utilities(p, attract, control, travel_time)
    gap = _logsumexp(utility) - attract[:, None, :] - p.move_gap_2014
    probability = expit(logit(base_rates) + _col(p.move_sensitivity)[:, None] * gap)
    if displaced is not None:  # residents whose homes are demolished move as well
        probability = probability + displaced[:, None, :]
    pull = attract - control
    top = np.maximum(pull.max(axis=1), p.elsewhere_utility)[:, None]  # shift so no exp overflows
    weights = np.exp(pull - top)
    share = weights / (np.exp(_col(p.elsewhere_utility) - top) + weights.sum(axis=1, keepdims=True))
    return _flows(utility, probability * population, _col(outside_pool(p, years_since_start)) * share)


def migration_friction(p: PopulationParams, control: np.ndarray, travel_time: np.ndarray) -> np.ndarray:
    """What a destination's attraction loses seen from an origin [utility] (run, group, origin, destination).

    w_time tt_ij + C_j for another province, plus the registration tie for registered residents
    who leave their province; +inf on the diagonal (no self-move): U_gij = A_j - friction_gij.
    It depends only on the month's levers, so the stocks' derivative computes it once a month.
    """
    cross = ~p.same_province
    levers = _col(p.travel_time_weight)[..., None] * travel_time + control[:, None, :] * cross
    tie = _col(p.registration_tie)[..., None] * cross
    friction = np.stack(np.broadcast_arrays(levers + tie, levers), axis=1)
    n = friction.shape[-1]
    friction[..., np.arange(n), np.arange(n)] = np.inf
    return friction


@dataclass(frozen=True)
class MigrationBalance:
    """Migration aggregated for the stocks: the equations of ``migration`` and ``regrouped``, without the
    flows by (run, group, origin, destination), which only the ``migration`` output needs."""

    change: np.ndarray  # net change of each group by migration [persons/year] (run, group, region)
    movers: np.ndarray  # residents moving out [persons/year] (run, group, region)
    shares: np.ndarray  # logit share of each destination among movers (run, group, origin, destination)
    to_outside: np.ndarray  # persons/year (run, group, region)
    from_outside: np.ndarray  # persons/year (run, region)


def migration_balance(
    p: PopulationParams,
    logit_base_rates,
    population,
    total,
    housing,
    jobs,
    services,
    friction,
    control,
    years_since_start: float,
    displaced: np.ndarray,
) -> MigrationBalance:
    """This month's migration summed into each group's change (the stocks' derivative uses this, not ``migration``).

    Mathematically ``regrouped(migration(...))``: the same utilities, inclusive values and logit shares,
    with the outside option kept out of the array and the sums over origins done as matrix products
    and einsum, several times faster on a batch; equal to rounding (tests/test_fast_paths.py).
    """
    attract = attraction(p, total, housing, jobs, services)
    utility = attract[:, None, None, :] - friction
    out_utility = np.stack([-p.registration_tie, np.zeros_like(p.registration_tie)], axis=1)[..., None]
    top = np.maximum(_max_last(utility), out_utility)  # shift so no exp overflows
    weights = np.exp(utility - top[..., None])
    outside = np.exp(out_utility - top)
    denominator = np.einsum("rgij->rgi", weights) + outside  # einsum: short-axis sums many times faster than .sum
    gap = top + np.log(denominator) - attract[:, None, :] - p.move_gap_2014  # inclusive value - attraction - 2014
    probability = expit(logit_base_rates + _col(p.move_sensitivity)[:, None] * gap)
    movers = (probability + displaced[:, None, :]) * population
    shares = weights / denominator[..., None]
    pull = attract - control
    top = np.maximum(_max_last(pull), p.elsewhere_utility)[:, None]
    pulls = np.exp(pull - top)
    from_outside = (
        _col(outside_pool(p, years_since_start))
        * pulls
        / (np.exp(_col(p.elsewhere_utility) - top) + np.einsum("rj->r", pulls)[:, None])
    )
    arrivals = np.einsum("rgi,rgij->rgj", movers, shares)  # sum over origins of movers x share
    kept = (movers[:, REGISTERED, None] @ (shares[:, REGISTERED] * p.same_province))[:, 0]  # stay registered
    change = np.empty_like(movers)
    change[:, REGISTERED] = kept
    change[:, MIGRANT] = arrivals[:, MIGRANT] + (arrivals[:, REGISTERED] - kept) + from_outside
    change -= movers  # every mover leaves: the shares and the outside share sum to one
    return MigrationBalance(change, movers, shares, movers * (outside / denominator), from_outside)


def regrouped(flows: MigrationFlows, same_province: np.ndarray) -> np.ndarray:
    """Net change of each group by migration (run, group, region).

    Registration is provincial: registered movers to another province arrive as migrants.
    """
    registered, migrant = flows.between[:, REGISTERED], flows.between[:, MIGRANT]
    kept = registered * same_province
    into_registered = kept.sum(axis=1)
    into_migrant = migrant.sum(axis=1) + (registered - kept).sum(axis=1) + flows.from_outside
    out = flows.between.sum(axis=3) + flows.to_outside
    return np.stack([into_registered, into_migrant], axis=1) - out


def housing_starts(p: PopulationParams, population, housing, in_construction, build_rate, cap) -> np.ndarray:
    """Housing put into construction [persons of capacity/year] (run, region); none beyond a cap."""
    wanted = np.minimum(population, cap) / _col(p.target_occupancy)
    return np.clip((wanted - housing - in_construction) / _col(p.housing_adjustment_time), 0.0, build_rate * housing)


def housing_removed(p: PopulationParams, housing, removal_rate, cap, cap_time) -> np.ndarray:
    """Housing demolished [persons of capacity/year] (run, region): campaigns plus any excess over a cap."""
    excess = np.maximum(housing - cap / _col(p.target_occupancy), 0.0)
    return removal_rate * housing + excess / cap_time


def displaced_share(removed: np.ndarray, housing: np.ndarray) -> np.ndarray:
    """Share of each region's residents whose homes are demolished [1/year] (run, region).

    Demolition clears occupied homes (group rentals, illegal structures, courtyards), so the
    residents it displaces are the removed capacity at the region's occupancy: removed / H of
    each group. They must move, and choose where as every other mover does.
    """
    return removed / housing


def fit_region_constants(
    p: PopulationParams,
    base_rates: np.ndarray,
    population: np.ndarray,
    housing: np.ndarray,
    jobs: np.ndarray,
    services: np.ndarray,
    control: np.ndarray,
    travel_time: np.ndarray,
    net_migration_target: np.ndarray,
    codes: Sequence[str],
    source: str = "regions.csv",
    compiled: bool = False,
) -> PopulationParams:
    """Region constants (alpha) that make the start's net migration equal the observed trend.

    At the start every move probability equals its observed rate, whatever alpha, so
    alpha only shares movers and arrivals among destinations. Solves
    ln(arrivals_j / (leavers_j + net target_j)) = 0: from the alpha that zeroes every
    region's attraction, a few rounds of the fixed point alpha_j -= ln(arrivals / target)
    (arrivals scale with exp(alpha_j)), then Newton with a finite-difference Jacobian and
    backtracking, run by run (a run's constants do not depend on its batch). Returns the
    parameters with alpha, the 2014 move gap and the rest of China's own utility set.
    """
    surplus = net_migration_target.sum(axis=1)
    if (surplus >= p.outside_in_migration).any():
        raise InputError(
            source,
            "population.outside_in_migration",
            f"must exceed the regions' summed 2014 net migration ({surplus.max():.0f} persons/year), "
            f"the part that only the rest of China can supply",
        )
    movers = base_rates * population
    all_movers = movers.sum(axis=(1, 2))
    stayers = (movers.sum(axis=1) <= 0) & (net_migration_target < 0)
    if stayers.any():
        region = codes[int(np.argwhere(stayers)[0, 1])]
        raise InputError(
            source, "population.out_migration_rate", f"is 0 in {region}, whose 2014 trend needs residents to move out"
        )
    if (p.outside_in_migration >= all_movers + surplus).any():
        raise InputError(
            source,
            "population.outside_in_migration",
            f"too high: even if every mover left for the rest of China, arrivals would exceed the 2014 trend "
            f"(expected less than {(all_movers + surplus).min():.0f} persons/year)",
        )
    total = population.sum(axis=1)
    unfitted = attraction(replace(p, region_constant=np.zeros_like(total)), total, housing, jobs, services)

    def start_flows(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Leavers and arrivals per region: moves at the observed rates, arrivals at the 2014 level."""
        attract = alpha + unfitted  # the attraction is linear in alpha; the rest is fixed at the start
        pull = np.exp(attract - control - _max_last(attract - control)[:, None])
        arrivals = _col(p.outside_in_migration) * pull / np.einsum("rj->r", pull)[:, None]
        utility = move_utilities(p, attract, control, travel_time)
        shares = np.exp(utility - _logsumexp(utility)[..., None])  # destinations and the rest of China
        leaving = np.einsum("rgi,rgij->ri", movers, shares)
        return leaving, np.einsum("rgi,rgij->rj", movers, shares[..., :-1]) + arrivals

    flows = start_flows
    if compiled:  # the same flows from the numba kernel (sim.stockflow_kernel; tests/test_stockflow_kernel.py)
        from sim.stockflow_kernel import start_flows as kernel

        fixed = [unfitted, control, travel_time, p.travel_time_weight, p.registration_tie, p.same_province]
        fixed = [np.ascontiguousarray(a, dtype=float) for a in (*fixed, movers, p.outside_in_migration)]

        def flows(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return kernel(np.ascontiguousarray(alpha), *fixed)

    def residual(alpha: np.ndarray) -> np.ndarray:
        leaving, arriving = flows(alpha)
        wanted = leaving + net_migration_target
        could_arrive = leaving.sum(axis=1, keepdims=True) - leaving + _col(p.outside_in_migration)
        if (wanted >= could_arrive).any():
            region = codes[int(np.argwhere(wanted >= could_arrive)[0, 1])]
            raise InputError(
                source,
                "population.out_migration_rate",
                f"too high: all other movers together could not replace {region}'s 2014 leavers",
            )
        if (wanted <= 0).any():
            region = codes[int(np.argwhere(wanted <= 0)[0, 1])]
            raise InputError(
                source, "population.out_migration_rate", f"too low: {region}'s 2014 net emigration exceeds its movers"
            )
        return np.log(arriving / wanted)

    alpha = -unfitted
    for _ in range(30):
        alpha = alpha - residual(alpha)
    alpha = _newton(residual, alpha, source)
    attract = attraction(replace(p, region_constant=alpha), total, housing, jobs, services)
    gap = _logsumexp(move_utilities(p, attract, control, travel_time)) - attract[:, None, :]
    elsewhere = _logsumexp(attract - control) + np.log((1 - p.outside_capture) / p.outside_capture)
    return replace(p, region_constant=alpha, move_gap_2014=gap, elsewhere_utility=elsewhere)


def _newton(residual, alpha: np.ndarray, source: str) -> np.ndarray:
    """Newton's method run by run with backtracking until arrivals are within 1e-11 relative of their targets."""
    runs, n = alpha.shape
    eye = np.eye(n) * 1e-6
    for _ in range(100):
        now = residual(alpha)
        error = np.abs(now).max(axis=1)
        active = error >= 1e-11
        if not active.any():
            return alpha
        jacobian = np.stack([(residual(alpha + e) - now) / 1e-6 for e in eye], axis=-1)
        step = np.where(active[:, None], np.linalg.solve(jacobian, now[..., None])[..., 0], 0.0)
        shrink = np.ones(runs)
        for _ in range(40):
            worse = active & (np.abs(residual(alpha - shrink[:, None] * step)).max(axis=1) >= error)
            if not worse.any():
                break
            shrink = np.where(worse, shrink / 2, shrink)
        else:
            break
        alpha = alpha - shrink[:, None] * step
    failed = np.flatnonzero(np.abs(residual(alpha)).max(axis=1) >= 1e-11)
    raise InputError(
        source, "population", f"region constants did not converge (run {failed[0]}); check the migration parameters"
    )
