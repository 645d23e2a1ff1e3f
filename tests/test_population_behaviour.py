"""Population equations (sim/population.py) where tests/test_population.py leaves a wrong term unseen.

Hand-computed small cases: housing starts off their clip bounds, arrivals from the rest of
China under admission control, the region constants fitted with control in force and in a
batch of different runs, the fit's input checks at their exact bounds; directions: more
travel time to a region means fewer moves to it, a region made worse loses residents.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from test_population import two_regions

from sim.errors import InputError
from sim.population import (
    MIGRANT,
    REGISTERED,
    base_move_rates,
    displaced_share,
    fit_region_constants,
    housing_removed,
    housing_starts,
    migration,
)

pytestmark = pytest.mark.fast

POPULATION = np.array([[[60.0, 80.0], [40.0, 20.0]]])  # (run, group, region)
BASE = np.array([[[0.05, 0.05], [0.15, 0.15]]])
HOUSING, SERVICES = np.array([[100.0, 100.0]]), np.array([[100.0, 100.0]])


def flows_for(p, jobs=(100.0, 100.0), control=(0.0, 0.0), travel=None, years=0.0, population=POPULATION):
    travel = np.zeros((2, 2)) if travel is None else travel
    return migration(p, BASE, population, HOUSING, np.array([jobs]), SERVICES, np.array([control]), travel, years)


def test_housing_starts_are_the_gap_over_the_adjustment_time_less_the_pipeline():
    p = two_regions(housing_adjustment_time=np.array([4.0]))
    population, housing = np.array([[90.0, 45.0]]), np.array([[80.0, 100.0]])
    pipeline, rate = np.array([[6.0, 0.0]]), np.array([[1.0, 1.0]])  # build rate too high to bind
    starts = housing_starts(p, population, housing, pipeline, rate, np.full((1, 2), np.inf))
    # region 0 wants 90 / 0.9 = 100: (100 - 80 - 6) / 4; region 1 wants 50 < 100 housed: none, not negative
    np.testing.assert_allclose(starts, [[(100 - 80 - 6) / 4, 0.0]], rtol=1e-12)
    bound = housing_starts(p, population, housing, pipeline, np.array([[0.01, 0.01]]), np.full((1, 2), np.inf))
    np.testing.assert_allclose(bound, [[0.01 * 80, 0.0]], rtol=1e-12)


def test_housing_removal_without_a_cap_is_the_demolition_rate_only():
    p = two_regions()
    removed = housing_removed(
        p, np.array([[200.0, 50.0]]), np.array([[0.1, 0.0]]), np.full((1, 2), np.inf), np.ones((1, 2))
    )
    np.testing.assert_allclose(removed, [[20.0, 0.0]], rtol=1e-12)


def test_demolition_displaces_the_removed_share_of_residents():
    removed, housing = np.array([[20.0, 0.0]]), np.array([[200.0, 50.0]])
    np.testing.assert_allclose(displaced_share(removed, housing), [[0.1, 0.0]], rtol=1e-12)


def test_residents_of_demolished_homes_move_out_on_top_of_the_chosen_moves():
    """Region 0 loses 10 % of each group a year more (6 registered, 4 migrants), shared among
    destinations like its other movers; region 1, without demolition, moves as before."""
    p = two_regions()
    args = (p, BASE, POPULATION, HOUSING, np.array([[100.0, 100.0]]), SERVICES, np.zeros((1, 2)), np.zeros((2, 2)), 0)
    calm, cleared = migration(*args), migration(*args, displaced=np.array([[0.1, 0.0]]))

    def leaving(flows):  # (group, origin, destination + the rest of China)
        return np.concatenate([flows.between[0], flows.to_outside[0][..., None]], axis=-1)

    extra = leaving(cleared) - leaving(calm)
    np.testing.assert_allclose(extra[:, 0].sum(axis=-1), [6.0, 4.0], rtol=1e-12)
    np.testing.assert_allclose(extra[:, 1], 0.0, atol=1e-12)
    shares = leaving(calm)[:, 0] / leaving(calm)[:, 0].sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(extra[:, 0], shares * [[6.0], [4.0]], rtol=1e-12)
    np.testing.assert_allclose(cleared.from_outside, calm.from_outside, rtol=1e-12)  # arrivals unchanged


def test_arrivals_from_the_rest_of_china_by_hand_under_admission_control():
    p = two_regions(housing_weight=np.zeros(1), elsewhere_utility=np.array([np.log(2.0)]))
    flows = flows_for(p, control=(np.log(4.0), 0.0))
    # attraction 0 in both; weights e^{-ln 4} = 1/4 and 1; elsewhere e^{ln 2} = 2; pool = 100 / 0.5 = 200
    total = 0.25 + 1.0 + 2.0
    np.testing.assert_allclose(flows.from_outside, [[200 * 0.25 / total, 200 * 1.0 / total]], rtol=1e-12)


def test_arrivals_from_the_rest_of_china_follow_attraction_when_it_is_large():
    """Large utilities must not overflow (the shift by the largest) and must keep their ratios."""
    p = two_regions(housing_weight=np.zeros(1), region_constant=np.array([[800.0, 801.0]]))
    p = replace(p, elsewhere_utility=np.array([800.0]))
    flows = flows_for(p)
    weights = np.array([1.0, np.e])
    np.testing.assert_allclose(flows.from_outside, [200 * weights / (1.0 + weights.sum())], rtol=1e-12)


def test_a_batch_of_different_runs_moves_like_each_run_alone():
    """Each run's own parameters: a sum or maximum across runs instead of regions would mix them."""
    one = two_regions(housing_weight=np.zeros(1), region_constant=np.array([[0.3, -0.2]]))
    two = two_regions(housing_weight=np.zeros(1), region_constant=np.array([[-1.0, 2.0]]), elsewhere_utility=np.ones(1))
    batch = type(one)(**{f: np.concatenate([getattr(one, f), getattr(two, f)]) for f in one.__dataclass_fields__})
    batch = replace(batch, same_province=one.same_province)
    together = migration(
        batch,
        np.concatenate([BASE, BASE]),
        np.concatenate([POPULATION, POPULATION * 2]),
        np.concatenate([HOUSING, HOUSING]),
        np.array([[100.0, 100.0], [50.0, 300.0]]),
        np.concatenate([SERVICES, SERVICES]),
        np.array([[0.5, 0.0], [0.0, 1.0]]),
        np.zeros((2, 2, 2)),
        0.0,
    )
    for run, (params, population, jobs, control) in enumerate(
        [(one, POPULATION, (100.0, 100.0), (0.5, 0.0)), (two, POPULATION * 2, (50.0, 300.0), (0.0, 1.0))]
    ):
        alone = flows_for(params, jobs=jobs, control=control, population=population)
        np.testing.assert_allclose(together.between[run], alone.between[0], rtol=1e-12)
        np.testing.assert_allclose(together.to_outside[run], alone.to_outside[0], rtol=1e-12)
        np.testing.assert_allclose(together.from_outside[run], alone.from_outside[0], rtol=1e-12)
        np.testing.assert_allclose(together.net()[run], alone.net()[0], rtol=1e-12)


