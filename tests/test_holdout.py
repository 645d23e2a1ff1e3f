"""The held-out check after 2020 (sim/calibration/holdout.py, calibration/statistics/after_2020.csv)."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from sim.calibration import holdout
from sim.calibration.holdout import AFTER_2020, KINDS, compare, decompose, load_observations
from sim.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
BEIJING = ("bj_core", "bj_central", "bj_tongzhou", "bj_other")


def test_the_data_file_holds_each_series_with_its_sources():
    series = load_observations()
    assert list(series) == ["beijing_residents", "beijing_migrants", "tianjin_residents", "hebei_residents"]
    values = {(name, o.year): o.value for name, items in series.items() for o in items}
    assert values[("beijing_residents", 2020)] == 21_890_000  # 2188.6 + 0.4 (2021 bulletin)
    assert values[("beijing_residents", 2023)] == 21_858_000
    assert values[("beijing_residents", 2024)] == 21_832_000
    assert values[("beijing_migrants", 2022)] == 8_251_000
    assert values[("tianjin_residents", 2022)] == 13_630_000
    assert values[("hebei_residents", 2023)] == 73_930_000
    assert [o.year for o in series["hebei_residents"]] == [2020, 2021, 2022, 2023, 2024]
    assert series["beijing_residents"][0].regions == BEIJING
    assert series["hebei_residents"][0].regions == ("xiongan", "north3", "hebei_other")
    assert series["beijing_migrants"][0].output == "migrant_population"
    for items in series.values():
        for o in items:
            # each value stands in its source's words, in 10k, and every source says how it was found
            assert f"{o.value / 1e4:g}" in o.words, (o.series, o.year)
            assert o.source.startswith(("found", "derived", "secondary", "7th census")), (o.series, o.year)
            if "recalled" in o.source:
                assert "not verified" in o.source
            if o.source.startswith(("found", "derived")):
                assert o.address.startswith("http"), (o.series, o.year)
    # tolerances as the calibration targets: Beijing's levels 1 %, its changes 5 10k
    assert series["beijing_residents"][1].level_tolerance == 0.01
    assert series["beijing_residents"][1].change_tolerance == 50_000


def _write(path: Path, rows: list[str]) -> Path:
    header = AFTER_2020.read_text(encoding="utf-8").splitlines()[0]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


ROW = "x,population,a+b,{year},{value},0.1,4,assumed,{value} persons,{source},"


def test_the_loader_refuses_a_value_without_a_source_or_a_base_year(tmp_path):
    good = [ROW.format(year=2020, value=100, source="found"), ROW.format(year=2021, value=90, source="found")]
    assert [o.value for o in load_observations(_write(tmp_path / "good.csv", good))["x"]] == [100, 90]
    with pytest.raises(InputError, match="source"):
        load_observations(_write(tmp_path / "a.csv", [*good, ROW.format(year=2022, value=95, source="")]))
    with pytest.raises(InputError, match="2020 year end first"):
        load_observations(_write(tmp_path / "b.csv", good[1:]))
    with pytest.raises(InputError, match="one value per year"):
        load_observations(_write(tmp_path / "c.csv", [*good, good[1]]))
    with pytest.raises(InputError, match="numbers"):
        load_observations(_write(tmp_path / "d.csv", [*good, ROW.format(year=2022, value="many", source="found")]))
    (tmp_path / "e.csv").write_text("series,year,value\nx,2020,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column"):
        load_observations(tmp_path / "e.csv")


def _fake(population: np.ndarray, births: np.ndarray | None = None, deaths: np.ndarray | None = None) -> xr.Dataset:
    """population (time 2021.0-2023.0, run, region a/b); run 0 the best fit."""
    zeros = np.zeros_like(population)
    coords = {"time": [2021.0, 2022.0, 2023.0], "run": np.arange(population.shape[1]), "region": ["a", "b", "c"]}
    dims = ("time", "run", "region")
    return xr.Dataset(
        {
            "population": (dims, population),
            "births_cum": (dims, zeros if births is None else births),
            "deaths_cum": (dims, zeros if deaths is None else deaths),
        },
        coords=coords,
    )


def test_a_fake_dataset_compares_as_worked_by_hand(tmp_path):
    rows = [ROW.format(year=y, value=v, source="found") for y, v in ((2020, 100), (2021, 90), (2022, 95))]
    series = load_observations(_write(tmp_path / "x.csv", rows))
    # region a + b summed; c is not in the series. Best fit: 80, 83, 89 (end of 2020, 2021, 2022)
    members = [(78, 80, 85), (81, 85, 90), (79, 83, 88), (82, 84, 92)]
    population = np.zeros((3, 5, 3))
    for run, path in enumerate([(80, 83, 89), *members]):
        population[:, run, 0] = np.array(path) - 30
        population[:, run, 1] = 30
        population[:, run, 2] = 1000
    found = {(c.year, c.kind): c for c in compare(series, _fake(population))}
    assert sorted(found) == sorted(
        [(2021, KINDS[0]), (2021, KINDS[1]), (2022, KINDS[0]), (2022, KINDS[1]), (2022, KINDS[2])]
    )

    level = found[(2022, "level")]
    assert (level.observed, level.best) == (95, 89)
    assert level.sigma == pytest.approx(9.5)  # 10 % of 95
    assert level.misfit == pytest.approx(-6 / 9.5)
    assert level.band == pytest.approx(tuple(np.percentile([85, 90, 88, 92], [5, 95])))
    assert level.inside is False  # 95 above the members' 85-92

    year = found[(2022, "change in year")]
    assert (year.observed, year.best, year.sigma) == (5, 6, 4)  # 95 - 90; 89 - 83
    assert year.misfit == pytest.approx(0.25)
    assert year.inside  # members' changes 5, 5, 5, 8

    since = found[(2022, "change since 2020")]
    assert (since.observed, since.best) == (-5, 9)  # 95 - 100; 89 - 80
    assert since.sigma == pytest.approx(4 * math.sqrt(2))
    assert since.misfit == pytest.approx(14 / (4 * math.sqrt(2)))
    assert list(since.members) == [7, 9, 9, 10]

    first = found[(2021, "change in year")]
    assert (first.observed, first.best, first.error) == (-10, 3, 13)


def test_natural_change_and_migration_as_worked_by_hand(tmp_path):
    rows = [ROW.format(year=y, value=v, source="found") for y, v in ((2020, 100), (2021, 90), (2022, 96))]
    series = load_observations(_write(tmp_path / "x.csv", rows))
    population = np.zeros((3, 1, 3))
    population[:, 0, 0] = [80, 83, 89]
    births = np.zeros((3, 1, 3))
    births[:, 0, :2] = [[0, 0], [2, 1], [5, 2]]  # a + b: 0, 3, 7
    deaths = np.zeros((3, 1, 3))
    deaths[:, 0, 1] = [1, 2, 4]  # 3 deaths in the window

    def rates(time):
        # region a's rates: 2021: 0.10 - 0.02, 2022: 0.05 - 0.07; regions b, c never read
        year = math.floor(time)
        return np.array([{2021: 0.10, 2022: 0.05}[year], 9, 9]), np.array([{2021: 0.02, 2022: 0.07}[year], 9, 9])

    (part,) = decompose(series, _fake(population, births, deaths), rates)
    assert part.last == 2022
    assert part.observed_change == -4
    assert part.observed_natural == pytest.approx(0.08 * 95 - 0.02 * 93)  # rate x mean of the year's two ends
    assert part.model_change == 9
    assert part.model_natural == 7 - 3


def test_the_command_writes_the_table_from_a_run(tmp_path):
    """Two ensemble members: the table's best fit is a run of the scenario at its own (fitted) values."""
    out = tmp_path / "after.md"
    holdout.main([str(ROOT / "scenarios/historical.toml"), "--members", "2", "--out", str(out)])
    text = out.read_text(encoding="utf-8")
    assert "holdout.py" not in text and "historical.toml --members 2`" in text
    assert "2 ensemble members" in text
    for label in holdout.LABELS.values():
        assert f"| {label} | 2021 | level |" in text
    assert "| Beijing, residents | 2024 | change since 2020 |" in text
    assert "| Hebei, residents | 2024 | change since 2020 |" in text

    from sim.results import run
    from sim.scenario import load_scenario

    scenario = load_scenario(ROOT / "scenarios/historical.toml")
    ds = run(replace(scenario, end=2025), outputs=["population"])  # as the command: to the last year end
    beijing = ds["population"].sel(region=list(BEIJING)).sum("region")
    level = float(beijing.sel(time=2024.0, method="nearest")) / 1e4
    since = level - float(beijing.sel(time=2021.0, method="nearest")) / 1e4
    row = next(line for line in text.splitlines() if line.startswith("| Beijing, residents | 2023 | level |"))
    assert row.split(" | ")[4] == f"{level:,.1f}"
    row = next(line for line in text.splitlines() if line.startswith("| Beijing, residents | 2023 | change since"))
    assert row.split(" | ")[4] == f"{since:+,.1f}"
    assert row.split(" | ")[3] == "-3.2"  # 2185.8 - 2189.0


