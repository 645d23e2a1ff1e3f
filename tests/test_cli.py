"""The ``run`` command end to end: what a run folder holds, and the command line's own errors.

One full historical run (no plots) is shared by the module; a short run with plots and
``--seed 5`` is the other. Both go through ``sim.cli.main`` in-process; one short run goes
through a real ``python -m sim`` subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

import sim
import sim.plots
from sim.cli import main
from sim.runfolder import verify_run_folder

ROOT = Path(__file__).resolve().parents[1]
HISTORICAL = ROOT / "scenarios" / "historical.toml"
RUN_FILES = ("results.nc", "results.csv", "scenario.toml", "events.csv", "manifest.json")
PLOTS = tuple(f"{name}.png" for name in sim.plots.RUN_FIGURES)  # PNG by default; SVG with --svg


def short_scenario(folder: Path, end: int) -> Path:
    """The historical scenario cut short: a fast run that still fires some policies."""
    path = folder / f"short_{end}.toml"
    path.write_text(f"extends = '{HISTORICAL.as_posix()}'\nname = 'short'\n[run]\nend = {end}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def historical_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "historical"
    assert main(["run", str(HISTORICAL), "--out", str(folder), "--no-plots"]) == 0
    return folder


@pytest.fixture(scope="module")
def plotted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli_plots")
    folder = base / "run"
    assert main(["run", str(short_scenario(base, 2021)), "--out", str(folder), "--seed", "5"]) == 0
    return folder


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def test_run_writes_every_file(historical_run: Path) -> None:
    for name in RUN_FILES:
        assert (historical_run / name).is_file(), name
        assert (historical_run / name).stat().st_size > 0, name
    assert not list(historical_run.rglob("*.partial")), "no half-written files are left behind"
    assert not list(historical_run.rglob("*.png")), "--no-plots writes no plots"


def test_manifest_records_provenance(historical_run: Path) -> None:
    record = manifest(historical_run)
    scenario = sim.load_scenario(HISTORICAL)
    assert record["seed"] == scenario.seed == 20140226
    assert record["config_hash"] == scenario.config_hash
    assert record["package_version"] == sim.__version__
    assert record["scenario"] == "historical"
    wall = record["wall_time_s"]
    assert wall["run"] > 0 and wall["plots"] >= 0
    assert set(RUN_FILES) - {"manifest.json"} <= set(record["files"])


def test_written_scenario_loads_again_with_the_same_hash(historical_run: Path) -> None:
    written = sim.load_scenario(historical_run / "scenario.toml")
    original = sim.load_scenario(HISTORICAL)
    assert written.config_hash == original.config_hash == manifest(historical_run)["config_hash"]
    assert written.policies.keys() == original.policies.keys()
    assert (written.start, written.end, written.seed, written.method) == (2014, 2035, 20140226, "rk4")


def test_netcdf_matches_the_manifest(historical_run: Path) -> None:
    with xr.open_dataset(historical_run / "results.nc", engine="scipy") as results:
        assert results.attrs["config_hash"] == manifest(historical_run)["config_hash"]
        assert float(results.time[0]) == 2014.0 and float(results.time[-1]) == 2035.0
        assert "population" in results and "run" not in results.dims


def test_tidy_csv_columns(historical_run: Path) -> None:
    with open(historical_run / "results.csv", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    with xr.open_dataset(historical_run / "results.nc", engine="scipy") as results:
        dims = list(results.dims)
    assert header[-3:] == ["variable", "value", "unit"] and header[:2] == ["time", "region"]
    assert sorted(header[:-3]) == sorted(dims), "a column for every dimension (destination included)"
    assert float(rows[0][0]) == 2014.0
    float(rows[0][header.index("value")])
    labels = [tuple(r[: header.index("value")]) for r in rows]
    assert len(set(labels)) == len(labels), "every value has its own labels (migration: origin and destination)"


def _pandas_tidy_csv(dataset: xr.Dataset) -> bytes:
    """What run folders held before the csv module wrote them: the tidy frame through pandas."""
    import pandas as pd

    frames = []
    for name, variable in dataset.data_vars.items():
        frame = variable.to_dataframe(name="value").reset_index()
        frame = frame.drop(columns=[c for c in ("seed",) if c in frame.columns])
        frame.insert(0, "variable", name)
        frame["unit"] = variable.attrs["units"]
        frames.append(frame)
    columns = ["time", *[c for c in dataset.dims if c != "time"], "variable", "value", "unit"]
    return pd.concat(frames, ignore_index=True).reindex(columns=columns).to_csv(index=False).encode("utf-8")


def test_tidy_csv_is_the_bytes_pandas_wrote(tmp_path: Path) -> None:
    from sim.results import write_tidy_csv

    dataset = sim.run(sim.load_scenario(short_scenario(tmp_path, 2016)))
    dataset.attrs.pop("events")
    write_tidy_csv(dataset, tmp_path / "mine.csv")
    assert (tmp_path / "mine.csv").read_bytes() == _pandas_tidy_csv(dataset)
    # by hand: dimensions in another order than the columns, a missing value, labels and units that need quotes
    odd = xr.Dataset(
        {
            "a": (("time", "sector", "region"), [[[1.5, float("nan")]], [[1e-05, 2e16]]], {"units": 'per "unit"'}),
            "b": (("time",), [0.1 + 0.2, -0.0], {"units": "x, y"}),
        },
        coords={"time": [2014.0, 2014 + 1 / 12], "region": ["r,1", "r2"], "sector": ["s"]},
    )
    write_tidy_csv(odd, tmp_path / "odd.csv")
    assert (tmp_path / "odd.csv").read_text(encoding="utf-8") == (
        "time,sector,region,variable,value,unit\n"
        '2014.0,s,"r,1",a,1.5,"per ""unit"""\n'
        '2014.0,s,r2,a,,"per ""unit"""\n'
        '2014.0833333333333,s,"r,1",a,1e-05,"per ""unit"""\n'
        '2014.0833333333333,s,r2,a,2e+16,"per ""unit"""\n'
        '2014.0,,,b,0.30000000000000004,"x, y"\n'
        '2014.0833333333333,,,b,-0.0,"x, y"\n'
    )
    assert (tmp_path / "odd.csv").read_bytes() == _pandas_tidy_csv(odd)