def test_net_migration_by_hand():
    p = two_regions(housing_weight=np.zeros(1))
    flows = flows_for(p)
    between = flows.between.sum(axis=1)
    for region, other in ((0, 1), (1, 0)):
        expected = (
            between[0, other, region]
            - between[0, region, other]
            + flows.from_outside[0, region]
            - flows.to_outside[0, :, region].sum()
        )
        assert flows.net()[0, region] == pytest.approx(expected, rel=1e-12)


def test_more_travel_time_to_a_region_means_fewer_moves_to_it_and_more_elsewhere():
    three = two_regions(
        housing_weight=np.zeros(1),
        same_province=np.eye(3, dtype=bool),
        region_constant=np.zeros((1, 3)),
        move_gap_2014=np.zeros((1, 3)),
        out_migration_rate=np.full((1, 3), 0.1),
        registration_rate=np.zeros((1, 3)),
        max_build_rate=np.full((1, 3), 0.05),
        local_service_norm=np.ones((1, 3)),
    )

    def moves(travel):
        population = np.full((1, 2, 3), 50.0)
        return migration(
            three,
            np.full((1, 2, 3), 0.1),
            population,
            np.full((1, 3), 100.0),
            np.full((1, 3), 100.0),
            np.full((1, 3), 100.0),
            np.zeros((1, 3)),
            travel,
            0.0,
        )

    near, far = np.zeros((3, 3)), np.zeros((3, 3))
    far[0, 1] = far[1, 0] = 2.0
    before, after = moves(near), moves(far)
    assert after.between[0, :, 0, 1].sum() < before.between[0, :, 0, 1].sum()
    assert after.between[0, :, 0, 2].sum() > before.between[0, :, 0, 2].sum()
    assert after.to_outside[0, :, 0].sum() > before.to_outside[0, :, 0].sum()
    # untouched pairs: from region 2 nothing about 0 or 1 changed
    np.testing.assert_allclose(after.between[0, :, 2], before.between[0, :, 2], rtol=1e-12)


