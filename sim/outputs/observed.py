"""What the model is drawn against: the report's targets, public population series, plan levels.

All three are data files under ``calibration/`` with the source of every row; this module only
reads them. A missing folder (an installed package without the source tree) yields nothing,
so figures are drawn without the observations rather than failing.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CALIBRATION = Path(__file__).resolve().parents[2] / "calibration"


@dataclass(frozen=True)
class Observation:
    """One observed value of the population summed over ``regions``."""

    regions: tuple[str, ...]
    time: float
    value: float
    kind: str  # bulletin | census
    source: str


@dataclass(frozen=True)
class PlanLevel:
    """A plan's level for the population summed over ``regions``, from ``start`` to ``end``."""

    regions: tuple[str, ...]
    start: float
    end: float
    low: float | None
    high: float | None
    meaning: str
    source: str


def _rows(name: str) -> list[dict[str, str]]:
    path = CALIBRATION / name
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def population_observed() -> tuple[Observation, ...]:
    return tuple(
        Observation(tuple(r["regions"].split("+")), float(r["time"]), float(r["value"]), r["kind"], r["source"])
        for r in _rows("population_observed.csv")
    )


@cache
def plan_levels() -> tuple[PlanLevel, ...]:
    def number(text: str) -> float | None:
        return float(text) if text.strip() else None

    return tuple(
        PlanLevel(
            tuple(r["regions"].split("+")),
            float(r["from"]),
            float(r["to"]),
            number(r["low"]),
            number(r["high"]),
            r["meaning"],
            r["source"],
        )
        for r in _rows("plan_levels.csv")
    )


@cache
def targets() -> dict[str, dict]:
    """The report's figures (calibration/targets.toml): name -> output, select, time, value, relation."""
    path = CALIBRATION / "targets.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def observed_for(regions: tuple[str, ...]) -> list[Observation]:
    return [o for o in population_observed() if set(o.regions) == set(regions)]


def plans_for(regions: tuple[str, ...]) -> list[PlanLevel]:
    return [p for p in plan_levels() if set(p.regions) == set(regions)]


def targets_for(output: str, select: dict | None = None) -> list[tuple[str, dict]]:
    """Level targets read from ``output`` with exactly this selection (None: any selection)."""
    found = []
    for name, target in targets().items():
        if target.get("output") != output:
            continue
        if select is not None and target.get("select", {}) != select:
            continue
        if "change_from" in target or "share_of" in target:
            continue  # changes and shares are not levels of the plotted series
        found.append((name, target))
    return found
