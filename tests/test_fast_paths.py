"""The stocks' fast formulations equal the reference equations they replace (to rounding).

``migration_balance`` (the derivative's migration: matrix products, no 4-d array) must equal
``regrouped(migration(...))`` (the equations of docs/model.md section 4 as written); the
follow delay computed on the moving pairs only must equal ``material_delay`` on all pairs.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import material_delay
from sim.population import (
    PopulationParams,
    migration,
    migration_balance,
    migration_friction,
    regrouped,
)


def random_case(seed: int, runs: int = 5, n: int = 4):
    """A batch of random parameters and states; regions 0-1 one province, 2-3 another."""
    rng = np.random.default_rng(seed)
    province = np.array([0, 0, 1, 1])[:n]

    def runs_of(low, high, *shape):
        return rng.uniform(low, high, (runs, *shape))

    p = PopulationParams(
        out_migration_rate=runs_of(0.01, 0.1, n),
        migrant_mobility=runs_of(1, 5),
        move_sensitivity=runs_of(0, 2),
        outside_in_migration=runs_of(1e4, 1e5),
        outside_capture=runs_of(0.1, 0.5),
        outside_trend=runs_of(-0.1, 0.1),
        registration_rate=runs_of(0, 0.05, n),
        jobs_weight=runs_of(0, 4),
        housing_weight=runs_of(0, 8),
        services_weight=runs_of(0, 2),
        travel_time_weight=runs_of(0, 2),
        registration_tie=runs_of(0, 2),
        same_province=province[:, None] == province[None, :],
        region_constant=runs_of(-2, 2, n),
        move_gap_2014=runs_of(-1, 1, 2, n),
        elsewhere_utility=runs_of(-1, 3),
        target_occupancy=runs_of(0.8, 1),
        housing_adjustment_time=runs_of(1, 5),
        construction_time=runs_of(1, 3),
        max_build_rate=runs_of(0, 0.1, n),
        service_adjustment_time=runs_of(1, 5),
        local_service_norm=runs_of(0.5, 1.5, n),
    )
    population = runs_of(1e5, 1e7, 2, n)
    travel = rng.uniform(0.2, 4, (1, n, n))
    state = dict(
        base_rates=runs_of(0.01, 0.3, 2, n),
        population=population,
        housing=population.sum(axis=1) * runs_of(0.8, 1.3, n),
        jobs=population.sum(axis=1) * runs_of(0.3, 0.7, n),
        services=population.sum(axis=1) * runs_of(0.5, 1.5, n),
        control=rng.uniform(0, 2, (1, n)) * (province == 0),
        travel_time=(travel + travel.transpose(0, 2, 1)) / 2,
        displaced=runs_of(0, 0.1, n) * (rng.uniform(size=(runs, n)) < 0.5),  # demolition in some regions
    )
    return p, state


@pytest.mark.parametrize("seed", range(5))
def test_migration_balance_equals_the_reference_equations(seed):
    from scipy.special import logit

    p, s = random_case(seed)
    flows = migration(
        p,
        s["base_rates"],
        s["population"],
        s["housing"],
        s["jobs"],
        s["services"],
        s["control"],
        s["travel_time"],
        3.5,
        s["displaced"],
    )
    fast = migration_balance(
        p,
        logit(s["base_rates"]),
        s["population"],
        s["population"].sum(axis=1),
        s["housing"],
        s["jobs"],
        s["services"],
        migration_friction(p, s["control"], s["travel_time"]),
        s["control"],
        3.5,
        s["displaced"],
    )
    np.testing.assert_allclose(fast.change, regrouped(flows, p.same_province), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(fast.to_outside, flows.to_outside, rtol=1e-12)
    np.testing.assert_allclose(fast.from_outside, flows.from_outside, rtol=1e-12)
    between = fast.movers[..., None] * fast.shares
    np.testing.assert_allclose(between, flows.between, rtol=1e-12, atol=1e-300)


def test_follow_delay_on_moving_pairs_equals_the_delay_on_all_pairs():
    from sim.stockflow import _delay3

    rng = np.random.default_rng(1)
    stages = np.zeros((3, 4, 4, 3))
    inflow = np.zeros((3, 4, 4))
    origin, destination = np.array([0, 2]), np.array([1, 3])
    stages[:, origin, destination] = rng.uniform(0, 100, (3, 2, 3))
    inflow[:, origin, destination] = rng.uniform(0, 100, (3, 2))
    time = rng.uniform(0.25, 2, 3)
    reference, outflow = material_delay(inflow, stages, time[:, None, None])
    pairs, arriving = _delay3(inflow[:, origin, destination], stages[:, origin, destination], 3 / time[:, None])
    np.testing.assert_allclose(pairs, reference[:, origin, destination], rtol=1e-15)
    np.testing.assert_allclose(arriving, outflow[:, origin, destination], rtol=1e-15)
    untouched = np.ones((4, 4), bool)
    untouched[origin, destination] = False
    assert not reference[:, untouched].any()  # pairs that never moved staff have nothing to compute
