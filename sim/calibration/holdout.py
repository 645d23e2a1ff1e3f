"""Held-out check after the calibration window: the provinces' year-end populations 2021-2024.

    python -m sim.calibration.holdout [SCENARIO] [--ensemble calibration/ensemble.csv] [--members 32]
                                      [--data calibration/statistics/after_2020.csv] [--out calibration/after_2020.md]

The calibration fits 2014-2020 (calibration/targets.toml); the statistical bulletins since then
(``calibration/statistics/after_2020.csv``, each value with its source in its own words) were
never fitted, so they test the model's extrapolation. The scenario (by ``extends``, the shipped
fit) runs once at its own values and at ``--members`` parameter sets spread over the
calibration ensemble, all on the scenario's seed (common random numbers, as fit.md's ensemble
column), to the last observed year end; the table comes out of that run, never typed in.

The bulletins after 2020 are on the 2020 census's basis, Beijing's model stocks on the basis
before it (docs/calibration.md): so besides the levels (where Beijing's gap is mostly the
revision), each year's change and the change since the end of 2020, against the model's own
2020 level, which no basis break touches.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sim.errors import InputError

CALIBRATION = Path(__file__).resolve().parents[2] / "calibration"
AFTER_2020 = CALIBRATION / "statistics" / "after_2020.csv"
BASE_YEAR = 2020
"""The last year end inside the calibration window: changes are measured from it."""
COLUMNS = (
    "series",
    "output",
    "regions",
    "year",
    "value",
    "level_tolerance",
    "change_tolerance",
    "tolerance_source",
    "words",
    "source",
    "address",
)
KINDS = ("level", "change in year", f"change since {BASE_YEAR}")
OUTPUTS = ("population", "migrant_population", "births_cum", "deaths_cum")


@dataclass(frozen=True)
class Observation:
    """One year-end value of an output summed over ``regions`` [persons]."""

    series: str
    output: str
    regions: tuple[str, ...]
    year: int
    value: float
    level_tolerance: float  # relative, 1 sigma
    change_tolerance: float  # persons per year, 1 sigma of a year's change
    tolerance_source: str
    words: str
    source: str
    address: str

    @property
    def time(self) -> float:
        """The model's time of this year end: the start of the next year."""
        return self.year + 1.0


def load_observations(path: Path = AFTER_2020) -> dict[str, list[Observation]]:
    """Every series of the file, by year, each with its base year and a source for every value."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(path, "", f"missing column(s): {', '.join(missing)}")
            rows = list(reader)
    except OSError as error:
        raise InputError(path, "", f"cannot be read: {error.strerror or error}") from None
    series: dict[str, list[Observation]] = {}
    for number, row in enumerate(rows, 2):
        where = f"line {number}"
        for key in ("series", "output", "regions", "words", "source", "tolerance_source"):
            if not row[key].strip():
                raise InputError(path, f"{where}: {key}", "expected text (every value names its source)")
        try:
            observation = Observation(
                series=row["series"],
                output=row["output"],
                regions=tuple(row["regions"].split("+")),
                year=int(row["year"]),
                value=float(row["value"]),
                level_tolerance=float(row["level_tolerance"]),
                change_tolerance=float(row["change_tolerance"]),
                tolerance_source=row["tolerance_source"],
                words=row["words"],
                source=row["source"],
                address=row["address"],
            )
        except ValueError as error:
            raise InputError(path, where, f"expected numbers in year, value and the tolerances: {error}") from None
        if observation.value <= 0 or not 0 < observation.level_tolerance < 1 or observation.change_tolerance <= 0:
            raise InputError(path, where, "expected a positive value and tolerances (relative level below 1)")
        series.setdefault(observation.series, []).append(observation)
    for name, items in series.items():
        items.sort(key=lambda o: o.year)
        if items[0].year != BASE_YEAR:
            raise InputError(path, name, f"expected a {BASE_YEAR} year end first: changes are measured from it")
        if len({(o.output, o.regions) for o in items}) > 1:
            raise InputError(path, name, "expected one output and one set of regions per series")
        if len({o.year for o in items}) < len(items):
            raise InputError(path, name, "expected one value per year")
    return series


@dataclass(frozen=True)
class Comparison:
    """Observed against the model (best fit, ensemble members) for one year of a series."""

    series: str
    year: int
    kind: str  # one of KINDS
    observed: float
    best: float
    members: np.ndarray
    sigma: float  # the tolerance in the compared quantity's unit

    @property
    def error(self) -> float:
        return self.best - self.observed

    @property
    def misfit(self) -> float:
        """The best fit's error in sigmas of the tolerance."""
        return self.error / self.sigma

    @property
    def band(self) -> tuple[float, float]:
        """The ensemble's 5-95 % range (NaN without members)."""
        if len(self.members) == 0:
            return math.nan, math.nan
        low, high = np.percentile(self.members, [5, 95])
        return float(low), float(high)

    @property
    def inside(self) -> bool:
        low, high = self.band
        return low <= self.observed <= high


