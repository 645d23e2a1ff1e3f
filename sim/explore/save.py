"""The page's "Save scenario": the current setting as a scenario file extending the explored one.

The file holds only what changed (as ``python -m sim diff`` would show it): policy fields under
``[policies.NAME]``, parameters under their group, dates as TOML dates. It is validated by loading
it back before it is kept, so ``python -m sim run`` and ``compare`` accept whatever was written.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from sim.errors import InputError
from sim.scenario import Scenario, load_scenario
from sim.space import addresses, as_date

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def changed_values(scenario: Scenario, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that differ from the scenario's (the page sends every slider)."""
    space = addresses(scenario)
    out = {}
    for address, value in values.items():
        if address not in space:
            raise InputError("explore", address, "unknown address")
        current = space[address].value
        if isinstance(current, float | int) and math.isclose(float(value), float(current), rel_tol=0, abs_tol=1e-9):
            continue
        out[address] = value
    return out


def scenario_document(scenario: Scenario, values: Mapping[str, Any], name: str, folder: Path) -> dict[str, Any]:
    """The scenario file (as a TOML document) that extends ``scenario`` and sets ``values``."""
    space = addresses(scenario)
    extends = os.path.relpath(Path(scenario.path).resolve(), folder.resolve())
    changed = changed_values(scenario, values)
    listed = ", ".join(f"{a} = {_text(space[a].type, v)}" for a, v in changed.items()) or "nothing changed"
    document: dict[str, Any] = {
        "extends": Path(extends).as_posix(),
        "name": name,
        "description": f"{scenario.name} explored: {listed}",
    }
    for address, value in changed.items():
        parts, kind = address.split("."), space[address].type
        if kind == "bool":
            value = bool(value)
        else:
            value = (
                as_date(float(value)) if kind == "date" else int(round(value)) if kind == "integer" else float(value)
            )
        table = document
        for part in parts[:-1]:
            table = table.setdefault(part, {})
        table[parts[-1]] = value
    return document


def _text(kind: str, value: Any) -> str:
    if kind == "bool":
        return str(bool(value)).lower()
    if kind == "date":
        return as_date(float(value)).isoformat()
    return f"{int(round(value))}" if kind == "integer" else f"{float(value):g}"


def save(scenario: Scenario, values: Mapping[str, Any], name: str, folder: Path) -> Path:
    """Write ``folder/NAME.toml`` (never over an existing file), check it loads, return its path."""
    if not NAME.match(name):
        raise InputError("explore", "name", f"expected lower-case letters, digits and _ (a file name), got {name!r}")
    path = folder / f"{name}.toml"
    if path.exists():
        raise InputError(str(path), "name", "a file of this name exists; choose another name")
    text = tomli_w.dumps(scenario_document(scenario, values, name, folder))
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".toml.part")
    partial.write_text(text, encoding="utf-8")
    try:
        load_scenario(partial)
    except InputError:
        partial.unlink()
        raise
    partial.rename(path)
    return path