def test_a_region_with_less_housing_loses_residents_to_the_others():
    p = two_regions(move_gap_2014=np.array([[np.log(2.0), np.log(2.0)]]))
    roomy = flows_for(p)
    crowded = migration(
        p,
        BASE,
        POPULATION,
        np.array([[50.0, 100.0]]),
        np.array([[100.0, 100.0]]),
        SERVICES,
        np.zeros((1, 2)),
        np.zeros((2, 2)),
        0.0,
    )
    assert crowded.net()[0, 0] < roomy.net()[0, 0] and crowded.net()[0, 1] > roomy.net()[0, 1]


# --- the region constants fitted at the start (docs/model.md section 9) ------------------------


def fit_case(runs: int = 1, **changes):
    """Three regions, two of them one province; the start's stocks and a net migration target."""
    one, three = np.ones(runs), np.ones((runs, 3))
    same = np.array([[True, True, False], [True, True, False], [False, False, True]])
    p = two_regions(
        same_province=same,
        region_constant=np.zeros((runs, 3)),
        move_gap_2014=np.zeros((runs, 3)),
        elsewhere_utility=np.zeros(runs),
        out_migration_rate=three * 0.08,
        migrant_mobility=one * 2.0,
        move_sensitivity=one,
        outside_in_migration=one * 3000.0,
        outside_capture=one * 0.3,
        outside_trend=one * 0.0,
        registration_rate=three * 0.0,
        jobs_weight=one,
        housing_weight=one,
        services_weight=one,
        travel_time_weight=one * 0.5,
        target_occupancy=one * 0.9,
        housing_adjustment_time=one,
        construction_time=one,
        max_build_rate=three * 0.05,
        service_adjustment_time=one,
        local_service_norm=three,
    )
    p = replace(p, **changes)
    population = np.tile(np.array([[[6000.0, 9000.0, 20000.0], [4000.0, 3000.0, 2000.0]]]), (runs, 1, 1))
    start = {
        "population": population,
        "housing": np.tile([[11000.0, 13000.0, 25000.0]], (runs, 1)),
        "jobs": np.tile([[9000.0, 6000.0, 9000.0]], (runs, 1)),
        "services": np.tile([[12000.0, 10000.0, 20000.0]], (runs, 1)),
        "control": np.tile([[0.7, 0.7, 0.0]], (runs, 1)),
        "travel": np.tile([[[0.0, 0.5, 2.0], [0.5, 0.0, 1.5], [2.0, 1.5, 0.0]]], (runs, 1, 1)),
        "target": np.tile([[500.0, -300.0, 400.0]], (runs, 1)),
    }
    base = base_move_rates(p, start["population"][0, MIGRANT] / start["population"][0].sum(axis=0))
    return p, base, start