def model_series(ds, observation: Observation) -> np.ndarray:
    """The output summed over the observation's regions at each run: (time, run)."""
    return np.asarray(
        ds[observation.output].sel(region=list(observation.regions)).sum("region").transpose("time", "run")
    )


def compare(series: dict[str, list[Observation]], ds) -> list[Comparison]:
    """Each year after the base of each series: its level, its change during the year and since the base
    (from the second year on: the first year's is its change in the year).

    ``ds`` has (time, run, region); run 0 is the best fit, the others ensemble members. A
    change over k years has the sigma of a year's change times sqrt(k) (assumed: the years'
    errors independent).
    """
    found = []
    for name, items in series.items():
        values = model_series(ds, items[0])
        times = np.asarray(ds["time"])

        def at(time: float, values: np.ndarray = values, times: np.ndarray = times, name: str = name) -> np.ndarray:
            index = int(np.argmin(np.abs(times - time)))
            if abs(times[index] - time) > 1e-3:
                raise InputError(AFTER_2020, name, f"the run has no time {time:g}")
            return values[index]

        base = items[0]
        for before, now in zip(items, items[1:]):
            level = at(now.time)
            change = level - at(before.time)
            since = level - at(base.time)
            years = now.year - base.year
            quantities = (
                (now.value, level, now.level_tolerance * now.value),
                (now.value - before.value, change, now.change_tolerance * math.sqrt(now.year - before.year)),
                (now.value - base.value, since, now.change_tolerance * math.sqrt(years)),
            )
            for kind, (observed, model, sigma) in zip(KINDS, quantities):
                if kind == KINDS[2] and now is items[1]:
                    continue  # the first year's change since the base is its change in the year
                found.append(Comparison(name, now.year, kind, observed, float(model[0]), model[1:], sigma))
    return found


@dataclass(frozen=True)
class Decomposition:
    """A series' change from the base year end to its last: natural change and the rest (migration)."""

    series: str
    last: int
    observed_change: float
    observed_natural: float  # the model's vital rates applied to the observed population
    model_change: float
    model_natural: float


def decompose(series: dict[str, list[Observation]], ds, vital_rates) -> list[Decomposition]:
    """Natural change and migration, 2020 to each series' last year (resident series only).

    ``vital_rates(time)`` gives (birth, death) rates [1/year] by region, as
    ``Regions.vital_rates``; the observed natural change is each year's rate of the series'
    first region times the mean of the year's two year-end populations, since the bulletins'
    own birth and death counts are not in the data for every province and year.
    """
    found = []
    times = np.asarray(ds["time"])
    codes = list(np.asarray(ds["region"]))
    for name, items in series.items():
        if items[0].output != "population":
            continue
        base, last = items[0], items[-1]
        at = {t: int(np.argmin(np.abs(times - t))) for t in (base.time, last.time)}
        pick = [codes.index(r) for r in base.regions]
        model = np.asarray(ds["population"])[:, 0, pick].sum(axis=1)
        births = np.asarray(ds["births_cum"])[:, 0, pick].sum(axis=1)
        deaths = np.asarray(ds["deaths_cum"])[:, 0, pick].sum(axis=1)
        natural = 0.0
        for before, now in zip(items, items[1:]):
            birth, death = vital_rates(before.time + 0.5)
            rate = float(birth[pick[0]] - death[pick[0]])
            natural += rate * (now.year - before.year) * (before.value + now.value) / 2
        found.append(
            Decomposition(
                name,
                last.year,
                last.value - base.value,
                natural,
                float(model[at[last.time]] - model[at[base.time]]),
                float(
                    (births[at[last.time]] - births[at[base.time]]) - (deaths[at[last.time]] - deaths[at[base.time]])
                ),
            )
        )
    return found


