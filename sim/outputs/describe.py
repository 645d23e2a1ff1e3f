"""Scenarios in words: what a story changes relative to the scenario it extends, and short summaries.

Used by ``sim diff``, ``sim list policies``, the report, and ``Scenario``'s terminal and notebook
reprs. Only the scenario layer is imported (no xarray, no matplotlib).
"""

from __future__ import annotations

import datetime as dt
import html
import tomllib
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.scenario import Scenario, load_scenario


def _extends(path: Path) -> tuple[Path | None, bool]:
    """The file ``path`` extends (or None), and whether ``path`` is a whole scenario (it has a ``name``)."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return None, False  # load_scenario has already reported what is wrong with the file
    parent = document.get("extends")
    return ((path.parent / parent).resolve() if isinstance(parent, str) else None), "name" in document


def parent_path(path: str | Path) -> Path | None:
    """The scenario a scenario file ``extends``, or None for a base scenario.

    Files of values without a ``name`` (calibration/fitted.toml) are passed over: they are not scenarios
    to compare with, so a scenario that extends only such a file is a base scenario.
    """
    parent, _ = _extends(Path(path))
    while parent is not None:
        grandparent, whole = _extends(parent)
        if whole or not parent.is_file():
            return parent
        parent = grandparent
    return None


def value_files(path: str | Path) -> list[Path]:
    """The files of values without a ``name`` that a scenario takes in directly or through its parents' chain
    up to its parent scenario (e.g. calibration/fitted.toml for historical.toml)."""
    found, parent = [], _extends(Path(path))[0]
    while parent is not None and parent.is_file():
        grandparent, whole = _extends(parent)
        if whole:
            break
        found.append(parent)
        parent = grandparent
    return found


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


UNSET = object()
"""A field one side does not set (the policy kind's default applies)."""


def _show(value: Any) -> str:
    if value is UNSET:
        return "(default)"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):  # a frozen scenario holds its lists as tuples
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)


def _enabled(policies: dict[str, Any], name: str) -> bool:
    return name in policies and policies[name].get("enabled", True)


def differences(child: Scenario, parent: Scenario) -> list[str]:
    """What ``child`` changes relative to ``parent``, one line each: ``+`` added, ``-`` removed, ``~`` changed."""
    lines = []
    mine, theirs = child.document.get("policies", {}), parent.document.get("policies", {})
    for name in sorted(set(mine) | set(theirs)):
        now, before = _enabled(mine, name), _enabled(theirs, name)
        if now and not before:
            fields = ", ".join(f"{k} = {_show(v)}" for k, v in mine[name].items() if k not in ("kind", "enabled"))
            lines.append(f"+ policy {name} ({mine[name].get('kind', theirs.get(name, {}).get('kind'))}): {fields}")
        elif before and not now:
            lines.append(f"- policy {name} ({theirs[name]['kind']}) disabled")
        elif now:
            old, new = _flat(theirs[name]), _flat(mine[name])
            for key in sorted(set(old) | set(new)):
                if old.get(key, UNSET) != new.get(key, UNSET):
                    lines.append(f"~ policy {name}.{key}: {_show(old.get(key, UNSET))} -> {_show(new.get(key, UNSET))}")
    skip = {"name", "description", "policies", "extends"}
    old = _flat({k: v for k, v in parent.document.items() if k not in skip})
    new = _flat({k: v for k, v in child.document.items() if k not in skip})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"~ {key}: {_show(old.get(key, UNSET))} -> {_show(new.get(key, UNSET))}")
    return lines


def diff_against_parent(path: str | Path) -> tuple[Scenario, Scenario | None, list[str]]:
    """Load a scenario file and the file it extends; the differences, or None and [] for a base scenario."""
    child = load_scenario(path)
    parent_file = parent_path(path)
    if parent_file is None:
        return child, None, []
    if not parent_file.is_file():
        raise InputError(path, "extends", f"file {parent_file.name!r} not found")
    parent = load_scenario(parent_file)
    return child, parent, differences(child, parent)


def _when(policy: dict[str, Any]) -> str:
    """A policy's dates as years and months (decimal years in the resolved scenario)."""

    def month(value: float) -> str:
        year = int(value + 1e-9)
        return f"{year}-{int((value - year) * 12 + 1e-6) + 1:02d}"  # the month the date falls in

    if "date" in policy:
        return month(policy["date"])
    start, end = policy.get("start"), policy.get("end")
    if start is None:
        return ""
    if end is None or end == float("inf"):
        return f"from {month(start)}"
    return month(start) if end == start else f"{month(start)} to {month(end)}"


def policy_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(name, kind, when) of each enabled policy, in time order."""

    def first(policy: dict[str, Any]) -> float:
        return policy.get("date", policy.get("start", 0.0))

    ordered = sorted(scenario.policies.items(), key=lambda item: first(item[1]))
    return [(name, policy["kind"], _when(policy)) for name, policy in ordered]


def scenario_html(scenario: Scenario) -> str:
    """The notebook view of a scenario: settings, description and a table of its policies."""
    rows = "".join(
        f"<tr><td><code>{html.escape(n)}</code></td><td>{html.escape(k)}</td><td>{html.escape(w)}</td></tr>"
        for n, k, w in policy_rows(scenario)
    )
    return (
        f"<div><b>Scenario {html.escape(scenario.name)}</b> ({scenario.start}-{scenario.end}, seed {scenario.seed}, "
        f"{scenario.method}; {html.escape(str(scenario.path))})<br><i>{html.escape(scenario.description)}</i>"
        f"<details><summary>{len(scenario.policies)} policies</summary><table>"
        f"<tr><th>policy</th><th>kind</th><th>when</th></tr>{rows}</table></details></div>"
    )
