"""Comparison, figures, report and export: what they write, that the numbers are the model's, cheap imports.

Short scenarios (2014-2016, one policy apart) keep this module fast; the shipped stories'
directions are in tests/test_stories.py and the browser check of the report in test_report_browser.py.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

import sim
from sim.cli import main
from sim.errors import InputError
from sim.outputs import figures, style
from sim.outputs.compare import KEY_OUTPUTS, compare, difference
from sim.outputs.sources import Source, open_run

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def short(folder: Path, name: str, extends: str, extra: str = "", end: int = 2020) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        f'extends = "{(SCENARIOS / extends).as_posix()}"\nname = "{name}"\n'
        f'description = "{name}, cut short"\n[run]\nend = {end}\n{extra}',
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three short scenario files: historical, no Xiong'an, no dispersal."""
    folder = tmp_path_factory.mktemp("stories")
    return [
        short(folder, "base", "historical.toml"),
        short(folder, "no_xiongan", "historical.toml", "[policies.xiongan_founded]\nenabled = false\n"),
        short(folder, "counter", "counterfactual.toml"),
    ]


@pytest.fixture(scope="module")
def compared(stories: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "cmp"
    assert main(["compare", *map(str, stories), "--out", str(out), "--reference", "base", "--svg"]) == 0
    return out


@pytest.fixture(scope="module")
def two_runs(stories: list[Path]) -> dict[str, xr.Dataset]:
    return {p.stem: sim.run(sim.load_scenario(p)) for p in stories[:2]}


# --- cheap imports ------------------------------------------------------------------------------

HEAVY = ("matplotlib", "xarray", "pandas", "scipy.special")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
    )
    return [m for m in result.stdout.strip().splitlines()[-1].removeprefix("loaded:").split(",") if m]


def test_import_sim_loads_no_plotting_or_tables() -> None:
    assert loaded_after("import sim") == []


def test_check_command_loads_no_plotting_or_tables() -> None:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['sim', 'check', {str(SCENARIOS / 'plan2021.toml')!r}]\n"
        "try:\n    runpy.run_module('sim', run_name='__main__')\nexcept SystemExit as end:\n    assert end.code == 0\n"
    )
    assert loaded_after(code) == []


def test_run_without_figures_loads_no_plotting(tmp_path: Path) -> None:
    """``run --no-plots`` (sweeps' and scripts' fast path) does not pay for importing matplotlib."""
    scenario = tmp_path / "short.toml"
    scenario.write_text(f"extends = {str(SCENARIOS / 'historical.toml')!r}\n[run]\nend = 2015\n", encoding="utf-8")
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['sim', 'run', {str(scenario)!r}, '--out', {str(tmp_path / 'out')!r}, '--no-plots']\n"
        "try:\n    runpy.run_module('sim', run_name='__main__')\nexcept SystemExit as end:\n    assert end.code == 0\n"
    )
    assert "matplotlib" not in loaded_after(code)
    assert (tmp_path / "out" / "results.nc").exists()


