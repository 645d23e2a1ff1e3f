"""Sweeps: sweep-file validation, designs, the sweep folder, resume after kills, failures, backends, sensitivity."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import sim
from sim.cli import main
from sim.experiments import evaluate, load_sweep, sweep
from sim.experiments.designs import Distribution, sample
from sim.experiments.sensitivity import morris_indices, sobol_indices
from sim.outputs.describe import _flat

needs_salib = pytest.mark.skipif(
    find_spec("SALib") is None, reason="SALib is the experiments extra: pip install '.[experiments]'"
)
ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "scenarios" / "plan2021.toml"

SWEEP = """
scenario = "short.toml"
[uncertainties."population.jobs_weight"]
low = 1.5
high = 2.5
[levers."policies.admission_control_2015.strength"]
distribution = "triangular"
low = 0.2
mode = 0.5
high = 1.0
[levers."policies.rail_beijing_tangshan.date"]  # opens after the run ends: no effect
low = 2020-01-01
high = 2030-01-01
[design]
method = "{method}"
samples = {samples}
seed = 3
[replications]
count = {replications}
seed = 11
[outputs]
variables = ["population"]
regions = ["beijing", "xiongan"]
times = [2014, 2015]
[outputs.summaries.beijing_end]
variable = "population"
regions = ["beijing"]
time = 2015
[execution]
backend = "serial"
chunk = {chunk}
"""


def write_sweep(folder: Path, method: str = "lhs", samples: int = 6, replications: int = 1, chunk: int = 2, extra=""):
    (folder / "short.toml").write_text(f'extends = "{PLAN}"\nname = "short"\n[run]\nend = 2015\n')
    path = folder / "sweep.toml"
    path.write_text(SWEEP.format(method=method, samples=samples, replications=replications, chunk=chunk) + extra)
    return path


# -- sweep files ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, key, message",
    [
        ("high = 2.5", "uncertainties.population.jobs_weight.high", "value 25.0 is out of range"),
        (
            '[levers."policies.admission_control_2015.strength"]',
            "levers.policies.admission_contrl_2015.strength",
            "unknown address; did you mean",
        ),
        ('method = "{method}"', "design.method", "unknown value 'latin'"),
        ("count = {replications}", "replications.count", "expected an integer from 1"),
        ("mode = 0.5", "levers.policies.admission_control_2015.strength.mode", "expected mode between low and high"),
        ('variables = ["population"]', "outputs.variables", "unknown value 'populaton'"),
        ("times = [2014, 2015]", "outputs.times[1]", "outside the run"),
        ("chunk = {chunk}", "execution.chunk", "expected an integer from 1"),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_file_and_key(tmp_path, capsys, change, key, message):
    replacement = {
        "high = 2.5": "high = 25.0",
        '[levers."policies.admission_control_2015.strength"]': '[levers."policies.admission_contrl_2015.strength"]',
        'method = "{method}"': 'method = "latin"',
        "count = {replications}": "count = 0",
        "mode = 0.5": "mode = 1.5",
        'variables = ["population"]': 'variables = ["populaton"]',
        "times = [2014, 2015]": "times = [2014, 2031]",
        "chunk = {chunk}": "chunk = -1",
    }[change]
    path = write_sweep(tmp_path)
    text = SWEEP.replace(change, replacement).format(method="lhs", samples=4, replications=1, chunk=2)
    path.write_text(text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"error: {path}: {key}: ") and message in err, err
    assert not (tmp_path / "out").exists()


@needs_salib
def test_shipped_sweep_files_are_valid():
    for name in ("uncertainty_lhs", "levers_sobol"):
        spec = load_sweep(ROOT / "scenarios" / "sweeps" / f"{name}.toml")
        design = spec.design()
        assert len(design.points) >= 16 and len(spec.parameters) >= 3
        # every point of the design is a valid scenario (validation only: issue 6's per-run policies)
        for point in design.points[:8]:
            sim.space.with_values(spec.scenario, point, "design")



def test_uncertainty_sweep_ranges_contain_the_fitted_values():
    """The uncertainty sweep spans the calibration's fit: a refit that moves a value out fails here."""
    import tomllib

    with open(ROOT / "scenarios" / "sweeps" / "uncertainty_lhs.toml", "rb") as file:
        ranges = tomllib.load(file)["uncertainties"]
    with open(ROOT / "calibration" / "fitted.toml", "rb") as file:
        fitted = _flat(tomllib.load(file))  # sim.outputs.describe's: a nested table as dotted addresses
    space = sim.space.addresses(sim.scenario.load_scenario(ROOT / "scenarios" / "historical.toml"))
    outside = []
    for name, spec in ranges.items():
        # the fitted value where the calibration fits the parameter, else the scenario's own
        value = fitted.get(name, space[name].value)
        if not spec["low"] <= value <= spec["high"]:
            outside.append(f"{name}: {value} not in [{spec['low']}, {spec['high']}]")
    assert not outside, outside
    assert sum(name in fitted for name in ranges) >= 7  # the check is mostly against the fit