def test_the_command_without_an_ensemble_marks_the_band_missing(tmp_path):
    data = tmp_path / "small.csv"
    shutil.copy(AFTER_2020, data)
    out = tmp_path / "after.md"
    holdout.main([str(ROOT / "scenarios/historical.toml"), "--ensemble", "", "--out", str(out), "--data", str(data)])
    text = out.read_text(encoding="utf-8")
    assert "--ensemble ''" in text and f"--data {data}" in text
    row = next(line for line in text.splitlines() if line.startswith("| Tianjin, residents | 2022 | level |"))
    assert row.split(" | ")[5] == "n/a" and row.endswith("| n/a |")


def test_members_are_spread_after_the_best_fit():
    rows = [{"p": float(i)} for i in range(9)]  # row 0 is the best fit, which the scenario already holds
    assert [r["p"] for r in holdout.spread(rows, 3)] == [1, 4, 8]
    assert [r["p"] for r in holdout.spread(rows, 20)] == list(range(1, 9))
    assert holdout.spread(rows[:1], 3) == []


def test_the_table_counts_a_misfit_of_one_sigma_as_within():
    edge = holdout.Comparison("x", 2022, KINDS[1], 10.0, 14.0, np.array([9.0, 11.0]), 4.0)
    beyond = replace(edge, best=14.5)
    lines = holdout.table([edge, beyond]).splitlines()
    assert lines[2].endswith("| +1.00 | yes | yes |")
    assert lines[3].endswith("| +1.12 | no | yes |")
