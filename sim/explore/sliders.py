"""Which values of a scenario the explore page offers as sliders, with units and practical ranges.

Every policy of the scenario gives a switch (in force or not), its strength (the one field that says how much: a control
strength, a dispersal rate, rail hours, institutions moved, projects built) and its date (when it
takes effect or starts) as a date slider in months. A few uncertain parameters follow, with the
calibration's bounds (calibration/free_parameters.toml) where it lists them. The addresses and
units are those of the parameter space (``sim.space``); slider ranges are narrower than the
space's bounds (0 to 10,000 institutions is no slider) but never outside them.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from typing import Any

from sim.outputs.observed import CALIBRATION
from sim.scenario import Scenario
from sim.space import Address, addresses

STRENGTH = {
    "admission_control": "strength",
    "dispersal": "rate",
    "demolition": "housing_rate",
    "land_release": "housing_build_rate",
    "housing_cap": "population",
    "rail": "hours",
    "incentive": "utility",
    "institution_move": "count",
    "construction": "projects",
}
"""Policy kind -> the field that says how strong the policy is (catalogues have only a date)."""
DATE = ("date", "start")
TIMELINE_KINDS = ("admission_control", "demolition", "land_release", "housing_cap", "rail", "construction")
"""Policy kinds that act on the stocks through the timeline's levers: the stock-and-flow view answers them
(their effect on firms, e.g. rail on firms' moves, is left out). Catalogues, dispersal, incentives and
institution moves act through the agents only: that view holds them as in the explored run."""

UNCERTAINTIES = (
    "population.jobs_weight",
    "population.move_sensitivity",
    "population.outside_in_migration",
    "housing.construction_time",
    "institutions.household_follow_share",
    "firms.relocation_rate",
    "construction.workforce_capacity",
)
"""Chosen uncertainties: how residents answer jobs and utility, arrivals from the rest of China, how fast
housing follows, households following moved staff, how readily firms move, and the building crews."""


@dataclass(frozen=True)
class Slider:
    """One slider: an address of the space, what to call it, its unit, range, step and the explored value."""

    address: str
    label: str
    group: str
    type: str  # number | integer | date (decimal years, stepped by month) | bool (a policy's switch)
    unit: str
    low: float
    high: float
    step: float
    value: float | bool  # a bool for a switch
    stockflow: bool  # whether the stock-and-flow view answers it (else only the full model does)
    doc: str

    def json(self) -> dict[str, Any]:
        return asdict(self)


def _free_bounds() -> dict[str, tuple[float, float]]:
    path = CALIBRATION / "free_parameters.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as handle:
        table = tomllib.load(handle)
    return {
        f"{group}.{name}": tuple(spec["bounds"])
        for group, names in table.items()
        for name, spec in names.items()
        if isinstance(spec, dict) and "bounds" in spec
    }


def _range(address: Address, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """A practical slider range around the value: the calibration's bounds, else 0 .. 3x (within the space's)."""
    value = float(address.value)
    if bounds is not None:
        low, high = bounds
    else:
        low = 0.0 if address.low is None else max(address.low, 0.0)
        high = value * 3 if value > 0 else 1.0
    if address.low is not None:
        low = max(low, address.low)
    if address.high is not None:
        high = min(high, address.high)
    return min(low, value), max(high, value)


def _step(kind: str, low: float, high: float) -> float:
    if kind == "integer":
        return 1.0
    if kind == "date":
        return 1 / 12
    raw = (high - low) / 100
    return 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0


def sliders(scenario: Scenario) -> list[Slider]:
    """The page's sliders for this scenario: each policy's strength and date, then the chosen uncertainties."""
    space, free, out = addresses(scenario), _free_bounds(), []
    start, end = float(scenario.start), float(scenario.end)
    for name, policy in scenario.document.get("policies", {}).items():
        kind = policy["kind"]
        switch = space[f"policies.{name}.enabled"]
        out.append(
            Slider(
                switch.name,
                f"{name}: in force",
                name,
                "bool",
                "",
                0,
                1,
                1,
                switch.value,
                kind in TIMELINE_KINDS,
                switch.doc,
            )
        )
        if kind in STRENGTH:
            a = space[f"policies.{name}.{STRENGTH[kind]}"]
            low, high = _range(a, None)
            out.append(_slider(a, f"{name}: {STRENGTH[kind]}", name, low, high, kind in TIMELINE_KINDS))
        for field in DATE:
            a = space.get(f"policies.{name}.{field}")
            if a is not None and isinstance(a.value, float) and math.isfinite(a.value):
                low, high = min(start, a.value), max(end - 1 / 12, a.value)
                out.append(_slider(a, f"{name}: {field}", name, low, high, kind in TIMELINE_KINDS))
                break
    crews = [p["workers_per_project"] for p in scenario.policies.values() if p["kind"] == "construction"]
    for address in UNCERTAINTIES:
        a = space[address]
        low, high = _range(a, free.get(address))
        if address == "construction.workforce_capacity":  # fewer than one project's crew: refused, not a setting
            low = max([low, *crews])
        answered = a.part == "stock-flow" or address.split(".")[0] in ("institutions", "construction")
        out.append(_slider(a, address, "uncertainties", low, high, answered))
    return out


def _slider(a: Address, label: str, group: str, low: float, high: float, stockflow: bool) -> Slider:
    kind = "date" if a.type == "date" else a.type
    unit = "" if kind == "date" else a.unit
    return Slider(a.name, label, group, kind, unit, low, high, _step(kind, low, high), float(a.value), stockflow, a.doc)