def fitted(p, base, s):
    return fit_region_constants(
        p,
        base,
        s["population"],
        s["housing"],
        s["jobs"],
        s["services"],
        s["control"],
        s["travel"],
        s["target"],
        codes=("a", "b", "c"),
    )


def start_flows(p, base, s):
    return migration(p, base, s["population"], s["housing"], s["jobs"], s["services"], s["control"], s["travel"], 0.0)


def test_fitted_constants_reproduce_the_target_with_admission_control_in_force():
    p, base, s = fit_case()
    fit = fitted(p, base, s)
    flows = start_flows(fit, base, s)
    np.testing.assert_allclose(flows.net(), s["target"], rtol=1e-8)
    # at the start everyone moves at the observed rate, and the rest of China's movers are captured at c
    leaving = flows.between.sum(axis=3) + flows.to_outside
    np.testing.assert_allclose(leaving, base * s["population"], rtol=1e-10)
    np.testing.assert_allclose(flows.from_outside.sum(), 3000.0, rtol=1e-10)


def test_fitted_constants_of_a_batch_are_each_run_s_own():
    p, base, s = fit_case(runs=2)
    p = replace(p, housing_weight=np.array([1.0, 8.0]), outside_in_migration=np.array([3000.0, 2500.0]))
    s = s | {"target": np.array([[500.0, -300.0, 400.0], [-100.0, 200.0, 50.0]])}
    together = fitted(p, base, s)
    for run in range(2):
        q, _, t = fit_case(housing_weight=p.housing_weight[run : run + 1])
        q = replace(q, outside_in_migration=p.outside_in_migration[run : run + 1])
        alone = fitted(q, base, t | {"target": s["target"][run : run + 1]})
        np.testing.assert_allclose(together.region_constant[run], alone.region_constant[0], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(together.move_gap_2014[run], alone.move_gap_2014[0], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(together.elsewhere_utility[run], alone.elsewhere_utility[0], rtol=1e-8)


def test_the_fit_refuses_arrivals_that_only_just_cannot_balance_the_target():
    p, base, s = fit_case()
    movers = float((base * s["population"]).sum())
    surplus = float(s["target"].sum())
    with pytest.raises(InputError, match="outside_in_migration.*too high"):
        fitted(replace(p, outside_in_migration=np.array([movers + surplus])), base, s)
    with pytest.raises(InputError, match="must exceed"):
        fitted(replace(p, outside_in_migration=np.array([surplus])), base, s)
    fitted(replace(p, outside_in_migration=np.array([surplus * 1.5])), base, s)  # just inside: fits


def test_the_move_probability_answers_the_gap_with_its_sensitivity():
    p = two_regions(housing_weight=np.zeros(1), move_sensitivity=np.array([2.0]))
    p = replace(p, move_gap_2014=np.array([[np.log(2.0), np.log(2.0)]]))
    worse = flows_for(p, jobs=(50.0, 100.0))
    leaving = worse.between[0, MIGRANT, 0].sum() + worse.to_outside[0, MIGRANT, 0]
    from scipy.special import expit, logit

    np.testing.assert_allclose(leaving, 40 * expit(logit(0.15) + 2.0 * np.log(2.0)), rtol=1e-12)
    registered = worse.between[0, REGISTERED, 1].sum() + worse.to_outside[0, REGISTERED, 1]
    # region 1's alternatives: region 0 is worse by ln 2, so its gap falls
    gap = np.log(np.exp(-np.log(2.0)) + 1.0) - np.log(2.0)
    np.testing.assert_allclose(registered, 80 * expit(logit(0.05) + 2.0 * gap), rtol=1e-12)


# --- the Newton solver of the fit, on residuals whose behaviour is known ---------------------------


def test_newton_backtracks_where_a_full_step_would_diverge_and_each_run_stops_on_its_own():
    """Newton on arctan diverges from |x| > 1.39 without step halving; run 0 starts at the root."""
    from sim.population import _newton

    calls = []

    def residual(alpha):
        calls.append(alpha.copy())
        return np.arctan(alpha - np.array([[0.0, 0.0], [2.0, -1.0]]))

    start = np.array([[0.0, 0.0], [2.0 + 3.0, -1.0 - 2.0]])
    root = _newton(residual, start.copy(), "test.csv")
    np.testing.assert_allclose(root, [[0.0, 0.0], [2.0, -1.0]], atol=1e-10)
    assert all(np.array_equal(c[0], [0.0, 0.0]) or np.abs(c[0]).max() <= 1e-6 for c in calls)  # run 0 never moved


def test_newton_that_cannot_converge_is_a_clear_input_error():
    from sim.population import _newton

    with pytest.raises(InputError, match="region constants did not converge \\(run 1\\)"):
        _newton(lambda alpha: np.arctan(alpha) ** 2 + np.array([[0.0], [0.1]]), np.array([[0.0], [1.0]]), "x.csv")


def test_arrivals_of_runs_on_very_different_utility_scales_stay_finite():
    """The overflow shift is per run: one run's large utilities must not underflow another's."""
    big = two_regions(housing_weight=np.zeros(1), region_constant=np.array([[900.0, 900.0]]))
    big = replace(big, elsewhere_utility=np.array([900.0]))
    small = two_regions(housing_weight=np.zeros(1))
    batch = type(big)(**{f: np.concatenate([getattr(big, f), getattr(small, f)]) for f in big.__dataclass_fields__})
    batch = replace(batch, same_province=big.same_province)
    flows = migration(
        batch,
        np.concatenate([BASE, BASE]),
        np.concatenate([POPULATION, POPULATION]),
        np.concatenate([HOUSING, HOUSING]),
        np.full((2, 2), 100.0),
        np.concatenate([SERVICES, SERVICES]),
        np.zeros((2, 2)),
        np.zeros((2, 2, 2)),
        0.0,
    )
    np.testing.assert_allclose(flows.from_outside, [[200 / 3, 200 / 3], [200 / 3, 200 / 3]], rtol=1e-12)


def test_a_region_without_movers_cannot_lose_residents_by_migration():
    p, base, s = fit_case(out_migration_rate=np.array([[0.08, 0.0, 0.08]]))
    base = base_move_rates(p, s["population"][0, MIGRANT] / s["population"][0].sum(axis=0))
    with pytest.raises(InputError, match="is 0 in b, whose 2014 trend"):
        fitted(p, base, s)  # b's target is -300
    fitted(p, base, s | {"target": np.array([[500.0, 0.5, 400.0]])})  # a small gain needs no movers of its own


def batch_of_two(second: dict, target=None):
    """Run 0 fits; run 1 takes the changed parameters."""
    p, _, s = fit_case(runs=2)
    p = replace(p, **{k: np.concatenate([getattr(p, k)[:1], v]) for k, v in second.items()})
    base = base_move_rates(p, s["population"][0, MIGRANT] / s["population"][0].sum(axis=0))
    return p, base, s if target is None else s | {"target": target}


def test_the_fit_s_input_checks_look_at_each_run_alone():
    # each run fits alone, but the targets summed over both runs would exceed run 0's arrivals
    p, base, s = batch_of_two({"outside_in_migration": np.array([3000.0])}, np.array([[500.0, -300.0, 400.0]] * 2))
    fitted(replace(p, outside_in_migration=np.array([700.0, 3000.0])), base, s)
    movers = (base * s["population"]).sum(axis=(1, 2))
    p, base, s = batch_of_two({"outside_in_migration": movers[1:] + 700.0})
    with pytest.raises(InputError, match="outside_in_migration.*too high"):
        fitted(p, base, s)  # run 1 alone is impossible; the movers of both runs together would hide it
    p, base, s = batch_of_two({"out_migration_rate": np.array([[0.08, 0.9, 0.08]])})
    with pytest.raises(InputError, match="out_migration_rate.*too high"):
        fitted(p, base, s)


def test_a_region_with_a_few_movers_may_lose_fewer_residents_than_it_has_movers():
    # b's movers: under one person a year; a net loss smaller than that is a valid 2014 trend
    p, _, s = fit_case(out_migration_rate=np.array([[0.08, 0.00005, 0.08]]))
    base = base_move_rates(p, s["population"][0, MIGRANT] / s["population"][0].sum(axis=0))
    movers_b = float((base * s["population"])[0, :, 1].sum())
    assert 0.5 < movers_b < 1.0
    target = np.array([[500.0, -0.4, 400.0]])
    fit = fitted(p, base, s | {"target": target})
    np.testing.assert_allclose(start_flows(fit, base, s).net(), target, rtol=1e-8, atol=1e-9)


def test_refitting_fitted_parameters_gives_the_same_constants():
    """The fit starts from attraction without constants: parameters that carry old ones refit alike."""
    p, base, s = fit_case()
    once = fitted(p, base, s)
    twice = fitted(once, base, s)
    for name in ("region_constant", "move_gap_2014", "elsewhere_utility"):
        np.testing.assert_allclose(getattr(twice, name), getattr(once, name), rtol=1e-9, atol=1e-9, err_msg=name)


def test_the_fit_checks_each_run_s_leavers_against_that_run_s_other_movers():
    """Run 1's b loses just more than a, c and the rest of China could replace; run 0's movers do not count."""
    rate_one = fit_case(out_migration_rate=np.array([[0.08, 1.0, 0.08]]))
    per_rate = float((base_move_rates(rate_one[0], shares := mix()) * rate_one[2]["population"])[0, :, 1].sum())
    p, _, s = fit_case(runs=2)
    movers = (base_move_rates(p, shares) * s["population"]).sum(axis=1)  # (run, region) at the 0.08 rates
    # b's leavers + target (-300) against a's and c's movers + 3000 from the rest of China, in run 1 alone
    limit = movers[1, 0] + movers[1, 2] + 3000.0 + 300.0
    assert limit + movers[0].sum() > 1.1 * limit  # run 0's movers would hide the excess
    rate_b = 1.05 * limit / per_rate
    p = replace(p, out_migration_rate=np.array([[0.08, 0.08, 0.08], [0.08, rate_b, 0.08]]))
    with pytest.raises(InputError, match="out_migration_rate.*too high: all other movers together could not replace b"):
        fitted(p, base_move_rates(p, shares), s)


def mix():
    _, _, s = fit_case()
    return s["population"][0, MIGRANT] / s["population"][0].sum(axis=0)


def test_the_fit_needs_no_compiler_unless_asked(monkeypatch):
    """The numpy fit is the default: without the compiled kernel (the optional 'fast' extra) it still runs."""
    import sys

    monkeypatch.setitem(sys.modules, "sim.stockflow_kernel", None)  # importing it now fails, as without numba
    p, base, s = fit_case()
    fit = fitted(p, base, s)
    np.testing.assert_allclose(start_flows(fit, base, s).net(), s["target"], rtol=1e-8)


def test_the_compiled_fit_equals_the_numpy_fit_on_a_small_case():
    if os.environ.get("CI") != "true":
        pytest.importorskip("numba", reason="the compiled kernel needs the optional 'fast' extra")
    p, base, s = fit_case(runs=2)
    p = replace(p, housing_weight=np.array([1.0, 8.0]))
    s = s | {"target": np.array([[500.0, -300.0, 400.0], [-100.0, 200.0, 50.0]])}
    numpy_fit = fitted(p, base, s)
    compiled = fit_region_constants(
        p, base, s["population"], s["housing"], s["jobs"], s["services"], s["control"], s["travel"], s["target"],
        codes=("a", "b", "c"), compiled=True,
    )  # fmt: skip
    for name in ("region_constant", "move_gap_2014", "elsewhere_utility"):
        np.testing.assert_allclose(getattr(compiled, name), getattr(numpy_fit, name), rtol=1e-9, atol=1e-10)
    assert not np.allclose(numpy_fit.region_constant[0], numpy_fit.region_constant[1])


def test_migrants_move_at_most_at_0_99_a_year():
    p = two_regions(out_migration_rate=np.array([[0.3, 0.02]]), migrant_mobility=np.array([10.0]))
    rates = base_move_rates(p, np.array([0.05, 0.05]))
    registered = 0.3 / (0.95 + 0.05 * 10)  # 0.207: ten times that would exceed one move a year
    np.testing.assert_allclose(rates[0, :, 0], [registered, 0.99], rtol=1e-12)
    np.testing.assert_allclose(rates[0, :, 1], [0.02 / 1.45, 10 * 0.02 / 1.45], rtol=1e-12)


def test_a_region_all_but_without_housing_is_very_unattractive_but_finite():
    """Crowding P/H is capped at 1 / FLOOR (1e9), as the logarithms' ratios are floored."""
    from sim.population import FLOOR, attraction

    p = two_regions(housing_weight=np.array([2.0]))
    value = attraction(
        p, np.array([[100.0, 100.0]]), np.array([[1e-12, 100.0]]), np.full((1, 2), 100.0), np.full((1, 2), 100.0)
    )
    np.testing.assert_allclose(value, [[-2.0 / FLOOR, -2.0]], rtol=1e-12)


@pytest.mark.parametrize("where", range(4))
def test_logit_sums_stay_finite_far_from_zero_wherever_the_largest_utility_is(where):
    """The overflow shift is the maximum over the last axis, whichever element holds it (here 4 regions, 2 groups)."""
    from sim.population import _logsumexp

    utility = np.zeros((1, 2, 4))
    utility[..., where] = 1000.0
    np.testing.assert_allclose(_logsumexp(utility), np.full((1, 2), 1000.0), rtol=1e-15)
    utility[..., where] = -1000.0
    np.testing.assert_allclose(_logsumexp(utility), np.full((1, 2), np.log(3.0)), rtol=1e-12)


def test_a_region_without_movers_and_no_net_migration_is_refused_by_name():
    """No movers and a target of 0: no arrivals can be matched; the error names that region (c), not another."""
    p, _, s = fit_case(out_migration_rate=np.array([[0.08, 0.08, 0.0]]), outside_in_migration=np.array([1000.0]))
    base = base_move_rates(p, mix())
    movers_a = float((base * s["population"])[0, :, 0].sum())
    target = np.array([[0.5 - movers_a, 400.0, 0.0]])  # a's leavers exceed its loss by half a person
    with pytest.raises(InputError, match="out_migration_rate.*too low: c's 2014 net emigration exceeds its movers"):
        fitted(p, base, s | {"target": target})


def test_the_fit_names_the_scenario_s_file_when_its_solver_fails(monkeypatch):
    import sim.population as population

    seen = []
    newton = population._newton

    def spy(residual, alpha, source):
        seen.append(source)
        return newton(residual, alpha, source)

    monkeypatch.setattr(population, "_newton", spy)
    p, base, s = fit_case()
    fit_region_constants(
        p, base, s["population"], s["housing"], s["jobs"], s["services"], s["control"], s["travel"], s["target"],
        codes=("a", "b", "c"), source="scenarios/story.toml",
    )  # fmt: skip
    assert seen == ["scenarios/story.toml"]
