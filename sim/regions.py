"""The region table: codes, 2014 initial stocks and travel times, loaded from data files.

Regions are data, not code: ``sim/data/regions.csv`` holds one row per region with
the source of every number, ``sim/data/travel_time.csv`` the travel-time matrix.
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
    beijing: np.ndarray  # bool: inside Beijing municipality
    central_six: np.ndarray  # bool: one of the six central districts (core + central)
    population_2014: np.ndarray  # persons
    birth_rate: np.ndarray  # 1/year
    death_rate: np.ndarray  # 1/year
    net_migration_2014: np.ndarray  # persons/year
    jobs_per_resident_2014: np.ndarray  # jobs/person
    occupancy_2014: np.ndarray  # residents per unit of housing capacity [1]
    services_per_resident_2014: np.ndarray  # relative index [1]
    rent_level_2014: np.ndarray  # cost of space relative to the core in 2014 [1]
    travel_time: np.ndarray  # hours, (region, region), zero diagonal

    def __len__(self) -> int:
        return len(self.codes)

    def index(self, code: str) -> int:
        return self.codes.index(code)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _number(path: Path, row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, ValueError, TypeError):
        raise InputError(path, f"{row.get('code', '?')}.{key}", f"expected a number, got {row.get(key)!r}") from None


def load_regions(regions_csv: Path | None = None, travel_csv: Path | None = None) -> Regions:
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

    return Regions(
        codes=codes,
        names=tuple(row["name"] for row in rows),
        beijing=flag("beijing"),
        central_six=flag("central_six"),
        population_2014=column("population_2014"),
        birth_rate=column("birth_rate"),
        death_rate=column("death_rate"),
        net_migration_2014=column("net_migration_2014"),
        jobs_per_resident_2014=column("jobs_per_resident_2014"),
        occupancy_2014=column("occupancy_2014"),
        services_per_resident_2014=column("services_per_resident_2014"),
        rent_level_2014=column("rent_level_2014"),
        travel_time=travel,
    )