def spread(rows: Sequence[dict[str, float]], count: int) -> list[dict[str, float]]:
    """``count`` ensemble rows spread evenly after row 0 (the best fit), as fit.md's ensemble column."""
    if len(rows) < 2:
        return []
    chosen = np.unique(np.linspace(1, len(rows) - 1, min(len(rows) - 1, count)).astype(int))
    return [rows[i] for i in chosen]


def run_holdout(
    scenario_path: str | Path,
    series: dict[str, list[Observation]],
    ensemble: str | Path | None = None,
    members: int = 32,
):
    """The scenario at its own values (run 0) and at ``members`` ensemble sets, to the last observed year end.

    Members are spread over the ensemble's rows after row 0 (the best fit, which the scenario
    already holds), as fit.md's ensemble column; every run on the scenario's seed.
    Returns the scenario (cut to the window) and the dataset (time, run, region).
    """
    from sim.outputs.sources import read_ensemble
    from sim.results import run_batch
    from sim.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    last = max(o.time for items in series.values() for o in items)
    scenario = replace(scenario, end=int(math.ceil(last)))
    overrides: list[dict[str, float]] = [{}]
    if ensemble is not None and members > 0:
        overrides += spread(read_ensemble(ensemble, 10**9), members)  # read_ensemble: every row, in order
    ds = run_batch(scenario, [scenario.seed] * len(overrides), overrides, outputs=list(OUTPUTS))
    failures = ds.attrs.get("failures", "[]")
    if failures not in ("[]", []):
        raise InputError(scenario_path, "", f"runs failed: {failures}")
    return scenario, ds.transpose("time", "run", ...)


def _tenk(persons: float, signed: bool = False) -> str:
    return f"{persons / 1e4:+,.1f}" if signed else f"{persons / 1e4:,.1f}"


LABELS = {
    "beijing_residents": "Beijing, residents",
    "beijing_migrants": "Beijing, migrant residents",
    "tianjin_residents": "Tianjin, residents",
    "hebei_residents": "Hebei, residents",
}


