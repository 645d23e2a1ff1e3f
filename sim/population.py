"""The population model: residents, housing and public services per region (stock and flow).

Every function here is a pure equation over arrays whose first axis is the run
(batch) axis and whose next axis is the region; origin-destination arrays add a
destination axis. Rates are per year; populations are persons.

    births_r          = birth_rate_r * P_r
    deaths_r          = death_rate_r * P_r
    attraction_j      = alpha_j + w_jobs ln(jobs_j / P_j) - w_housing P_j / H_j
                        + w_services ln(services_j / P_j) - control_j
    movers_i          = out_rate_i * P_i * exp(crowding_push * (P_i/H_i - occupancy_2014_i))
    share_ij          = logit over j != i and the outside option of
                        attraction_j - w_time * travel_time_ij   (outside: utility 0, which sets alpha's level)
    migration_ij      = movers_i * share_ij
    from_outside_j    = outside_in_migration * logit_j(attraction_j)
    dP_r/dt           = births - deaths + sum_i migration_ir - sum_j migration_rj
                        + from_outside_r - to_outside_r + household moves (a DELAY3 of staff moves)
    housing starts_r  = clip((P_r / target_occupancy - H_r - in construction_r) / adjustment_time,
                             0, max_build_rate_r * H_r);  completions = DELAY3(starts, construction_time)
    dS_r/dt           = SMOOTH(local_service_norm_r * P_r, adjustment_time)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sim.errors import InputError


@dataclass(frozen=True)
class PopulationParams:
    """Population parameters, each with the run axis first: (run,) or (run, region)."""

    birth_rate: np.ndarray  # 1/year (run, region)
    death_rate: np.ndarray  # 1/year (run, region)
    out_migration_rate: np.ndarray  # 1/year (run, region)
    outside_in_migration: np.ndarray  # persons/year (run,)
    jobs_weight: np.ndarray
    housing_weight: np.ndarray
    services_weight: np.ndarray
    travel_time_weight: np.ndarray  # utility/hour
    crowding_push: np.ndarray
    occupancy_2014: np.ndarray  # (region,)
    region_constant: np.ndarray  # alpha, utility (run, region): set by fit_region_constants
    target_occupancy: np.ndarray  # (run,)
    housing_adjustment_time: np.ndarray  # year (run,)
    construction_time: np.ndarray  # year (run,)
    max_build_rate: np.ndarray  # 1/year (run, region)
    service_adjustment_time: np.ndarray  # year (run,)
    local_service_norm: np.ndarray  # persons served per resident (run, region)


def _col(value: np.ndarray) -> np.ndarray:
    """A (run,) parameter as (run, 1) so it broadcasts along regions."""
    return value[:, None]


def attraction(p: PopulationParams, population, housing, jobs, services, control) -> np.ndarray:
    """Destination attractiveness of each region, before travel time [utility] (run, region)."""
    return (
        p.region_constant
        + _col(p.jobs_weight) * np.log(jobs / population)
        - _col(p.housing_weight) * population / housing
        + _col(p.services_weight) * np.log(services / population)
        - control
    )


def movers(p: PopulationParams, population: np.ndarray, housing: np.ndarray) -> np.ndarray:
    """Residents leaving their region per year, pushed up by crowding [persons/year] (run, region)."""
    push = np.exp(_col(p.crowding_push) * (population / housing - p.occupancy_2014))
    return p.out_migration_rate * population * push


def destination_shares(p: PopulationParams, attract: np.ndarray, travel_time: np.ndarray) -> np.ndarray:
    """Logit shares over destinations: (run, origin, destination + outside); staying is excluded."""
    utility = attract[:, None, :] - _col(p.travel_time_weight)[..., None] * travel_time
    n = attract.shape[1]
    utility[:, np.arange(n), np.arange(n)] = -np.inf
    outside = np.zeros((*utility.shape[:2], 1))  # the rest of China: utility 0, the scale of the region constants
    utility = np.concatenate([utility, outside], axis=-1)
    utility -= utility.max(axis=-1, keepdims=True)
    weights = np.exp(utility)
    return weights / weights.sum(axis=-1, keepdims=True)


def from_outside(p: PopulationParams, attract: np.ndarray) -> np.ndarray:
    """In-migration from the rest of China by destination [persons/year] (run, region)."""
    weights = np.exp(attract - attract.max(axis=-1, keepdims=True))
    return _col(p.outside_in_migration) * weights / weights.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class MigrationFlows:
    between: np.ndarray  # persons/year (run, origin, destination)
    to_outside: np.ndarray  # persons/year (run, region)
    from_outside: np.ndarray  # persons/year (run, region)

    def net(self) -> np.ndarray:
        """Net migration into each region [persons/year] (run, region)."""
        return self.between.sum(axis=1) - self.between.sum(axis=2) + self.from_outside - self.to_outside


def migration(p: PopulationParams, population, housing, jobs, services, control, travel_time) -> MigrationFlows:
    attract = attraction(p, population, housing, jobs, services, control)
    shares = destination_shares(p, attract, travel_time)
    leaving = movers(p, population, housing)[..., None] * shares
    return MigrationFlows(leaving[..., :-1], leaving[..., -1], from_outside(p, attract))


def housing_starts(p: PopulationParams, population, housing, in_construction) -> np.ndarray:
    """Housing put into construction [persons of capacity/year] (run, region)."""
    gap = population / _col(p.target_occupancy) - housing - in_construction
    return np.clip(gap / _col(p.housing_adjustment_time), 0.0, p.max_build_rate * housing)


def fit_region_constants(
    p: PopulationParams,
    population,
    housing,
    jobs,
    services,
    control,
    travel_time,
    net_migration_target,
    codes: Sequence[str],
    source: str = "regions.csv",
) -> np.ndarray:
    """Region constants (alpha) that make the initial net migration equal the observed trend.

    Solves ln(arrivals_j / (leavers_j + net target_j)) = 0 for alpha: from the alpha that
    zeroes every region's attraction, a few rounds of the fixed point
    alpha_j -= ln(arrivals / target arrivals) (arrivals scale with exp(alpha_j)), then Newton
    with a finite-difference Jacobian and backtracking. Runs are solved independently
    (per-run convergence and step length), so a run's constants do not depend on its batch.
    """
    surplus = net_migration_target.sum(axis=1)
    if (surplus >= p.outside_in_migration).any():
        raise InputError(
            source,
            "population.outside_in_migration",
            f"must exceed the regions' summed 2014 net migration ({surplus.max():.0f} persons/year), "
            f"the part that only the rest of China can supply",
        )

    all_movers = movers(p, population, housing).sum(axis=1)
    if (p.outside_in_migration >= all_movers + surplus).any():
        raise InputError(
            source,
            "population.outside_in_migration",
            f"too high: even if every mover left for the rest of China, arrivals would exceed the 2014 trend "
            f"(expected less than {(all_movers + surplus).min():.0f} persons/year)",
        )

    def residual(alpha: np.ndarray) -> np.ndarray:
        flows = migration(_with_alpha(p, alpha), population, housing, jobs, services, control, travel_time)
        leaving = flows.between.sum(axis=2) + flows.to_outside
        arriving = flows.between.sum(axis=1) + flows.from_outside
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

    # start where every region's attraction is 0, then fixed-point rounds, then Newton run by run
    alpha = -attraction(p, population, housing, jobs, services, control)
    for _ in range(30):
        alpha = alpha - residual(alpha)
    runs, n = population.shape
    eye = np.eye(n) * 1e-6
    for _ in range(100):
        now = residual(alpha)
        error = np.abs(now).max(axis=1)
        active = error >= 1e-11  # arrivals within 1e-11 relative of their targets: done
        if not active.any():
            return alpha
        jacobian = np.stack([(residual(alpha + e) - now) / 1e-6 for e in eye], axis=-1)
        step = np.where(active[:, None], np.linalg.solve(jacobian, now[..., None])[..., 0], 0.0)
        shrink = np.ones(runs)
        for _ in range(40):  # backtrack, run by run, until the residual falls
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


def _with_alpha(p: PopulationParams, alpha: np.ndarray) -> PopulationParams:
    return replace(p, region_constant=alpha)