# -- designs ----------------------------------------------------------------------------------
PARAMETERS = [
    Distribution("x", "uncertainty", "uniform", "number", low=1.0, high=3.0),
    Distribution("n", "lever", "uniform", "integer", low=2, high=5),
    Distribution("k", "lever", "levels", "bool", levels=(False, True)),
    Distribution("d", "lever", "uniform", "date", low=2020.0, high=2024.0),
    Distribution("t", "uncertainty", "triangular", "number", low=0.0, high=1.0, mode=0.8),
    Distribution("g", "uncertainty", "normal", "number", low=0.0, high=10.0, mean=5.0, sd=1.0),
]


@pytest.mark.parametrize(
    "method",
    [
        "grid",
        "monte_carlo",
        "lhs",
        "sobol",
        pytest.param("saltelli", marks=needs_salib),
        pytest.param("morris", marks=needs_salib),
    ],
)
def test_each_sampler_covers_its_ranges_and_honours_types(method):
    design = sample(method, PARAMETERS, 64, seed=7, points=3)
    again = sample(method, PARAMETERS, 64, seed=7, points=3)
    other = sample(method, PARAMETERS, 64, seed=8, points=3)
    assert design.points == again.points
    assert method == "grid" or design.points != other.points
    column = {name: [p[name] for p in design.points] for name in design.names}
    xs = np.array(column["x"])
    assert xs.min() >= 1.0 and xs.max() <= 3.0
    assert xs.min() < 1.3 and xs.max() > 2.7  # spans the range
    assert all(isinstance(n, int) for n in column["n"]) and set(column["n"]) == {2, 3, 4, 5} - (
        {3} if method == "grid" else set()
    )
    assert set(column["k"]) == {False, True}
    assert all(isinstance(d, dt.date) and dt.date(2020, 1, 1) <= d <= dt.date(2024, 1, 1) for d in column["d"])
    assert max(column["d"]) - min(column["d"]) > dt.timedelta(days=3 * 365)
    assert 0.0 <= min(column["t"]) and max(column["t"]) <= 1.0
    assert all(0.0 <= g <= 10.0 for g in column["g"])
    if method in ("monte_carlo", "lhs", "sobol", "saltelli"):
        assert np.mean(column["t"]) == pytest.approx((0 + 1 + 0.8) / 3, abs=0.06)  # the triangle's mean
        assert np.mean(column["g"]) == pytest.approx(5.0, abs=0.3)


def test_grid_takes_every_level_and_the_ends_of_each_range():
    design = sample("grid", PARAMETERS[:4], 0, seed=0, points=3)
    assert len(design.points) == 3 * 3 * 2 * 3
    assert {p["x"] for p in design.points} == {1.0, 2.0, 3.0}
    assert {p["d"] for p in design.points} == {dt.date(2020, 1, 1), dt.date(2022, 1, 1), dt.date(2024, 1, 1)}


# -- the sweep folder ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted sweep: 6 design points x 2 replications, serial."""
    folder = tmp_path_factory.mktemp("reference")
    path = write_sweep(folder, replications=2)
    calls = []
    result = sweep(path, folder / "out", progress=lambda done, total: calls.append((done, total)))
    return path, result, calls