def table(comparisons: Sequence[Comparison]) -> str:
    """Markdown: observed, best fit, ensemble 5-95 %, error [10k and sigmas], within tolerance, inside the band."""
    lines = [
        "| series | year end | compared | observed | best fit | ensemble 5-95 % | error (best − observed) | "
        "error [sigma] | within tolerance | observed inside the ensemble's range |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        signed = c.kind != "level"
        low, high = c.band
        band = "n/a" if math.isnan(low) else f"{_tenk(low, signed)} to {_tenk(high, signed)}"
        inside = "n/a" if math.isnan(low) else "yes" if c.inside else "no"
        lines.append(
            f"| {LABELS.get(c.series, c.series)} | {c.year} | {c.kind} | {_tenk(c.observed, signed)} | "
            f"{_tenk(c.best, signed)} | {band} | {_tenk(c.error, True)} | "
            f"{c.misfit:+.2f} | {'yes' if abs(c.misfit) <= 1 else 'no'} | {inside} |"
        )
    return "\n".join(lines) + "\n"


def decomposition_table(parts: Sequence[Decomposition]) -> str:
    lines = [
        f"| series | {BASE_YEAR} to | observed change | of which natural (bulletin rates) | the rest: net migration | "
        "model change | model natural | model net migration |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in parts:
        lines.append(
            f"| {LABELS.get(d.series, d.series)} | {d.last} | {_tenk(d.observed_change, True)} | "
            f"{_tenk(d.observed_natural, True)} | {_tenk(d.observed_change - d.observed_natural, True)} | "
            f"{_tenk(d.model_change, True)} | {_tenk(d.model_natural, True)} | "
            f"{_tenk(d.model_change - d.model_natural, True)} |"
        )
    return "\n".join(lines) + "\n"


def headlines(comparisons: Sequence[Comparison]) -> str:
    """A line per series: the model's base level against the observed (the basis term), the change to the last year."""
    lines = []
    for name in dict.fromkeys(c.series for c in comparisons):
        mine = [c for c in comparisons if c.series == name]
        first = {c.kind: c for c in mine if c.year == mine[0].year}
        base_observed = first[KINDS[0]].observed - first[KINDS[1]].observed
        base_model = first[KINDS[0]].best - first[KINDS[1]].best
        last = [c for c in mine if c.kind in KINDS[1:] and c.year == mine[-1].year][-1]
        low, high = last.band
        band = "" if math.isnan(low) else f" (ensemble {_tenk(low, True)} to {_tenk(high, True)})"
        lines.append(
            f"- {LABELS.get(name, name)}: end of {BASE_YEAR} {_tenk(base_observed)} observed, {_tenk(base_model)} "
            f"in the model ({_tenk(base_model - base_observed, True)}); change to the end of {last.year} "
            f"{_tenk(last.observed, True)} observed, {_tenk(last.best, True)} at the best fit{band}.\n"
        )
    return "".join(lines)


def report(
    scenario,
    series: dict[str, list[Observation]],
    comparisons: Sequence[Comparison],
    parts: Sequence[Decomposition],
    command: str,
    members: int,
) -> str:
    """The whole of after_2020.md: how it was made, the tables, the sources, what the comparison cannot see."""
    since = [c for c in comparisons if c.kind == KINDS[2]]
    years = [c for c in comparisons if c.kind == KINDS[1]]
    count = f"{members} ensemble member{'s' if members != 1 else ''}"
    summary = (
        f"Of the changes since the end of {BASE_YEAR}, {sum(abs(c.misfit) <= 1 for c in since)} of {len(since)} "
        f"are within tolerance at the best fit and {sum(c.inside for c in since)} of {len(since)} observed values "
        f"lie inside the ensemble's range; of the year-on-year changes, {sum(abs(c.misfit) <= 1 for c in years)} "
        f"of {len(years)} and {sum(c.inside for c in years)} of {len(years)}."
    )
    sources = "".join(
        f"| {LABELS.get(o.series, o.series)} | {o.year} | {_tenk(o.value)} | {o.words} | {o.source} | {o.address} |\n"
        for items in series.values()
        for o in items
    )
    return (
        f"# After {BASE_YEAR}: the held-out years\n\n"
        f"Made by `{command}`: full runs of `{scenario.name}` ({scenario.path}, which extends the shipped fit) "
        f"at its own values and at {count} spread over the calibration ensemble, on the scenario's seed "
        f"{scenario.seed}, to {scenario.end}. The calibration fitted 2014-{BASE_YEAR}; nothing after "
        f"{BASE_YEAR} was fitted, and nothing here feeds back into the fit. Observed values: "
        "`calibration/statistics/after_2020.csv` (sources below). Values in 10k persons (万).\n\n"
        "**Basis.** The bulletins since 2020 are on the 2020 census's basis. Beijing's model stocks follow "
        "the bulletins before the census revision (2153.6 万 at the end of 2019; the census counted 2189.3 "
        "万), so Beijing's levels differ by the revision; Tianjin's and Hebei's model stocks are census-based. "
        f"The changes (during each year, and since the end of {BASE_YEAR}, against the model's own {BASE_YEAR} "
        "level) are on one basis on both sides. A level shifted by the 2020 break (the model's change since "
        f"{BASE_YEAR} added to the observed {BASE_YEAR} level) has the same error as the change since "
        f"{BASE_YEAR}.\n\n"
        "**Tolerances** (1 sigma; the data file's `tolerance_source` column): levels as the calibration targets "
        "(Beijing 1 %, its migrants 2 %, Tianjin 5 %, Hebei 3 %); a year's change 5 万 for Beijing (as F6's "
        "changes) and its migrants, and the same share of the level for Tianjin (3 万) and Hebei (17 万), "
        "assumed; a change over k years sqrt(k) times a year's (assumed: independent years). The published "
        "Tianjin and Hebei figures are whole 万, so their changes carry up to 1 万 of rounding.\n\n"
        f"{summary}\n\n" + headlines(comparisons) + "\n"
        "## Observed against the model\n\n"
        + table(comparisons)
        + f"\n## Natural change and migration, end of {BASE_YEAR} to the last year end\n\n"
        "Observed natural change: the model's own vital rates (sim/data/vital_rates.csv, the bulletins' "
        "rates; a missing year takes the nearest earlier year's) times the mean of each year's two observed "
        "year-end populations; the rest of the observed change is net migration. The model's columns are the "
        "best fit's births less deaths and the rest of its change.\n\n"
        + decomposition_table(parts)
        + "\n## What the model does not have\n\n"
        "- **COVID-19, 2020-2022**: no term for the closures, the controls on moving and on returning to the "
        "city, the students and workers away, or the return in 2023; the scenario's flows after 2020 come from "
        "the 2014-2020 behaviour, the fitted admission control (held at its 2020 strength) and the rest of "
        "China's pool of movers changing at the fitted `population.outside_trend`.\n"
        "- **No policy after 2024**: the scenario has the sub-centre's second batch (2023-24) and nothing else; "
        "any change to admission control, the residence-permit rules or the housing campaigns after 2020 is "
        "missing.\n"
        "- **Natural change follows the data**: births and deaths are the bulletins' rates by province and "
        "year (docs/model.md section 4), so the natural decrease since 2021 (Hebei from 2021, Tianjin from "
        "2021, Beijing near zero from 2022) is in the model where the rates are in sim/data/vital_rates.csv; "
        "missing years take the nearest earlier year's rates (Tianjin 2022, Hebei 2023 and 2024, Beijing "
        "and Tianjin 2024), and the rates apply to the model's own population, so on Beijing's lower basis "
        "its natural change is smaller by the revision's share (about 2 %).\n"
        "- **The census revision itself**: the model's Beijing migrants are the bulletins' before the "
        "revision (745.6 万 at the end of 2019; 841.8 万 counted in 2020).\n\n"
        "## Sources of the observed values\n\n"
        "| series | year end | value | in the source's words | source | address |\n|---|---|---|---|---|---|\n"
        + sources
    )


def main(argv: list[str]) -> None:
    import argparse

    from sim.runfolder import atomic_write

    parser = argparse.ArgumentParser(prog="python -m sim.calibration.holdout", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="scenarios/historical.toml")
    parser.add_argument("--ensemble", default="calibration/ensemble.csv", help="'' for the best fit alone")
    parser.add_argument("--members", type=int, default=32, help="ensemble members run for the 5-95 %% range")
    parser.add_argument("--data", default=str(AFTER_2020.relative_to(CALIBRATION.parent)))
    parser.add_argument("--out", default="calibration/after_2020.md")
    args = parser.parse_args(argv)
    series = load_observations(Path(args.data))
    scenario, ds = run_holdout(args.scenario, series, args.ensemble or None, args.members)
    comparisons = compare(series, ds)
    parts = decompose(series, ds, scenario.regions.vital_rates)
    command = f"python -m sim.calibration.holdout {args.scenario} --members {args.members}"
    if args.ensemble != "calibration/ensemble.csv":
        command += f" --ensemble {args.ensemble!r}" if args.ensemble else " --ensemble ''"
    if args.data != parser.get_default("data"):
        command += f" --data {args.data}"
    out = Path(args.out)
    atomic_write(out, report(scenario, series, comparisons, parts, command, ds.sizes["run"] - 1))
    print(f"{len(comparisons)} comparisons, {ds.sizes['run'] - 1} ensemble members -> {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
