"""Calibration: free parameters as data, the objective, the fit written as data, and recovery of known values."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from conftest import SCENARIOS

import sim
from sim.calibration.figures import FIGURES, write_figures, yearly_series
from sim.calibration.fit import (
    Budget,
    Checkpoint,
    Fit,
    Objective,
    StockFlowObjective,
    fit_blocks,
    fit_stock_flow,
    joint_ensemble,
    laplace,
    polished,
    record_effects,
    replay_dataset,
)
from sim.calibration.parameters import FreeParameter, load_free_parameters, parameter_values
from sim.calibration.report import fitted_document, write_ensemble
from sim.calibration.targets import load_targets
from sim.errors import InputError
from sim.space import addresses


@pytest.fixture(scope="module")
def window():
    return replace(sim.load_scenario(SCENARIOS / "historical.toml"), end=2021)


@pytest.fixture(scope="module")
def effects(window):
    return record_effects(window, window.seed)


def test_free_parameters_are_valid_addresses_with_priors(window):
    space = addresses(window)
    for p in load_free_parameters():
        for address in p.addresses:
            assert address in space, address
            assert space[address].low <= p.low < p.high <= space[address].high
        parameter = p.address if p.address in window.parameters else p.address.rpartition(".")[0]  # or a region's entry
        assert (parameter in window.parameters) == (p.block == "stock_flow" or p.address.startswith("firms."))
        assert p.low < p.high and np.isfinite(p.log_prior(np.array([(p.low + p.high) / 2])))[0]
        assert np.isneginf(p.log_prior(np.array([p.high + 1])))[0]


def test_a_truncated_normal_prior_maps_the_unit_interval_into_its_bounds():
    p = FreeParameter("population.outside_trend", -0.15, 0.05, "normal", "stock_flow", (), -0.04, 0.04)
    values = p.from_unit(np.linspace(0, 1, 11))
    assert values[0] == pytest.approx(-0.15) and values[-1] == pytest.approx(0.05)
    assert np.all(np.diff(values) > 0) and values[5] == pytest.approx(-0.04, abs=0.01)


class _Known(Objective):
    """Misfits whose posterior mode is known by hand: (theta - centre) / width for the first three
    parameters, (theta^2 - 0.25) / 0.1 for the fourth (two modes, at -0.5 and +0.5). Records every
    set it is asked for."""

    def __init__(self, free, centre, width):
        self.free, self.centre, self.width = tuple(free), np.asarray(centre), np.asarray(width)
        self.asked: list[np.ndarray] = []

    def misfits(self, theta):
        theta = np.atleast_2d(theta)
        self.asked.append(theta)
        return np.column_stack([(theta[:, :3] - self.centre) / self.width, (theta[:, 3] ** 2 - 0.25) / 0.1])


def test_polishing_climbs_to_the_posteriors_mode_inside_the_bounds():
    """Modes by hand: a uniform prior leaves the misfit's centre (0.3); a normal prior 0.1 +- 0.2 and a misfit
    centred on 0.6 with width 0.1 meet at the precision-weighted mean (0.6/0.01 + 0.1/0.04) / (1/0.01 + 1/0.04)
    = 0.5; a centre beyond the bounds stops at the bound (1.0); of two modes, the one the start leads to (+0.5
    from +0.2). No set outside the bounds is asked for."""
    free = [
        FreeParameter("a", -1.0, 1.0, "uniform", "stock_flow", ()),
        FreeParameter("b", -1.0, 1.0, "normal", "stock_flow", (), 0.1, 0.2),
        FreeParameter("c", 0.0, 1.0, "uniform", "stock_flow", ()),
        FreeParameter("d", -1.0, 1.0, "uniform", "stock_flow", ()),
    ]
    objective = _Known(free, [0.3, 0.6, 1.4], [0.1, 0.1, 0.1])
    mode = polished(objective, free, np.array([-0.5, -0.5, 0.2, 0.2]), iterations=50, step=1e-4)
    assert mode == pytest.approx([0.3, 0.5, 1.0, 0.5], abs=1e-4)
    assert objective(mode[None])[0] > objective(np.array([[0.3, 0.49, 1.0, 0.5], [0.31, 0.5, 1.0, 0.5]])).max()
    asked = np.vstack(objective.asked)
    assert (asked >= [p.low for p in free]).all() and (asked <= [p.high for p in free]).all()


class _Correlated(Objective):
    """A posterior known by hand: a + b = 0.2 +- 0.1 and a - b = 0 +- 0.5 (so a and b correlate at
    (0.01 - 0.25) / (0.01 + 0.25) = -0.92), and c = 0.05 +- 0.2 cut at its lower bound 0 (its mean
    0.05 + 0.2 phi(0.25) / Phi(0.25) = 0.18)."""

    def __init__(self, free):
        self.free = tuple(free)

    def misfits(self, theta):
        a, b, c = np.atleast_2d(theta).T
        return np.column_stack([(a + b - 0.2) / 0.1, (a - b) / 0.5, (c - 0.05) / 0.2])


def test_the_joint_ensemble_draws_the_posterior_with_its_correlations_inside_the_bounds():
    free = [FreeParameter(n, lo, 1.0, "uniform", "full", ()) for n, lo in (("a", -1.0), ("b", -1.0), ("c", 0.0))]
    objective = _Correlated(free)
    best = np.array([0.1, 0.1, 0.05])
    samples, logp, acceptance = joint_ensemble(objective, free, best, walkers=32, steps=80, step=1e-3, seed=4)
    again, _, _ = joint_ensemble(objective, free, best, walkers=32, steps=80, step=1e-3, seed=4)
    np.testing.assert_array_equal(samples, again)  # the same seed, the same ensemble
    assert len(samples) == 1 + 32 * 40 and (samples[0] == best).all()  # best first, then the chain's second half
    np.testing.assert_allclose(logp, objective(samples))
    assert (samples >= [-1, -1, 0]).all() and (samples <= 1).all() and 0.2 < acceptance < 0.9
    a, b, c = samples[1:].T
    assert np.corrcoef(a, b)[0, 1] < -0.85
    assert np.std(a + b) == pytest.approx(0.1, rel=0.2) and np.std(a - b) == pytest.approx(0.5, rel=0.2)
    assert np.mean(c) == pytest.approx(0.18, abs=0.04) and np.mean(a + b) == pytest.approx(0.2, abs=0.03)


def test_laplaces_precision_is_the_misfits_curvature_in_units_of_the_bounds():
    """By hand, in units of the bounds (a and b span 2, c spans 1): d misfit / d unit is 2 / 0.1 = 20
    for a + b, 2 / 0.5 = 4 for a - b, 1 / 0.2 = 5 for c; J^T J plus 4 on the diagonal for uniform priors.
    b sits at its upper bound, where the difference steps inward."""
    free = [FreeParameter(n, lo, 1.0, "uniform", "full", ()) for n, lo in (("a", -1.0), ("b", -1.0), ("c", 0.0))]
    centre, precision = laplace(_Correlated(free), free, np.array([0.1, 1.0, 0.05]), step=1e-3)
    jacobian = np.array([[20.0, 20.0, 0.0], [4.0, -4.0, 0.0], [0.0, 0.0, 5.0]])
    np.testing.assert_allclose(centre, [0.55, 1.0, 0.05])
    np.testing.assert_allclose(precision, jacobian.T @ jacobian + 4 * np.eye(3), rtol=1e-6)


def test_a_tied_parameter_sets_each_of_its_addresses_in_runs_the_fit_and_the_ensemble(tmp_path):
    tied = FreeParameter(
        "population.registration_rate.bj_central",
        0.002,
        0.04,
        "uniform",
        "stock_flow",
        (),
        tied=("population.registration_rate.bj_core",),
    )
    plain = FreeParameter("population.jobs_weight", 0.5, 6.0, "uniform", "stock_flow", ())
    values = parameter_values([tied, plain], [0.02, 1.5])
    assert values == {
        "population.registration_rate.bj_central": 0.02,
        "population.registration_rate.bj_core": 0.02,
        "population.jobs_weight": 1.5,
    }
    fit = Fit((tied, plain), np.array([[0.02, 1.5], [0.01, 2.0]]), np.array([-1.0, -2.0]), (), 0, 2)
    document = tomllib.loads(fitted_document(fit, "command", {}))
    assert document["population"]["registration_rate"] == {"bj_central": 0.02, "bj_core": 0.02}
    write_ensemble(fit, tmp_path / "ensemble.csv")
    lines = (tmp_path / "ensemble.csv").read_text().splitlines()
    assert lines[0].split(",")[1:4] == [
        "population.registration_rate.bj_central",
        "population.registration_rate.bj_core",
        "population.jobs_weight",
    ]
    assert lines[2].split(",")[1:4] == ["0.01", "0.01", "2"]


def test_a_step_added_to_an_earlier_parameter_is_their_sum_in_runs_the_fit_and_the_ensemble(tmp_path, window):
    """The 2017 admission control is fitted as a step up from the 2015 one: runs, fitted.toml and
    ensemble.csv take the sum; the span checked against the address's range is the sum's."""
    from sim.calibration.run import check_against_space

    first = FreeParameter("policies.admission_control_2015.strength", 0.0, 1.5, "uniform", "full", ())
    step = replace(first, address="policies.admission_control_2017.strength", added_to=first.address)
    assert parameter_values([first, step], [0.9, 0.25]) == {first.address: 0.9, step.address: 1.15}
    fit = Fit((first, step), np.array([[0.9, 0.25], [0.5, 0.0]]), np.array([-1.0, -2.0]), (), 0, 2)
    kinds = {"admission_control_2015": "admission_control", "admission_control_2017": "admission_control"}
    fitted = tomllib.loads(fitted_document(fit, "command", kinds))
    assert fitted["policies"]["admission_control_2017"]["strength"] == 1.15
    write_ensemble(fit, tmp_path / "ensemble.csv")
    assert (tmp_path / "ensemble.csv").read_text().splitlines()[2].split(",")[1:3] == ["0.5", "0.5"]
    check_against_space([first, step], window, tmp_path / "free.toml")  # at most 3.0 of the range's 10
    with pytest.raises(InputError, match=r"admission_control_2017.strength.bounds.*\(added to"):
        check_against_space([first, replace(step, high=9.0)], window, tmp_path / "free.toml")  # up to 10.5
    shipped = (SCENARIOS.parent / "calibration" / "free_parameters.toml").read_text(encoding="utf-8")
    moved = shipped.replace('added_to = "policies.admission_control_2015.strength"', 'added_to = "firms.pharma_share"')
    (tmp_path / "free.toml").write_text(moved, encoding="utf-8")
    with pytest.raises(InputError, match="admission_control_2017.strength.added_to"):
        load_free_parameters(tmp_path / "free.toml")  # pharma_share is listed after it


def test_the_objective_is_best_at_the_parameters_that_made_the_data(window, effects):
    """Targets made by the model at known values: the log posterior peaks there, and a wrong value scores worse."""
    truth = {"population.jobs_weight": 3.0, "population.outside_trend": -0.06}
    ds = replay_dataset(window, effects, [truth])
    targets = {
        k: replace(t, value=float(t.model_value(ds)[0]))
        for k, t in load_targets().items()
        if t.output in ("population", "migrant_population")
    }
    free = [p for p in load_free_parameters(block="stock_flow") if p.address in truth]
    objective = StockFlowObjective(window, effects, targets, free)
    theta = np.array([[3.0, -0.06], [2.0, -0.06], [3.0, -0.02], [7.0, -0.06]])
    scores = objective(theta)
    prior = sum(p.log_prior(np.array([truth[p.address]]))[0] for p in free)
    assert scores[0] == pytest.approx(prior, abs=1e-9)  # a perfect fit: the priors only
    assert scores[1] < scores[0] and scores[2] < scores[0]
    assert np.isneginf(scores[3])  # outside the bounds


def test_a_small_fit_returns_its_best_first_inside_the_bounds(window):
    free = [p for p in load_free_parameters(block="stock_flow") if p.address == "population.outside_trend"]
    fit = fit_stock_flow(window, load_targets(), free, seed=3, design_points=8, walkers=4, steps=3, burn=1, thin=1)
    assert fit.log_posterior[0] == fit.log_posterior.max()
    assert all(p.low <= v <= p.high for p, v in zip(free, fit.samples[0]))
    # the search's 8 sets and at most the chain's 4 x 3 proposals (one outside the bounds is not run)
    assert 8 + 4 * 2 <= fit.evaluations <= 8 + 4 * 3 and set(fit.targets) <= set(load_targets())


def test_an_interrupted_calibration_resumes_after_its_last_finished_stage(tmp_path, window, monkeypatch):
    """Each finished stage is saved; a rerun skips them (here the agents' stage would fail if fitted again)
    and ends with the uninterrupted fit; a checkpoint made under another fingerprint is ignored."""
    import sim.calibration.fit as fit_module

    chosen = ("population.outside_trend", "policies.market_dispersal.rate")
    free = [p for p in load_free_parameters() if p.address in chosen]
    budget = Budget(stock_flow=(4, 4, 1, 0, 1), full=(4, 4, 1, 0, 1), cycles=1)
    path = tmp_path / "checkpoint.npz"

    def fit():
        return fit_blocks(window, load_targets(), free, budget, 1, "serial", 1, checkpoint=Checkpoint(path, "same"))

    whole = fit()
    interrupted = Checkpoint(path, "same")
    assert set(interrupted.stages) == {"stock_flow_0", "agents_0", "stock_flow_1", "ensemble"}
    del interrupted.stages["stock_flow_1"], interrupted.stages["ensemble"]  # as if stopped in the third stage
    interrupted.save("agents_0", **interrupted.stages["agents_0"])
    full_objective = fit_module.FullObjective

    def only_the_ensemble(scenario, targets, free, *args):
        assert len(free) == len(chosen), "the agents' stage was fitted again"  # the ensemble's has both blocks
        return full_objective(scenario, targets, free, *args)

    monkeypatch.setattr(fit_module, "FullObjective", only_the_ensemble)
    resumed = fit()
    np.testing.assert_array_equal(resumed.samples, whole.samples)
    assert resumed.evaluations == whole.evaluations
    assert Checkpoint(path, "other inputs").stages == {}


def test_a_polish_that_finds_nothing_better_leaves_the_best_fit(window, monkeypatch):
    """The joint polish's mode replaces the blocks' best only if its log posterior is higher: a polish
    that returns a far worse set (a corner of the bounds) leaves the same fit as no polish at all."""
    import sim.calibration.fit as fit_module

    chosen = ("population.outside_trend", "policies.market_dispersal.rate")
    free = [p for p in load_free_parameters() if p.address in chosen]
    plain = Budget(stock_flow=(4, 4, 1, 0, 1), full=(4, 4, 1, 0, 1), cycles=0)
    unpolished = fit_blocks(window, load_targets(), free, plain, 1, "serial", 1)
    monkeypatch.setattr(fit_module, "polished", lambda objective, free, *args: np.array([p.high for p in free]))
    worse = fit_blocks(window, load_targets(), free, replace(plain, polish=((0, 0.0), (1, 0.03))), 1, "serial", 1)
    np.testing.assert_array_equal(worse.samples[0], unpolished.samples[0])


@pytest.mark.slow
def test_recovery_of_known_values_from_synthetic_data(window, effects):
    """Data made at known values with noise are fitted back: 80 % of the values inside the 90 % intervals."""
    free = [
        p
        for p in load_free_parameters(block="stock_flow")
        if p.address in ("population.outside_trend", "population.registration_tie", "population.migrant_mobility")
    ]
    truth = {"population.outside_trend": -0.07, "population.registration_tie": 1.0, "population.migrant_mobility": 5.0}
    ds = replay_dataset(window, effects, [truth])
    rng = np.random.default_rng(11)
    targets = {
        k: replace(t, value=float(t.model_value(ds)[0]) + 0.3 * t.sigma * rng.normal())
        for k, t in load_targets().items()
        if t.output in ("population", "migrant_population")
    }
    fit = fit_stock_flow(window, targets, free, seed=5, design_points=64, walkers=16, steps=80, burn=40, thin=2)
    low, high = np.percentile(fit.samples, [5, 95], axis=0)
    inside = [lo <= truth[p.address] <= hi for p, lo, hi in zip(free, low, high)]
    assert np.mean(inside) >= 0.8, (low, high)
    trend = [p.address for p in free].index("population.outside_trend")  # identifiable: the docs say so
    assert high[trend] - low[trend] <= 0.5 * (free[trend].high - free[trend].low)


@pytest.mark.slow
def test_calibrate_writes_the_fit_as_data_and_the_same_seed_reproduces_it(tmp_path):
    """`calibrate` writes fitted.toml (a fragment a scenario extends), ensemble.csv and fit.md; the same seed
    gives the same files (the small budget, run twice)."""
    from sim.cli import main

    for out in ("a", "b"):
        argv = ["calibrate", str(SCENARIOS / "historical.toml"), "--budget", "small", "--out", str(tmp_path / out)]
        assert main([*argv, "--workers", "2"]) == 0
    first, second = (tmp_path / "a"), (tmp_path / "b")
    assert (first / "fitted.toml").read_text() == (second / "fitted.toml").read_text()
    assert (first / "ensemble.csv").read_text() == (second / "ensemble.csv").read_text()
    fitted = tomllib.loads((first / "fitted.toml").read_text())
    free = {address: p for p in load_free_parameters() for address in p.addresses}  # tied ones under each
    written = {f"{g}.{k}": v for g in ("population", "firms") for k, v in fitted[g].items() if not isinstance(v, dict)}
    written |= {
        f"{g}.{k}.{r}": v
        for g in ("population", "firms")
        for k, t in fitted[g].items()
        if isinstance(t, dict)
        for r, v in t.items()
    }  # one region's entry
    written |= {f"policies.{n}.{k}": v for n, t in fitted["policies"].items() for k, v in t.items() if k != "kind"}
    assert set(written) == set(free)
    for address, value in written.items():
        assert free[address].low <= value <= free[address].high
    (tmp_path / "scenarios").mkdir()  # the shipped layout: scenarios/historical.toml extends calibration/fitted.toml
    shutil.copy(SCENARIOS / "historical.toml", tmp_path / "scenarios")
    shutil.copytree(first, tmp_path / "calibration")
    uses = sim.load_scenario(tmp_path / "scenarios" / "historical.toml")
    assert uses.parameters["population.jobs_weight"] == fitted["population"]["jobs_weight"]
    assert uses.policies["market_dispersal"]["rate"] == fitted["policies"]["market_dispersal"]["rate"]
    assert "| F6_2019 |" in (first / "fit.md").read_text()
    assert all((first / f"{name}.png").stat().st_size > 10_000 for name in FIGURES)
    assert len((first / "ensemble.csv").read_text().splitlines()) > 2


def test_the_fit_figures_group_yearly_targets_and_are_written_whole(tmp_path):
    """F6 levels, F6 changes and the migrants are yearly series (2014-2019); the three figures are drawn from a
    fit and the targets' values (here the observed values themselves) without a run."""
    targets = load_targets()
    series = yearly_series(targets)
    assert set(series) == {"F6", "F6_change", "migrants"}
    assert [year for year, _ in series["F6_change"]] == list(range(2014, 2020))
    free = [p for p in load_free_parameters() if p.block == "stock_flow"][:3]
    rng = np.random.default_rng(0)
    samples = np.column_stack([rng.uniform(p.low, p.high, 20) for p in free])
    fit = Fit(tuple(free), samples, np.zeros(20), tuple(targets), 0, 20)
    best = {name: t.value for name, t in targets.items()}
    ensemble = {name: t.value * rng.uniform(0.95, 1.05, 8) for name, t in targets.items()}
    paths = write_figures(fit, targets, best, ensemble, tmp_path)
    assert [p.name for p in paths] == [f"{name}.png" for name in FIGURES]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporary left


def test_a_bad_free_parameter_file_is_named_with_its_key(tmp_path, capsys):
    """Bounds outside the address's range, an unknown address and broken TOML: one line naming file and key."""
    from sim.cli import main

    shipped = (SCENARIOS.parent / "calibration" / "free_parameters.toml").read_text(encoding="utf-8")
    unknown = '[population.moving_sensitivity]\nbounds = [0, 1]\nprior = "uniform"\nblock = "stock_flow"\n'
    cases = {
        "wide.toml": (shipped.replace("bounds = [0.0, 3.0]", "bounds = [-0.5, 3.0]", 1), "move_sensitivity.bounds"),
        "unknown.toml": (unknown, "population.moving_sensitivity"),
        "broken.toml": ("[population.jobs_weight]\nbounds = [0.5, \n", "cannot be read"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        argv = ["calibrate", str(SCENARIOS / "historical.toml"), "--budget", "small", "--out", str(tmp_path / "out")]
        assert main([*argv, "--free-parameters", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and expected in err, err
    assert not (tmp_path / "out").exists()
