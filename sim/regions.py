"""The region table: codes, 2014 initial stocks and travel times, loaded from data files.

Regions are data, not code: ``sim/data/regions.csv`` holds one row per region with
the source of every number, ``sim/data/travel_time.csv`` the travel-time matrix and
``sim/data/vital_rates.csv`` birth and death rates by province and year.
The rest of China is not a row: it is the outside boundary of the model.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from sim.errors import InputError

DATA = resources.files("sim") / "data"


@dataclass(frozen=True)
class Regions:
    """Region attributes as arrays along the region axis (same order as ``codes``)."""

    codes: tuple[str, ...]
    names: tuple[str, ...]
    provinces: tuple[str, ...]  # province-level unit (registration is provincial; Beijing's is municipal)
    beijing: np.ndarray  # bool: inside Beijing municipality
    central_six: np.ndarray  # bool: one of the six central districts (core + central)
    population_2014: np.ndarray  # persons
    migrant_share_2014: np.ndarray  # residents without the local registration [1]
    net_migration_2014: np.ndarray  # persons/year
    jobs_per_resident_2014: np.ndarray  # jobs/person
    occupancy_2014: np.ndarray  # residents per unit of housing capacity [1]
    services_per_resident_2014: np.ndarray  # relative index [1]
    rent_level_2014: np.ndarray  # cost of space relative to the core in 2014 [1]
    travel_time: np.ndarray  # hours, (region, region), zero diagonal
    vital_years: np.ndarray  # calendar years of the vital-rate table (year,)
    birth_rates: np.ndarray  # 1/year (year, region), each year from the nearest earlier year with data
    death_rates: np.ndarray  # 1/year (year, region)

    def __len__(self) -> int:
        return len(self.codes)

    def index(self, code: str) -> int:
        return self.codes.index(code)

    @property
    def same_province(self) -> np.ndarray:
        """(region, region): True where a move keeps the mover's registration."""
        provinces = np.array(self.provinces)
        return provinces[:, None] == provinces[None, :]

    def vital_rates(self, time: float) -> tuple[np.ndarray, np.ndarray]:
        """Birth and death rates [1/year] (region,) in force at decimal year ``time``.

        A year's rates hold through that calendar year; before the first year with data the
        first year's rates hold, after the last the last year's (docs/model.md section 4).
        """
        row = int(np.clip(np.searchsorted(self.vital_years, np.floor(time), side="right") - 1, 0, None))
        return self.birth_rates[row], self.death_rates[row]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(path: Path, row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError, TypeError):
        raise InputError(path, f"{row.get('code', '?')}.{key}", f"expected a number, got {row.get(key)!r}") from None


def load_regions(
    regions_csv: Path | None = None, travel_csv: Path | None = None, vital_csv: Path | None = None
) -> Regions:
    """Load and check the region table and the travel-time matrix."""
    regions_csv = Path(regions_csv or DATA / "regions.csv")
    travel_csv = Path(travel_csv or DATA / "travel_time.csv")
    rows = _read_csv(regions_csv)
    codes = tuple(row["code"] for row in rows)

    def column(key: str) -> np.ndarray:
        return np.array([_number(regions_csv, row, key) for row in rows])

    def flag(key: str) -> np.ndarray:
        return np.array([row[key].strip().lower() == "true" for row in rows])

    travel = np.full((len(codes), len(codes)), np.nan)
    np.fill_diagonal(travel, 0.0)
    for row in _read_csv(travel_csv):
        pair = f"{row['from']}-{row['to']}"
        if row["from"] not in codes or row["to"] not in codes:
            raise InputError(travel_csv, pair, f"unknown region; expected codes from {regions_csv.name}")
        i, j = codes.index(row["from"]), codes.index(row["to"])
        travel[i, j] = travel[j, i] = _number(travel_csv, {"code": pair, **row}, "hours")
    if np.isnan(travel).any():
        i, j = np.argwhere(np.isnan(travel))[0]
        raise InputError(travel_csv, f"{codes[i]}-{codes[j]}", "missing travel time for this pair")

    provinces = tuple(row["province"] for row in rows)
    years, births, deaths = _vital_rates(Path(vital_csv or DATA / "vital_rates.csv"), provinces)
    return Regions(
        codes=codes,
        names=tuple(row["name"] for row in rows),
        provinces=provinces,
        beijing=flag("beijing"),
        central_six=flag("central_six"),
        population_2014=column("population_2014"),
        migrant_share_2014=column("migrant_share_2014"),
        net_migration_2014=column("net_migration_2014"),
        jobs_per_resident_2014=column("jobs_per_resident_2014"),
        occupancy_2014=column("occupancy_2014"),
        services_per_resident_2014=column("services_per_resident_2014"),
        rent_level_2014=column("rent_level_2014"),
        travel_time=travel,
        vital_years=years,
        birth_rates=births,
        death_rates=deaths,
    )


def _vital_rates(path: Path, provinces: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Birth and death rates by (year, region), each province's gaps filled from its nearest earlier year."""
    table: dict[str, dict[int, tuple[float, float]]] = {}
    for row in _read_csv(path):
        key = f"{row['province']}.{row['year']}"
        rates = tuple(
            _number(path, {"code": key, **row}, k) / 1000 for k in ("birth_rate_per_mille", "death_rate_per_mille")
        )
        table.setdefault(row["province"], {})[int(row["year"])] = rates
    missing = sorted(set(provinces) - set(table))
    if missing:
        raise InputError(path, missing[0], "no birth and death rates for this province")
    years = np.arange(min(min(t) for t in table.values()), max(max(t) for t in table.values()) + 1)
    births, deaths = np.zeros((len(years), len(provinces))), np.zeros((len(years), len(provinces)))
    for column, province in enumerate(provinces):
        known = table[province]
        for row, year in enumerate(years):
            earlier = [y for y in known if y <= year] or [min(known)]
            births[row, column], deaths[row, column] = known[max(earlier)]
    return years, births, deaths
