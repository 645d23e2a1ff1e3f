"""Parameter sets for a batch: the scenario's values plus per-run overrides, checked and stacked.

A sweep or a calibration runs many parameter sets as one batch; each override is checked
as strictly as a scenario file (known key, finite, in range, right shape), and every
parameter becomes one array with the run axis first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from sim.errors import InputError
from sim.scenario import PARAMETERS, Scenario, suggest
from sim.sectors import FIRM_SECTORS


def stack_parameters(scenario: Scenario, overrides: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """One array per parameter with the run axis first, from the scenario plus per-run overrides.

    Overrides are checked like scenario values: known keys ('group.name'), finite numbers
    within the parameter's range, one number or one per region / sector; 'group.name.label'
    sets one region's or sector's entry (as the parameter space addresses it).
    """
    where = f"overrides of {scenario.path}"
    overrides = [_by_parameter(scenario, override, where, run) for run, override in enumerate(overrides)]
    for run, override in enumerate(overrides):
        for key, value in override.items():
            if key not in scenario.parameters:
                raise InputError(
                    where, f"run {run}: {key}", f"unknown parameter; {suggest(key, tuple(scenario.parameters))}"
                )
            group, name = key.split(".", 1)
            low, high = PARAMETERS[group][name]["range"]
            array = np.asarray(value, dtype=float)
            if array.shape not in ((), np.shape(scenario.parameters[key])):
                expected = (
                    f"one number or {np.shape(scenario.parameters[key])[0]} (one per {PARAMETERS[group][name]['dims']})"
                )
                raise InputError(where, f"run {run}: {key}", f"expected {expected}, got shape {array.shape}")
            if not (np.isfinite(array).all() and (array >= low).all() and (array <= high).all()):
                raise InputError(where, f"run {run}: {key}", f"value {value} is out of range: expected {low} to {high}")
    # the scenario's value for every run, then each run's overrides (one pass over what is overridden)
    stacked = {
        key: np.repeat(np.asarray(base, float)[None], len(overrides), axis=0)
        for key, base in scenario.parameters.items()
    }
    for run, override in enumerate(overrides):
        for key, value in override.items():
            stacked[key][run] = np.asarray(value, float)
    return stacked


def _by_parameter(scenario: Scenario, override: Mapping[str, Any], where: str, run: int) -> dict[str, Any]:
    """The override with label addresses ('population.out_migration_rate.tianjin') folded into whole arrays.

    Whole parameters (and unknown keys, which the caller names) are kept; a label address then refines its
    parameter's array, as in the parameter space (``sim.space.with_values``).
    """
    labelled = [k for k in override if k not in scenario.parameters and k.rpartition(".")[0] in scenario.parameters]
    folded = {k: v for k, v in override.items() if k not in labelled}
    for key in labelled:
        base, _, label = key.rpartition(".")
        group, name = base.split(".", 1)
        dims = PARAMETERS[group][name]["dims"]
        labels = scenario.regions.codes if dims == "region" else FIRM_SECTORS if dims == "sector" else ()
        if label not in labels:
            raise InputError(where, f"run {run}: {key}", f"unknown label; {suggest(label, tuple(labels))}")
        if np.ndim(override[key]) != 0:
            raise InputError(where, f"run {run}: {key}", f"expected one number, got {override[key]!r}")
        array = np.broadcast_to(
            np.array(folded.get(base, scenario.parameters[base]), dtype=float), np.shape(scenario.parameters[base])
        ).copy()
        array[labels.index(label)] = override[key]
        folded[base] = array
    return folded


def pick(cls: type, values: dict[str, np.ndarray], group: str, rename: Mapping[str, str] | None = None) -> dict:
    """The arguments of parameter dataclass ``cls`` from one group ('firms.entry_rate' -> entry_rate)."""
    rename = rename or {}
    names = {f.name for f in fields(cls)}
    picked = {
        rename.get(k.split(".", 1)[1], k.split(".", 1)[1]): v for k, v in values.items() if k.startswith(group + ".")
    }
    return {k: v for k, v in picked.items() if k in names}