def test_drawing_sets_no_matplotlib_backend() -> None:
    """The user's backend survives importing and drawing (figures carry their own canvas)."""
    code = (
        "import matplotlib\nbefore = matplotlib.rcParams._get_backend_or_none()\n"
        "import sim.plots, sim.outputs.compare\nfrom sim.outputs.style import figure\n"
        "figure(2, 2).savefig('/dev/null', format='png')\n"
        "assert matplotlib.rcParams._get_backend_or_none() == before, matplotlib.rcParams._get_backend_or_none()\n"
        "assert 'matplotlib.pyplot' not in __import__('sys').modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120, check=True, env={"PATH": "/usr/bin:/bin"})


def test_lazy_attributes_resolve() -> None:
    assert callable(sim.run) and callable(sim.run_batch) and callable(sim.compare) and callable(sim.report)
    assert {"run", "compare", "export", "load_scenario"} <= set(dir(sim))
    with pytest.raises(AttributeError):
        sim.no_such_thing  # noqa: B018


# --- dates and reprs ---------------------------------------------------------------------------


def test_date_coordinate_selects_months(short_historical: sim.Scenario, tmp_path: Path) -> None:
    ds = sim.run(short_historical)
    june = ds.sel(date="2015-06")  # a month, as pandas selects by partial date: one time step
    assert june.sizes["time"] == 1 and float(june.time[0]) == pytest.approx(2015 + 5 / 12)
    assert float(ds.sel(date="2015").time.min()) == 2015.0 and ds.sel(date="2015").sizes["time"] == 12
    np.testing.assert_array_equal(june.population.values[0], ds.population.isel(time=17).values)
    sim.write_run(ds, short_historical, tmp_path / "run", 0, 0.0, plots=False)
    again = open_run(tmp_path / "run")
    np.testing.assert_array_equal(again.sel(date="2015-06").population.values, june.population.values)


def test_scenario_repr_is_short_and_the_notebook_view_lists_policies() -> None:
    scenario = sim.load_scenario(SCENARIOS / "plan2021.toml")
    text = repr(scenario)
    assert len(text) < 200 and "plan2021" in text and f"{len(scenario.policies)} policies" in text
    page = scenario._repr_html_()
    assert all(name in page for name in scenario.policies)
    assert "2023-09 to 2026-09" in page  # universities_to_xiongan, dates as months


# --- compare -----------------------------------------------------------------------------------


def test_compare_writes_figures_table_and_report(compared: Path) -> None:
    for name in ("key_outputs", "differences", "population_by_region", "relocation_by_destination"):
        for ext in ("png", "svg"):
            assert (compared / "figures" / f"{name}.{ext}").stat().st_size > 10_000, name
    assert (compared / "figures" / "flow_matrix.png").is_file(), "the results hold migration flows"
    assert (compared / "summary.md").read_text(encoding="utf-8").count("| base |") == len(KEY_OUTPUTS)
    page = (compared / "report.html").read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == len(list((compared / "figures").glob("*.png")))
    assert "http://" not in page and "https://" not in page


def test_compare_writes_svg_only_when_asked_like_run(
    stories: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compare`` and ``run`` alike: PNG figures, SVG too with ``--svg``."""
    import sim.outputs.compare

    asked = []

    def recording(inputs, out, reference, seeds, formats, **_):
        asked.append(tuple(formats))
        raise InputError("recorded", "", "stop here")

    monkeypatch.setattr(sim.outputs.compare, "compare", recording)
    for extra in ([], ["--svg"]):
        assert main(["compare", *map(str, stories), "--out", str(tmp_path / "c"), *extra]) == 2
    assert asked == [("png",), ("png", "svg")]


def test_summary_table_holds_the_models_numbers(compared: Path, two_runs: dict[str, xr.Dataset]) -> None:
    """Each value is the run's value at 1 January 2020, each difference the value minus the reference's."""
    with open(compared / "summary.csv", newline="", encoding="utf-8") as handle:
        rows = {(r["output"], r["scenario"]): r for r in csv.DictReader(handle)}
    for output in KEY_OUTPUTS:
        base = float(output.pick(two_runs["base"]).sel(time=2020.0)) / output.scale
        for name, ds in two_runs.items():
            row = rows[output.key, name]
            value = float(output.pick(ds).sel(time=2020.0)) / output.scale
            assert float(row["2020"]) == pytest.approx(value, rel=1e-5)
            assert float(row["2020_minus_base"]) == pytest.approx(value - base, rel=1e-5, abs=1e-6)
            assert row["2025"] == "" and row["2020_p05"] == "", "a single run to 2020: no later years, no fans"
    # (the Xiong'an incentive's effect on Xiong'an's 2020 residents is within the agents' noise for one seed:
    # -1,066 to +1,579 over seeds 1-8; tests/test_firms.py checks its direction on the firms it acts on)


def beijing_at(ds: xr.Dataset, month: int) -> float:
    return float(ds.population.sel(region=["bj_core", "bj_central", "bj_tongzhou", "bj_other"]).sum("region")[month])


def test_report_targets_read_the_model(two_runs: dict[str, xr.Dataset], compared: Path) -> None:
    from sim.outputs.compare import target_rows

    rows = {key: values for key, _, values in target_rows(two_runs)}
    ds = two_runs["base"]
    assert rows["F3"]["base"] is None, "read at 2021.0, after the end of a run to 2020"
    assert rows["F6_change_2014"]["base"] == pytest.approx(float(beijing_at(ds, 12) - beijing_at(ds, 0)))
    assert rows["F5_2013"]["base"] == float(ds.high_end_share_new_entrants.isel(time=0))
    assert rows["X5"]["base"] == float(ds.construction_workforce.max())
    beijing = ds.population.sel(region=["bj_core", "bj_central", "bj_tongzhou", "bj_other"]).sum("region")
    assert rows["F6_2017"]["base"] == pytest.approx(float(beijing.isel(time=4 * 12)))
    text = (compared / "report.html").read_text(encoding="utf-8")
    assert "Against the 2021 report" in text
    from sim.calibration.targets import load_targets

    targets = load_targets()
    reached = {k: v["base"] for k, v in rows.items() if v["base"] is not None}
    within = sum(abs(float(targets[k].misfit(v))) <= 1 for k, v in reached.items())
    assert f"{within} of {len(reached)} within" in text, "each scenario's count of targets within tolerance"
    assert text.count('class="n miss"') >= len(reached) - within, "every miss marked"


def test_report_includes_the_calibration_fit_where_present(
    two_runs: dict[str, xr.Dataset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.outputs import observed, report

    made = compare([Source(n, d, Path(n), None, "") for n, d in two_runs.items()], tmp_path / "c", formats=())
    monkeypatch.setattr(observed, "CALIBRATION", tmp_path)
    assert "Calibration fit" not in report.render(made)
    (tmp_path / "fit.md").write_text("| target | best |\n| F3 | 2,950 |\n", encoding="utf-8")
    assert "| F3 | 2,950 |" in report.render(made)


def test_summary_markdown_shows_the_differences(tmp_path: Path) -> None:
    runs = {
        n: sim.run(sim.load_scenario(short(tmp_path, n, "historical.toml", extra, end=2020)))
        for n, extra in (("a", ""), ("b", "[policies.admission_control_2017]\nstrength = 4.0\n"))
    }
    made = compare([Source(n, d, Path(n), None, "") for n, d in runs.items()], tmp_path / "out", "a", formats=())
    beijing = {row.scenario: row for row in made.rows if row.output.key == "beijing_residents"}
    assert beijing["b"].difference[2020] < 0, "a stricter admission control leaves fewer residents in Beijing"
    text = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("| Beijing residents") and "| b |" in x)
    assert f"{beijing['b'].median[2020]:,.1f}" in line and f"{beijing['b'].difference[2020]:+,.1f}" in line


def test_seeds_give_quantile_fans(tmp_path: Path) -> None:
    path = short(tmp_path, "fan", "historical.toml", end=2020)
    made = compare([path], tmp_path / "out", seeds=3, formats=())
    (source,) = made.sources
    assert source.dataset.sizes["run"] == 3 and source.span.startswith("3 seeds")
    for row in made.rows:
        assert row.low[2020] <= row.median[2020] <= row.high[2020]
    spread = [row for row in made.rows if row.high[2020] > row.low[2020]]
    assert spread, "three seeds of the firm agents differ somewhere"
    assert figures.span_of(made.runs) == source.span


def test_difference_is_run_by_run_with_common_seeds() -> None:
    time = 2014 + np.arange(3) / 12
    a = xr.DataArray([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0]], dims=("time", "run"), coords={"time": time})
    b = a - 1.0
    np.testing.assert_allclose(difference(a, b).values, 1.0)
    np.testing.assert_allclose(difference(a, b.isel(run=0)).values, a.values - b.isel(run=0).values[:, None])


def test_unknown_reference_exits_2_before_running(
    stories: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sim.outputs import sources

    monkeypatch.setattr(sources, "run_batch", lambda *args: pytest.fail("ran a scenario before checking --reference"))
    assert main(["compare", str(stories[0]), str(stories[0]), "--reference", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "base, base-2" in err and "Traceback" not in err


def test_a_folder_that_is_not_a_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "results.nc" in capsys.readouterr().err


# --- figures: names, colours, units, layout ----------------------------------------------------


def _boxes(fig: Figure):
    """Lay the figure out as the PNG writer does (an Agg canvas; no backend is switched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


@pytest.mark.parametrize("name", list(figures.FIGURES))
@pytest.mark.parametrize("count", [1, 2, 7])
def test_every_figure_is_labelled_and_uncluttered(name: str, count: int, two_runs: dict[str, xr.Dataset]) -> None:
    """Titles name the scenarios; no panel is empty or unlabelled; no title overlaps; legends cover nothing."""
    runs = dict(list(two_runs.items())[:count])
    if count > 2:  # many scenarios: long legends
        runs = {f"scenario_{k}": list(two_runs.values())[k % 2] for k in range(count)}
    if name in ("jobs_and_firms", "flow_matrix"):  # one scenario's figures
        runs = dict(list(runs.items())[:1])
    fig = figures.FIGURES[name](runs)
    renderer = _boxes(fig)
    assert all(n in fig.get_suptitle() for n in runs), f"{name}: the title names every scenario"
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    titles = []
    for ax in axes:
        assert ax.get_ylabel(), f"{name}: a panel without a y label"
        assert ax.lines or ax.collections or ax.patches or ax.images, f"{name}: an empty panel"
        titles.append(ax.title.get_window_extent(renderer))
    for i, first in enumerate(titles):
        for second in titles[i + 1 :]:
            assert not first.overlaps(second), f"{name}: panel titles overlap"
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, f"{name}: the legend is cut off at the edges"
        for ax in axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), f"{name}: the legend covers a panel"
            assert not box.overlaps(ax.xaxis.label.get_window_extent(renderer)), f"{name}: legend over an x label"



def test_the_full_historical_runs_figures_fit_their_legends_and_label_both_plan_levels() -> None:
    """To 2035 the figures carry the plan levels (longer legends): no legend is cut off at the figure's
    edges, and beijing_and_plans's star (a level by a date) has its own entry beside the dashed line's."""
    runs = {"historical": sim.run(sim.load_scenario(SCENARIOS / "historical.toml"))}
    for name, draw in figures.FIGURES.items():
        fig = draw(runs)
        renderer = _boxes(fig)
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, f"{name}: the legend is cut off at the edges"
        if name == "beijing_and_plans":
            labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
            assert "plan level by a date (Beijing master plan 2016-2035)" in labels
            assert "plan level over years (Beijing master plan 2016-2035)" in labels



def test_regions_and_scenarios_keep_their_colours(two_runs: dict[str, xr.Dataset]) -> None:
    one = dict(list(two_runs.items())[:1])
    fig = figures.by_region(one)
    for ax, region in zip(fig.axes, one["base"].region.values):
        assert ax.lines[0].get_color() == style.REGION_COLOURS[str(region)]
    colours = style.scenario_colours(["mine", "historical", "other"])
    assert colours["historical"] == style.SCENARIO_COLOURS["historical"]
    assert len(set(colours.values())) == 3
    assert style.scenario_colours(["other", "mine"])["mine"] != style.scenario_colours(["other", "mine"])["other"]
    fig = figures.by_region(two_runs)
    expected = style.scenario_colours(two_runs)
    for ax in fig.axes:
        assert [line.get_color() for line in ax.lines[:2]] == [expected["base"], expected["no_xiongan"]]


def test_flow_matrix_sums_the_moves_and_skips_results_without_flows(two_runs: dict[str, xr.Dataset]) -> None:
    ds = two_runs["base"]
    fig = figures.flow_matrix({"base": ds})
    cells = [t for t in fig.axes[0].texts]
    moved = ds.migration.isel(time=slice(None, -1)).sum("time") / 12 / 1e4
    expected = float(moved.sel(region="bj_central", destination="tianjin"))
    assert any(t.get_text() == f"{expected:.1f}" for t in cells)
    assert len(cells) == ds.sizes["region"] * (ds.sizes["region"] - 1), "every move, no diagonal"
    assert figures.flow_matrix({"base": ds.drop_vars("migration")}) is None


def test_region_names_come_from_the_data_file() -> None:
    assert style.region_name("xiongan").startswith("Xiong'an New Area")
    assert style.region_name("xiongan", short=True) == "Xiong'an New Area"


# --- export, list, diff, version --------------------------------------------------------------


def test_export_wide_csv_and_excel(stories: list[Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["run", str(stories[0]), "--out", str(run), "--no-plots"]) == 0
    ds = open_run(run)
    formats = ["--csv", "--xlsx"] if _has_openpyxl() else ["--csv"]
    assert main(["export", str(run), *formats, "--out", str(tmp_path / "x")]) == 0
    with open(tmp_path / "x" / "csv" / "jobs.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[:2] == ["time", "date"] and "xiongan/high_end" in header
    assert len(rows) == ds.sizes["time"] + 1 and rows[13][1] == "2015-01"
    column = header.index("xiongan/high_end")
    expected = ds.jobs.sel(region="xiongan", sector="high_end").values
    np.testing.assert_allclose([float(r[column]) for r in rows[1:]], expected, rtol=1e-9)
    if _has_openpyxl():
        from openpyxl import load_workbook

        book = load_workbook(tmp_path / "x" / "base.xlsx", read_only=True)
        sheet = list(book["population"].values)
        assert sheet[0][2] == "bj_core" and sheet[-1][2] == pytest.approx(float(ds.population[-1, 0]))
        assert ("population", "persons", ds.population.attrs["long_name"]) in list(book["about"].values)


def test_export_by_default_writes_one_folder_per_source(
    stories: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two exports without --out never mix: each goes to runs/export/NAME."""
    monkeypatch.chdir(tmp_path)
    for name in ("one", "two"):
        assert main(["run", str(stories[0]), "--out", name, "--no-plots"]) == 0
        assert main(["export", name, "--csv"]) == 0
    assert (tmp_path / "runs" / "export" / "one" / "csv" / "jobs.csv").is_file()
    assert (tmp_path / "runs" / "export" / "two" / "csv" / "jobs.csv").is_file()


def test_export_xmile_from_a_run_folder_uses_its_scenario_and_seed(stories: list[Path], tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    run = tmp_path / "run"
    assert main(["run", str(stories[0]), "--out", str(run), "--no-plots", "--seed", "11"]) == 0
    assert main(["export", str(run), "--xmile", "--out", str(tmp_path / "x")]) == 0
    root = ET.parse(tmp_path / "x" / "base.xmile").getroot()
    assert root.tag.endswith("xmile") and "(seed 11)" in ET.tostring(root, encoding="unicode")


def _has_openpyxl() -> bool:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


def test_list_and_diff(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "regions"]) == 0
    assert "Xiong'an New Area" in capsys.readouterr().out
    assert main(["list", "outputs"]) == 0
    assert "construction_workforce" in capsys.readouterr().out
    assert main(["list", "policies", str(SCENARIOS / "plan2021.toml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(sim.load_scenario(SCENARIOS / "plan2021.toml").policies)
    months = {line.split()[0]: line.split()[2] for line in lines}
    assert months["rail_beijing_tangshan"] == "2022-12", "30 Dec 2022 falls in December, not a 13th month"
    assert months["universities_to_xiongan"].startswith("2023-09")
    assert main(["diff", str(SCENARIOS / "plan2021.toml")]) == 0
    out = capsys.readouterr().out
    assert "+ policy universities_to_xiongan (institution_move)" in out and "historical" in out.splitlines()[0]
    assert main(["diff", str(SCENARIOS / "historical.toml")]) == 0  # extends calibration/fitted.toml: values only
    assert "historical extends no other scenario" in (out := capsys.readouterr().out) and "fitted.toml" in out
    assert main(["diff", str(SCENARIOS / "counterfactual.toml")]) == 0
    assert "- policy xiongan_founded (incentive) disabled" in capsys.readouterr().out


def test_diff_shows_changed_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sim.load_scenario(SCENARIOS / "historical.toml").document["policies"]["admission_control_2017"]
    path = short(tmp_path, "tweak", "historical.toml", "[policies.admission_control_2017]\nstrength = 9.5\n")
    assert main(["diff", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"~ policy admission_control_2017.strength: {before['strength']} -> 9.5" in out
    assert "~ run.end: 2035 -> 2020" in out


def test_version_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"sim {sim.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "sim compare" in capsys.readouterr().out


def test_fans_over_a_calibration_ensemble(tmp_path: Path) -> None:
    from sim.outputs.sources import read_ensemble

    ensemble = tmp_path / "ensemble.csv"
    rows = [f"{i},{1.0 + 0.5 * i},{-10 - i}" for i in range(5)]
    ensemble.write_text("sample,population.jobs_weight,log_posterior\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert [s["population.jobs_weight"] for s in read_ensemble(ensemble, 3)] == [1.0, 2.0, 3.0]
    path = short(tmp_path, "ens", "historical.toml", end=2016)
    made = compare([path], tmp_path / "out", seeds=3, formats=(), ensemble=ensemble)
    (source,) = made.sources
    assert source.dataset.sizes["run"] == 3 and "calibration ensemble" in source.span
    shipped = compare([path], tmp_path / "out3", seeds=2, formats=(), ensemble=ROOT / "calibration" / "ensemble.csv")
    (source,) = shipped.sources  # the shipped ensemble's policy strengths ride on the run axis too
    rates = source.dataset["policies.market_dispersal.rate"].values
    assert source.dataset.sizes["run"] == 2 and rates[0] != rates[1]
    bad = tmp_path / "bad.csv"
    bad.write_text("sample,population.no_such,log_posterior\n0,1.0,-1\n", encoding="utf-8")
    with pytest.raises(sim.InputError, match="population.no_such"):
        compare([path], tmp_path / "out2", formats=(), ensemble=bad)


def test_a_sweep_folder_is_compared_as_a_fan_over_its_design(tmp_path: Path) -> None:
    """A sweep folder is an input like a run folder: its runs make a fan labeled with the design,
    the table's median and 5-95% are the sweep's own, and what it does not keep is left out, not drawn empty."""
    sweep_file = tmp_path / "tiny.toml"
    sweep_file.write_text(
        f'name = "tiny"\nscenario = "{(SCENARIOS / "historical.toml").as_posix()}"\n[run]\nend = 2020\n'
        '[uncertainties."population.jobs_weight"]\nlow = 1.0\nhigh = 3.0\n'
        '[design]\nmethod = "lhs"\nsamples = 4\nseed = 1\n[replications]\ncount = 1\nseed = 3\n'
        '[outputs]\nvariables = ["population"]\ntimes = "yearly"\n[execution]\nbackend = "serial"\n',
        encoding="utf-8",
    )
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "swept"), "--no-analysis"]) == 0
    base = short(tmp_path, "base", "historical.toml")
    made = compare([base, tmp_path / "swept"], tmp_path / "cmp", reference="base", formats=("svg",))
    swept = next(s for s in made.sources if s.name == "tiny")
    assert "not drawn: tiny" in (tmp_path / "cmp" / "figures" / "xiongan_and_tongzhou.svg").read_text(encoding="utf-8")
    assert swept.span == "4 runs of sweep tiny (lhs over population.jobs_weight; 1 seed)"
    assert swept.scenario_file == SCENARIOS / "historical.toml"
    beijing = swept.dataset.population.sel(time=2020.0, region=list(style.BEIJING)).sum("region") / 1e4
    row = next(r for r in made.rows if r.scenario == "tiny" and r.output.key == "beijing_residents")
    assert row.median[2020] == pytest.approx(float(np.median(beijing)))
    assert row.low[2020] == pytest.approx(float(np.quantile(beijing, 0.05)))
    assert row.high[2020] < beijing.max() + 1e-9 and row.low[2020] < row.high[2020]
    assert not any(r.scenario == "tiny" and r.output.key == "xiongan_jobs" for r in made.rows)
    assert {"key_outputs", "xiongan_and_tongzhou", "jobs_and_firms"} <= set(made.figures)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "sweep.toml").write_text(sweep_file.read_text(), encoding="utf-8")
    with pytest.raises(sim.InputError, match="sweep not yet finished"):
        compare([unfinished], tmp_path / "cmp2")


def test_a_comparison_replaces_an_earlier_one_whole_and_never_writes_into_another_folder(tmp_path) -> None:
    """Rerunning into the same --out leaves no file of the earlier comparison (no stale report beside a new
    table); a folder holding anything else (a run folder) is refused with a one-line error."""
    from sim.outputs.compare import clear_comparison_folder

    earlier = tmp_path / "cmp"
    (earlier / "figures").mkdir(parents=True)
    for name in ("report.html", "summary.md", "summary.csv", "figures/key_outputs.png"):
        (earlier / name).write_text("earlier", encoding="utf-8")
    assert clear_comparison_folder(earlier) == earlier and list(earlier.iterdir()) == []
    run_folder = tmp_path / "run"
    run_folder.mkdir()
    (run_folder / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(sim.InputError, match="--out: holds files a comparison does not write"):
        clear_comparison_folder(run_folder)
    assert (run_folder / "manifest.json").is_file()


def test_single_runs_with_different_seeds_are_flagged_and_common_seeds_are_not() -> None:
    """Two single runs on different seeds differ by the agents' noise too: the comparison says so."""
    from sim.outputs.sources import Source, seed_note

    def single(name: str, seed: int) -> Source:
        ds = xr.Dataset(coords={"seed": seed})
        return Source(name, ds, Path(name), None, "")

    assert seed_note([single("a", 1), single("b", 1)]) == ""
    note = seed_note([single("a", 1), single("b", 7)])
    assert "different seeds (a 1, b 7)" in note and "--seeds" in note
    fan = Source("c", xr.Dataset(coords={"seed": ("run", [1, 2])}), Path("c"), None, "2 seeds")
    assert seed_note([single("a", 1), fan]) == ""


def test_report_never_replaces_a_file_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compared: Path
) -> None:
    """`report --out` over a scenario or a folder is refused before any work; an old report is replaced."""
    from sim.cli import main
    from sim.outputs.report import _check_out

    scenario = tmp_path / "mine.toml"
    scenario.write_text('extends = "historical.toml"\n', encoding="utf-8")
    code = main(["report", str(scenario), "--out", str(scenario)])
    assert code == 2 and scenario.read_text(encoding="utf-8") == 'extends = "historical.toml"\n'
    err = capsys.readouterr().err
    assert err.startswith(f"error: {scenario}: --out: exists and is not a report sim wrote")
    assert main(["report", str(scenario), "--out", str(tmp_path)]) == 2  # a folder
    old = tmp_path / "old.html"
    old.write_text('<!DOCTYPE html>\n<html lang="en"><head><title>sim report: a, b</title>', encoding="utf-8")
    _check_out(old)  # an earlier report may be replaced, the one compare wrote too
    _check_out(compared / "report.html")
    _check_out(tmp_path / "new.html")