def test_event_log(historical_run: Path) -> None:
    with open(historical_run / "events.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["month", "time", "policy", "action"]
    policies = {row["policy"] for row in rows}
    assert {"catalogue_2014", "subcenter_first_batch"} <= policies


def test_seed_option_overrides_the_scenario_seed(plotted_run: Path) -> None:
    record = manifest(plotted_run)
    assert record["seed"] == 5
    with xr.open_dataset(plotted_run / "results.nc", engine="scipy") as results:
        assert int(results.seed) == 5


def test_plots_are_written(plotted_run: Path) -> None:
    for name in PLOTS:
        path = plotted_run / "plots" / name
        assert path.is_file(), name
        assert path.stat().st_size > 10_000, f"{name} is suspiciously small"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = sorted(p.name for p in (plotted_run / "plots").iterdir())
    assert drawn == ["beijing_and_plans.png", "population_by_region.png"], "by default the two figures to open first"
    assert {f"plots/{name}" for name in PLOTS} <= set(manifest(plotted_run)["files"])


def test_other_figures_and_svg_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    short = str(short_scenario(tmp_path, 2015))
    assert main(["run", short, "--out", str(folder), "--svg", "--figures", "jobs_and_firms, population_by_region"]) == 0
    drawn = sorted(p.name for p in (folder / "plots").iterdir())
    assert drawn == [f"{name}.{ext}" for name in ("jobs_and_firms", "population_by_region") for ext in ("png", "svg")]
    for name in drawn:
        assert (folder / "plots" / name).stat().st_size > 10_000, name
    assert (folder / "plots" / "population_by_region.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    verify_run_folder(folder)
    # a name that is no figure: refused before the run, with the names there are
    with pytest.raises(SystemExit) as exit_info:
        main(["run", short, "--out", str(tmp_path / "other"), "--figures", "jobs_and_firm"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--figures" in error and "'jobs_and_firm'" in error and "relocation_counters" in error
    assert not (tmp_path / "other").exists()


def test_figure_choices() -> None:
    from sim.outputs.figures import FIGURES

    assert sim.plots.ALL_FIGURES == tuple(FIGURES), "the command line's names are the figures there are"
    assert sim.plots.figure_names("all") == tuple(FIGURES)
    assert sim.plots.figure_names("key") == ("population_by_region", "beijing_and_plans")
    assert sim.plots.figure_names("none") == ()
    assert sim.plots.figure_names("flow_matrix,flow_matrix") == ("flow_matrix",)
    with pytest.raises(ValueError, match="expected key, all, none"):
        sim.plots.figure_names(",")


def test_run_reports_one_line_per_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Several scenarios with --out DIR: one folder DIR/NAME each, one summary line each."""
    first = short_scenario(tmp_path, 2015)
    second = tmp_path / "other.toml"
    second.write_text(f"extends = '{first.name}'\nname = 'other'\n", encoding="utf-8")
    assert main(["run", str(first), str(second), "--out", str(tmp_path / "runs"), "--no-plots"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and err == ""
    assert (tmp_path / "runs" / "short" / "manifest.json").is_file()
    assert (tmp_path / "runs" / "other" / "manifest.json").is_file()


@pytest.mark.parametrize("seed", ["-1", "x", "99999999999999999999"])
def test_bad_seed_option_exits_2(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(HISTORICAL), "--seed", seed])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "Traceback" not in err


def test_out_that_is_a_file_exits_2_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder", encoding="utf-8")
    assert main(["run", str(HISTORICAL), "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "taken" in err and "--out" in err and "Traceback" not in err


def test_no_command_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_subprocess_run(tmp_path: Path) -> None:
    """The real entry point writes a complete run folder and exits 0."""
    scenario = short_scenario(tmp_path, 2015)
    result = subprocess.run(
        [sys.executable, "-m", "sim", "run", scenario.name, "--out", "out", "--no-plots", "--seed", "3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this tree's sim, not the editable install's
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for name in RUN_FILES:
        assert (tmp_path / "out" / name).is_file(), name
    assert manifest(tmp_path / "out")["seed"] == 3


def test_a_run_process_does_not_load_dask_or_pint(tmp_path: Path) -> None:
    """``sim run`` keeps xarray from importing dask and pint (the experiments and units extras): 0.5 s of CPU."""
    scenario = short_scenario(tmp_path, 2015)
    program = (
        "import sys; from sim.cli import main\n"
        f"sys.argv = ['sim', 'run', {scenario.name!r}, '--out', 'out', '--no-plots']\n"
        "code = main()\n"
        "print(code, sorted(m for m, v in sys.modules.items() if m.split('.')[0] in ('dask', 'pint') and v))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0 []"
    verify_run_folder(tmp_path / "out")


def test_a_missing_optional_package_names_the_extra_that_installs_it(monkeypatch, capsys, tmp_path):
    """A command that needs an optional extra says which one (here: calibrate without emcee)."""
    import builtins

    real_import = builtins.__import__

    def without_emcee(name, *args, **kwargs):
        if name == "emcee":
            raise ModuleNotFoundError("No module named 'emcee'", name="emcee")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_emcee)
    from sim.cli import EXTRAS, main

    assert main(["calibrate", "--budget", "small", "--out", str(tmp_path / "fit"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "python -m pip install -e '.[calibration]'" in err, err
    assert EXTRAS["emcee"] == "calibration"


def test_output_piped_into_a_reader_that_stops_is_not_an_error():
    """`sim list outputs | head -1`: the command exits 0 and prints no internal error."""
    command = f"{sys.executable} -m sim list outputs | head -1"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=root, timeout=120)
    assert "internal error" not in done.stderr and done.stdout.strip(), done.stderr