def test_sweep_folder_holds_design_results_manifest(reference):
    path, result, calls = reference
    spec = load_sweep(path)
    out = result.folder
    assert {"design.csv", "results.nc", "manifest.json", "failures.csv", "journal.jsonl", "sweep.toml"} <= {
        p.name for p in out.iterdir()
    }
    design = (out / "design.csv").read_text().splitlines()
    assert design[0] == "run,point,replication,seed," + ",".join(p.address for p in spec.parameters)
    assert len(design) == 1 + 12
    dataset = result.dataset()
    assert dataset.sizes["run"] == 12 and list(dataset.seed.values) == [11, 12] * 6  # common random numbers
    points = spec.design().points
    for run in range(12):
        for parameter in spec.parameters:
            value = points[run // 2][parameter.address]
            expected = sim.scenario.decimal_year(value, path, "") if isinstance(value, dt.date) else value
            assert dataset[parameter.address].values[run] == pytest.approx(expected)
    assert set(dataset.region.values) == {"bj_core", "bj_central", "bj_tongzhou", "bj_other", "xiongan"}
    assert list(dataset.time.values) == [2014.0, 2015.0]
    np.testing.assert_allclose(
        dataset.beijing_end.values,
        dataset.population.sel(time=2015.0, region=["bj_core", "bj_central", "bj_tongzhou", "bj_other"]).sum("region"),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"] == 12 and manifest["failures"] == 0 and manifest["config_hash"]
    assert calls[-1] == (12, 12) and [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_runs_equal_the_same_runs_made_one_by_one(reference):
    """A sweep's numbers are the model's: run 5 again through sim.run with its values and seed."""
    path, result, _ = reference
    spec, dataset = load_sweep(path), result.dataset()
    point = spec.design().points[2]
    alone = sim.run(spec.scenario, params=point, seed=11)
    np.testing.assert_allclose(
        dataset.population.isel(run=4).sel(time=2015.0, region="xiongan").values,
        alone.population.sel(region="xiongan").values[-1],
        rtol=1e-12,
    )


def test_resume_after_sigkill_equals_an_uninterrupted_sweep(reference, tmp_path):
    path, result, _ = reference
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--no-analysis"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(journal.read_text().splitlines())
    assert 2 <= finished < 6, "the sweep must be killed mid-way"
    assert subprocess.run(command, cwd=ROOT, capture_output=True).returncode == 0
    runs = [r for line in journal.read_text().splitlines() for r in json.loads(line)["runs"]]
    assert sorted(runs) == list(range(12))  # every run id once: none lost, none repeated
    xr.testing.assert_identical(xr.load_dataset(out / "results.nc"), result.dataset())


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:  # exited meanwhile
        return b""


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.slow  # 20-40 s: spawns a pool twice
def test_a_worker_killed_mid_run_is_replaced_and_the_sweep_completes(reference, tmp_path):
    path, result, _ = reference
    out = tmp_path / "worker"
    command = [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--no-analysis"]
    command += ["--backend", "processes", "--workers", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not journal.exists() or not journal.read_text()):
        time.sleep(0.05)
    workers = [c for c in _children(process.pid) if b"spawn_main" in _cmdline(c)]
    assert workers, "no worker process found"
    assert len(journal.read_text().splitlines()) < 6, "the sweep finished before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    runs = [r for line in journal.read_text().splitlines() for r in json.loads(line)["runs"]]
    assert sorted(runs) == list(range(12))
    xr.testing.assert_identical(xr.load_dataset(out / "results.nc"), result.dataset())


def test_the_backend_and_worker_count_do_not_change_the_results(reference, tmp_path):
    path, result, _ = reference
    two = sweep(path, tmp_path / "two", backend="processes", workers=2, analysis=False)
    xr.testing.assert_identical(two.dataset(), result.dataset())


@pytest.mark.slow
def test_dask_local_cluster_gives_the_local_backends_dataset(reference, tmp_path):
    pytest.importorskip("distributed")
    path, result, _ = reference
    on_dask = sweep(path, tmp_path / "dask", backend="dask", workers=2, scheduler="local", analysis=False)
    xr.testing.assert_identical(on_dask.dataset(), result.dataset())


def test_failed_runs_are_recorded_and_the_rest_complete(tmp_path, capsys):
    extra = """
[levers."policies.universities_to_xiongan.start"]  # each level is valid alone,
levels = [2022-01-01, 2025-01-01]
[levers."policies.universities_to_xiongan.end"]    # but a start in 2025 and an end in 2024 fail
levels = [2024-01-01, 2026-01-01]
"""
    path = write_sweep(tmp_path, method="grid", samples=1, chunk=4, extra=extra)
    path.write_text(path.read_text().replace('method = "grid"', 'method = "grid"\npoints = 2'))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--no-analysis"]) == 0
    dataset = xr.load_dataset(out / "results.nc")
    start, end = dataset["policies.universities_to_xiongan.start"], dataset["policies.universities_to_xiongan.end"]
    failed = (start > end).values
    assert failed.sum() == 8 and (~failed).sum() == 24
    assert np.isnan(dataset.beijing_end.values[failed]).all() and np.isfinite(dataset.beijing_end.values[~failed]).all()
    rows = (out / "failures.csv").read_text().splitlines()
    assert (
        len(rows) == 9 and '2025-01-01,2024-01-01,"run 2: policies.universities_to_xiongan.end: ends before' in rows[1]
    )
    assert "8 failed" in capsys.readouterr().out
    assert main(["sweep", str(path), "--out", str(out), "--no-analysis", "--fail-on-error"]) == 1


def test_a_folder_of_another_sweep_is_refused(reference, tmp_path):
    path, result, _ = reference
    other = write_sweep(tmp_path, samples=5)
    with pytest.raises(sim.InputError, match="holds a different sweep"):
        sweep(other, result.folder)


# -- sensitivity --------------------------------------------------------------------------------
def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


@needs_salib
def test_sobol_indices_of_the_ishigami_function_match_the_analytic_values():
    """a = 7, b = 0.1 (Ishigami & Homma 1990): S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437)."""
    parameters = [Distribution(n, "uncertainty", "uniform", "number", low=-math.pi, high=math.pi) for n in "abc"]
    design = sample("saltelli", parameters, 2048, seed=1, second_order=False)
    x = np.array([[p[n] for n in "abc"] for p in design.points])
    indices = sobol_indices(design, ishigami(x), seed=1)
    tolerance = 0.03  # absolute, for N = 2048 base samples with this seed
    np.testing.assert_allclose(indices["S1"], [0.3139, 0.4424, 0.0], atol=tolerance)
    np.testing.assert_allclose(indices["ST"], [0.5576, 0.4424, 0.2437], atol=tolerance)
    assert (indices["S1_conf"] < 0.1).all()


@needs_salib
def test_morris_ranks_the_ishigami_inputs():
    parameters = [Distribution(n, "uncertainty", "uniform", "number", low=-math.pi, high=math.pi) for n in "abc"]
    design = sample("morris", parameters, 100, seed=2)
    x = np.array([[p[n] for n in "abc"] for p in design.points])
    mu_star = morris_indices(design, ishigami(x), seed=2)["mu_star"]
    assert mu_star[1] > mu_star[0] > mu_star[2] > 0  # x2 strongest, x3 acts only with x1


@needs_salib
def test_on_the_model_an_output_that_does_not_depend_on_a_parameter_gets_no_index(tmp_path):
    path = write_sweep(tmp_path, method="morris", samples=2, chunk=8)
    result = sweep(path, tmp_path / "out")
    indices = (result.folder / "sensitivity" / "indices.csv").read_text().splitlines()
    mu = {line.split(",")[2]: float(line.split(",")[4]) for line in indices if ",mu_star," in line}
    assert mu["policies.rail_beijing_tangshan.date"] == 0.0  # opens after the run ends
    assert mu["population.jobs_weight"] > 100  # while the jobs pull moves Beijing's population
    summary = (result.folder / "sensitivity" / "summary.md").read_text()
    assert "beijing_end" in summary and (result.folder / "sensitivity" / "indices_beijing_end.png").exists()


OWN_JOBS_WEIGHT = sim.load_scenario(ROOT / "scenarios" / "historical.toml").parameters["population.jobs_weight"]
"""The shipped scenario's own value (calibration/fitted.toml), so runs 0 and 1 hold it."""
STOCK_FLOW = """
scenario = "short.toml"
[uncertainties."population.jobs_weight"]
levels = [{own}, 3.0]
[uncertainties."population.out_migration_rate.bj_core"]
levels = [0.05, 0.06]
[design]
method = "grid"
[replications]
count = 2
seed = 4
[outputs]
variables = ["population"]
[execution]
backend = "serial"
mode = "{mode}"
chunk = 4
"""


def test_stock_flow_mode_replays_the_full_run_exactly_at_its_own_values(tmp_path):
    """Run 0 and 1 hold the scenario's own values: the replay of their seeds' effects is the full run."""
    write_sweep(tmp_path)
    results = {}
    for mode in ("stock-flow", "full"):
        path = tmp_path / f"{mode}.toml"
        path.write_text(STOCK_FLOW.format(mode=mode, own=OWN_JOBS_WEIGHT))
        results[mode] = sweep(path, tmp_path / mode, analysis=False).dataset()
    replayed, full = results["stock-flow"].population, results["full"].population
    assert (replayed.sel(run=[0, 1]) == full.sel(run=[0, 1])).all()
    assert not np.allclose(replayed.sel(run=[2, 3]), replayed.sel(run=[0, 1]))  # the parameters act


def test_stock_flow_mode_refuses_what_it_cannot_vary_or_compute(tmp_path):
    write_sweep(tmp_path)
    path = tmp_path / "sd.toml"
    path.write_text(
        STOCK_FLOW.format(mode="stock-flow", own=OWN_JOBS_WEIGHT)
        + '[levers."policies.admission_control_2017.strength"]\nlow = 1\nhigh = 2\n'
    )
    with pytest.raises(sim.InputError, match=r"levers.policies.admission_control_2017.strength: execution.mode"):
        load_sweep(path)
    path.write_text(STOCK_FLOW.format(mode="stock-flow", own=OWN_JOBS_WEIGHT).replace('["population"]', '["firms"]'))
    with pytest.raises(sim.InputError, match=r"outputs: 'firms' is not an output of the stock-and-flow part"):
        load_sweep(path)


def test_evaluate_runs_parameter_sets_on_workers_in_memory(reference):
    """The calibration's entry point: the same numbers as the sweep, failures returned, not raised."""
    path, result, _ = reference
    spec = load_sweep(path)
    points = spec.design().points
    values = [points[0], points[1], {"policies.admission_control_2015.strength": -1.0}]
    dataset, failures = evaluate(spec.scenario, values, [11, 11, 11], ["population"], backend="serial", chunk=2)
    reference_population = result.dataset().population.sel(time=2015.0)
    np.testing.assert_array_equal(
        dataset.population.sel(time=2015.0, region=reference_population.region).isel(run=[0, 1]),
        reference_population.isel(run=[0, 2]),
    )
    assert [f["run"] for f in failures] == [2] and "out of range" in failures[0]["error"]
    assert np.isnan(dataset.population.isel(run=2)).all()


def test_runs_stopped_by_the_state_checks_are_failures_of_the_sweep(tmp_path, monkeypatch):
    """A run whose stocks go negative is masked by the model's checks and listed as a failed run."""
    from sim.stockflow import StockFlow

    advance = StockFlow.advance

    def broken(self, time, inputs):  # runs with a jobs weight above 2.2 reach a negative population
        advance(self, time, inputs)
        bad = self.params.jobs_weight.reshape(self.runs) > 2.2
        if time >= self.scenario.start + 0.5 and bad.any():
            population = self.state["population"].copy()
            population[bad, -1, 0] = -1234.0
            self.state["population"] = population

    monkeypatch.setattr(StockFlow, "advance", broken)
    path = write_sweep(tmp_path, samples=6, chunk=3)
    result = sweep(path, tmp_path / "out", analysis=False)
    dataset = result.dataset()
    bad = dataset["population.jobs_weight"].values > 2.2
    assert 0 < bad.sum() < 6 and [f["run"] for f in result.failures] == list(np.flatnonzero(bad))
    assert all("population in bj_core is negative" in f["error"] for f in result.failures)
    assert np.isfinite(dataset.beijing_end.values[~bad]).all() and np.isnan(dataset.beijing_end.values[bad]).all()


@needs_salib
def test_check_validates_a_sweep_file_without_running_it(capsys):
    path = ROOT / "scenarios" / "sweeps" / "levers_sobol.toml"
    assert main(["sweep", str(path), "--check"]) == 0
    assert "ok (saltelli, 576 points x 1 replications = 576 runs of plan2021, 7 varied)" in capsys.readouterr().out
