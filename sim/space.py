"""The parameter address space: every value of a scenario that a run, a sweep or a calibration may set.

An address names one value, the same way everywhere (file key, override, sweep file, API):

- ``population.jobs_weight``: a model parameter (``sim/data/parameters.toml``); parameters with
  ``dims`` also have one address per label, ``population.out_migration_rate.bj_core``, while the
  whole-array address takes one number for every label, a table or a sequence in label order;
- ``policies.NAME.FIELD``: a number, integer, bool or date field of one of the scenario's policies,
  ``policies.NAME.enabled`` to switch a policy, and ``policies.NAME.FIELD.SECTOR`` for the
  entries of sector tables (catalogue coverages).

Dates are values: a TOML date (``datetime.date``), a ``"YYYY-MM"`` string, or a decimal year
(2019.5 = 1 July 2019; a decimal year is turned into the calendar day it falls in).

``with_values`` does not check values itself: it writes them as a scenario file that
``extends`` the given scenario would, and runs the scenario-file validator on that, so a
value is accepted or refused with the same message wherever it comes from.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.policies import POLICY_KINDS
from sim.scenario import (
    FIRST_YEAR,
    LAST_YEAR,
    PARAMETERS,
    Scenario,
    _merge,
    _resolve_parameters,
    _Validator,
    decimal_year,
)
from sim.sectors import FIRM_SECTORS

SETTABLE_FIELD_TYPES = ("number", "integer", "bool", "date", "sector_table")
STOCK_FLOW_GROUPS = ("population", "housing", "services")
"""Parameter groups read only by the stock-and-flow population model (the rest drive agents or events)."""


@dataclass(frozen=True)
class Address:
    """One settable value: its type, unit, bounds and the scenario's current value."""

    name: str
    type: str
    """number, integer, bool or date (a whole-array parameter is a number with ``dims``)."""
    unit: str
    low: float | None
    high: float | None
    value: Any
    """In model form: dates as decimal years, whole-array parameters as arrays."""
    doc: str
    part: str
    """'stock-flow' (the population model alone), 'agents' (firms, institutions) or 'events' (policies)."""
    dims: str = ""
    """For a whole-array parameter: 'region' or 'sector' (its labels have their own addresses)."""

    def bounds_text(self) -> str:
        if self.type == "bool":
            return "true/false"
        if self.type == "date":
            return f"{FIRST_YEAR}-01-01 .. {LAST_YEAR}-12-31"
        return f"{self.low:g} .. {self.high:g}"

    def value_text(self) -> str:
        value = self.value
        if isinstance(value, np.ndarray):
            return f"{value.min():g} .. {value.max():g} (per {self.dims})" if np.ptp(value) else f"{value[0]:g}"
        if self.type == "date" and isinstance(value, float):
            if math.isinf(value):
                return "never"
            return f"{as_date(value).isoformat()} ({value:.4f})"
        return str(value).lower() if isinstance(value, bool) else f"{value:g}" if _number(value) else str(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


FIELD_UNITS = {
    "workers_per_project": "persons",
    "duration_years": "year",
    "count": "institutions",
    "projects": "projects",
    "ramp_years": "year",
    "years": "year",
    "close_share": "1 (share)",
    "coverage_central_six": "1 (share refused)",
    "coverage_elsewhere": "1 (share refused)",
}
"""Units of policy fields whose description in ``sim.policies`` does not end in ``[unit]``."""


def _unit(field_name: str, doc: str, kind: str) -> str:
    found = re.search(r"\[([^\]]+)\]\s*$", doc)
    if found:
        return found.group(1)
    return FIELD_UNITS.get(field_name, {"date": "date", "bool": ""}.get(kind, "1"))


def _labels(scenario: Scenario, dims: str) -> tuple[str, ...]:
    return scenario.regions.codes if dims == "region" else FIRM_SECTORS


def addresses(scenario: Scenario) -> dict[str, Address]:
    """The scenario's address space, in listing order (parameters by group, then policies)."""
    space: dict[str, Address] = {}
    for group, table in PARAMETERS.items():
        part = "stock-flow" if group in STOCK_FLOW_GROUPS else "agents"
        for name, spec in table.items():
            key, (low, high) = f"{group}.{name}", spec["range"]
            value = scenario.parameters[key]
            space[key] = Address(key, "number", spec["unit"], low, high, value, spec["doc"], part, spec["dims"])
            if spec["dims"]:
                for label, item in zip(_labels(scenario, spec["dims"]), value):
                    sub = f"{key}.{label}"
                    space[sub] = Address(sub, "number", spec["unit"], low, high, float(item), spec["doc"], part)
    for name, policy in scenario.document.get("policies", {}).items():
        resolved = scenario.policies.get(name)
        key = f"policies.{name}"
        enabled = resolved is not None
        space[f"{key}.enabled"] = Address(
            f"{key}.enabled", "bool", "", None, None, enabled, "policy in force", "events"
        )
        for field_name, spec in POLICY_KINDS[policy["kind"]].items():
            if spec.type not in SETTABLE_FIELD_TYPES:
                continue
            value = resolved[field_name] if enabled else policy.get(field_name, spec.default)
            where, unit = f"{key}.{field_name}", _unit(field_name, spec.doc, spec.type)
            if spec.type == "sector_table":
                for label in FIRM_SECTORS:
                    item = value.get(label, 0.0) if isinstance(value, Mapping) else None
                    space[f"{where}.{label}"] = Address(
                        f"{where}.{label}", "number", unit, spec.low, spec.high, item, spec.doc, "events"
                    )
                continue
            if spec.type == "date" and isinstance(value, dt.date):
                value = decimal_year(value, Path(str(scenario.path)), where)
            space[where] = Address(where, spec.type, unit, spec.low, spec.high, value, spec.doc, "events")
    return space


def as_date(year: float) -> dt.date:
    """The calendar day a decimal year falls in (the inverse of ``sim.scenario.decimal_year`` on whole days)."""
    whole = math.floor(year)
    # rounded: 2015.58333... (1 August) times 12 is 6.99999... in floating point, which is not July
    months = round((year - whole) * 12, 9)
    month = min(int(months), 11)
    first = dt.date(whole, month + 1, 1)
    days = ((first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - first).days
    return first + dt.timedelta(days=min(int(round((months - month) * days, 6)), days - 1))


def plain(value: Any) -> Any:
    """numpy scalars and arrays as the Python values a TOML file would give."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _file_value(address: Address, value: Any, where: str) -> Any:
    """The value as a scenario file writes it (dates as TOML dates, arrays as tables)."""
    value = plain(value)
    if address.type == "date" and _number(value):
        if not math.isfinite(value) or not FIRST_YEAR <= value < LAST_YEAR + 1:
            raise InputError(
                where, address.name, f"date {value!r} is out of range: expected {FIRST_YEAR}.0 to {LAST_YEAR + 1}.0"
            )
        return as_date(float(value))
    return value


def unknown_address(address: str, space: Mapping[str, Address], scenario: Scenario) -> str:
    """The message for an address the scenario does not have: the closest one, and where to find the rest."""
    close = difflib.get_close_matches(address, list(space), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown address; {hint}(`python -m sim params {scenario.path}` lists all {len(space)})"


def with_values(scenario: Scenario, values: Mapping[str, Any], where: str = "values") -> Scenario:
    """A new validated scenario with ``values`` (address -> value) set; ``where`` names the source in errors.

    The result has its own config hash; the given scenario is unchanged (scenarios are immutable).
    """
    if not values:
        return scenario
    space = addresses(scenario)
    document = _thaw(scenario.document)
    override: dict[str, Any] = {}
    # whole-array parameters first, so that a label address given alongside refines them
    for address in sorted(values, key=lambda a: a.count(".")):
        if address not in space:
            raise InputError(where, address, unknown_address(address, space, scenario))
        spec, value = space[address], _file_value(space[address], values[address], where)
        parts = address.split(".")
        if parts[0] == "policies":
            policy = override.setdefault("policies", {}).setdefault(parts[1], {})
            if len(parts) == 4:  # an entry of a sector table: refine the table the scenario has
                table = policy.setdefault(parts[2], dict(document["policies"][parts[1]].get(parts[2], {})))
                table[parts[3]] = value
            else:
                policy[parts[2]] = value
            continue
        group, name = parts[0], parts[1]
        table = override.setdefault(group, {})
        labels = _labels(scenario, PARAMETERS[group][name]["dims"]) if PARAMETERS[group][name]["dims"] else ()
        if spec.dims and isinstance(value, list | tuple):  # a sequence in label order
            if len(value) != len(labels):
                raise InputError(
                    where, address, f"expected one number or {len(labels)} (one per {spec.dims}), got {len(value)}"
                )
            value = dict(zip(labels, value))
        if len(parts) == 3:  # one label of a per-region / per-sector parameter: keep the others
            current = table.get(name)
            if not isinstance(current, dict):
                base = scenario.parameters[f"{group}.{name}"]
                current = {label: float(item) for label, item in zip(labels, base)}
                if _number(table.get(name)):
                    current = dict.fromkeys(labels, table[name])
            current[parts[2]] = value
            value = current
        table[name] = value
    return derive(scenario, override, where)


def _thaw(value: Any) -> Any:
    """A mutable deep copy of a frozen scenario document."""
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def derive(scenario: Scenario, override: Mapping[str, Any], where: str) -> Scenario:
    """The scenario with ``override`` (a scenario-file document, as a file extending it) merged over it.

    Checked by the scenario-file validator: ``override`` is validated as the last file of the
    ``extends`` chain, then the merge is resolved as ``load_scenario`` resolves it.
    """
    regions = scenario.regions
    document = _thaw(scenario.document)
    validator = _Validator(regions)
    validator.check_file(Path(where), dict(override), document.get("policies", {}))
    document = _merge(document, _thaw(dict(override)))
    run = document["run"]
    if run["end"] <= run["start"]:
        raise InputError(where, "run.end", f"expected run.end after run.start, got {run['start']} and {run['end']}")
    policies = {}
    for name, policy in document.get("policies", {}).items():
        resolved = validator.resolve_policy(Path(where), name, policy)
        if policy.get("enabled", True):
            policies[name] = resolved
    return Scenario(
        name=scenario.name,
        path=scenario.path,
        description=scenario.description,
        start=run["start"],
        end=run["end"],
        seed=run["seed"],
        method=run["method"],
        parameters=_resolve_parameters(document, regions),
        policies=policies,
        document=document,
        regions=regions,
    )


def listing(scenario: Scenario) -> str:
    """The address space as a fixed-width table: address, type, unit, bounds, current value."""
    rows = [("address", "type", "unit", "bounds", "value")]
    rows += [(a.name, a.type, a.unit, a.bounds_text(), a.value_text()) for a in addresses(scenario).values()]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows)


def run_coordinates(scenario: Scenario, values: Sequence[Mapping[str, Any]]) -> dict[str, tuple]:
    """Coordinates along ``run``: one per address set in any run, holding each run's value in model form.

    A run that does not set an address shows the scenario's value, so every run is fully
    labeled; dates are decimal years; a whole-array parameter is a (run, label) coordinate.
    """
    varied = sorted({address for override in values for address in override})
    if not varied:
        return {}
    per_run = [addresses(with_values(scenario, override, "overrides")) for override in values]
    coords = {}
    for address in varied:
        spec = per_run[0][address]
        column = np.array([space[address].value for space in per_run])
        # per-sector parameters use the four firm sectors, not the results' job sectors (which add 'public')
        dims = ("run", {"region": "region", "sector": "firm_sector"}[spec.dims]) if spec.dims else ("run",)
        attrs = {"units": "year (decimal)" if spec.type == "date" else spec.unit, "long_name": spec.doc}
        coords[address] = (dims, column, attrs)
        if spec.dims == "sector":
            coords["firm_sector"] = ("firm_sector", list(FIRM_SECTORS))
    return coords


def group_runs(
    scenario: Scenario, values: Sequence[Mapping[str, Any]], where: str
) -> list[tuple[Scenario, list[int], list[dict[str, Any]]]]:
    """Runs that can share one Model: (its scenario, run positions, per-run parameter overrides).

    Each run's values are resolved with ``with_values`` (errors name ``where``, the run and the
    address); runs are grouped when their policies and scenario-wide settings are equal, and
    their parameters ride on the run axis. The coupled Model takes any address per run; the
    stock-and-flow replay (which holds recorded levers) needs one group.
    """
    groups: dict[str, tuple[Scenario, list[int], list[dict[str, Any]]]] = {}
    for position, override in enumerate(values):
        resolved = with_values(scenario, override, f"{where}: run {position}") if override else scenario
        shared = {k: v for k, v in resolved.document.items() if k in ("run", "policies")}
        shared["workforce"] = float(resolved.parameters["construction.workforce_capacity"])
        key = json.dumps(shared, sort_keys=True, default=str)
        group = groups.setdefault(key, (resolved, [], []))
        group[1].append(position)
        base = group[0].parameters
        group[2].append({k: v for k, v in resolved.parameters.items() if not np.array_equal(v, base[k])})
    return list(groups.values())
