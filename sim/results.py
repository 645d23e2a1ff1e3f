"""Labeled results: the model's history as an ``xarray.Dataset`` (time x region x sector [x run]).

xarray because modelers slice by label (``ds.population.sel(region="bj_core")``), it keeps
units and provenance as attributes, and it writes NetCDF and tidy tables directly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sim.errors import InputError
from sim.model import RECORDED, History, Model, check_outputs
from sim.scenario import Scenario, check_seed
from sim.sectors import INSTITUTION_KINDS, JOB_SECTORS
from sim.space import plain, run_coordinates, with_values


def month_dates(time: np.ndarray) -> np.ndarray:
    """Decimal years on the monthly grid (2020.0 = 1 Jan 2020) as datetime64 month starts."""
    months = np.rint(np.asarray(time) * 12).astype(np.int64) - 1970 * 12
    return months.astype("datetime64[M]").astype("datetime64[ns]")


def with_date_index(dataset: xr.Dataset) -> xr.Dataset:
    """Index the ``date`` coordinate so ``ds.sel(date="2020-06")`` works (NetCDF does not store indexes)."""
    if "date" in dataset.coords and "date" not in dataset.indexes and "time" in dataset.dims:
        return dataset.set_xindex("date")
    return dataset


def to_dataset(history: History, scenario: Scenario, seeds: Sequence[int]) -> xr.Dataset:
    """Wrap a history in labeled arrays with units; the run axis is kept (``run`` = 0..n-1)."""
    coords = {
        "time": ("time", history.time, {"units": "year", "long_name": "decimal year (2014.0 = start of January 2014)"}),
        "run": ("run", np.arange(len(seeds))),
        "region": ("region", list(scenario.regions.codes)),
        "destination": ("destination", list(scenario.regions.codes)),
        "sector": ("sector", list(JOB_SECTORS)),
        "institution": ("institution", list(INSTITUTION_KINDS)),
        "seed": ("run", np.asarray(seeds, dtype=np.int32)),
        # beside `time` (which the schema and the targets use): pandas/xarray date idioms
        "date": ("time", month_dates(history.time), {"long_name": "first day of the month"}),
    }
    variables = {}
    for name in history.values:  # the model's outputs: all of RECORDED unless it was asked for some
        units, dims, meaning = RECORDED[name]
        variables[name] = (("time", "run", *dims), history.values[name], {"units": units, "long_name": meaning})
    dataset = xr.Dataset(
        variables,
        coords=coords,
        attrs={"scenario": scenario.name, "config_hash": scenario.config_hash, "description": scenario.description},
    )
    return with_date_index(dataset)


def _check_run_args(
    scenario: Any,
    seeds: Any,
    overrides: Any,
    progress: Any,
    where: str,
) -> tuple[list[int], list[Mapping[str, Any]] | None]:
    """The API's arguments checked as strictly as files, before any work (InputError naming the argument)."""
    _check_scenario(scenario, where)
    if isinstance(seeds, str | bytes | Mapping) or not isinstance(seeds, Sequence | np.ndarray):
        raise InputError(where, "seeds", f"expected a list of integer seeds, got {type(seeds).__name__}")
    if len(seeds) == 0:
        raise InputError(where, "seeds", "expected at least one seed, got an empty list")
    checked = [check_seed(seed, where, f"seeds[{i}]") for i, seed in enumerate(seeds)]
    if progress is not None and not callable(progress):
        raise InputError(where, "progress", f"expected a function (done, total) or None, got {type(progress).__name__}")
    if overrides is None:
        return checked, None
    if isinstance(overrides, str | bytes | Mapping) or not isinstance(overrides, Sequence):
        raise InputError(
            where, "overrides", f"expected a list of mappings (one per seed), got {type(overrides).__name__}"
        )
    if len(overrides) != len(checked):
        raise InputError(where, "overrides", f"expected one mapping per seed ({len(checked)}), got {len(overrides)}")
    for run, override in enumerate(overrides):
        if not isinstance(override, Mapping):
            raise InputError(where, f"overrides[{run}]", f"expected a mapping, got {type(override).__name__}")
        for key, value in override.items():
            if not isinstance(key, str):
                raise InputError(where, f"overrides[{run}]", f"expected 'group.name' keys, got {key!r}")
            if not key.startswith("policies.") and not _is_numeric(value):  # policy values: dates, bools
                raise InputError(where, f"run {run}: {key}", f"expected a number or a list of numbers, got {value!r}")
    return checked, list(overrides)


def _check_scenario(scenario: Any, where: str) -> None:
    if not isinstance(scenario, Scenario):
        raise InputError(
            where, "scenario", f"expected a sim.Scenario (sim.load_scenario), got {type(scenario).__name__}"
        )


def _is_numeric(value: Any) -> bool:
    """A real number (not a bool or a string) or a flat list / array of them."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, Real):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim <= 1 and (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating))
    if isinstance(value, list | tuple):
        return all(isinstance(v, Real) and not isinstance(v, bool | np.bool_) for v in value)
    return False


def run_batch(
    scenario: Scenario,
    seeds: Sequence[int],
    overrides: Sequence[Mapping[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    outputs: Sequence[str] | None = None,
) -> xr.Dataset:
    """Run many seeds / parameter sets of one scenario together as one batch (a ``run`` dimension).

    ``overrides`` holds one mapping per run, address -> value (``sim.space``); the ``run``
    dimension carries each set address as a coordinate beside ``seed``. A run that reaches a
    negative or non-finite stock is masked (NaN from then on) while the others finish;
    ``attrs['failures']`` lists such runs as JSON (``[]`` when all passed). ``outputs`` names
    the variables to record (all unless given): the others are not computed.
    """
    seeds, overrides = _check_run_args(scenario, seeds, overrides, progress, "sim.run_batch")
    return _run(scenario, seeds, overrides, progress, "mask", check_outputs(outputs))


def _run(scenario, seeds, overrides, progress, failures: str, outputs: Sequence[str] | None = None) -> xr.Dataset:
    """The batch as one Model: parameters and policies (levers, dates) ride on the run axis."""
    model = Model(scenario, seeds, overrides, outputs=outputs)
    history = model.run(progress, failures)
    dataset = to_dataset(history, scenario, seeds)
    dataset = dataset.assign_coords(run_coordinates(scenario, overrides or []))
    if all(events is history.events[0] for events in history.events):  # one timeline: one event log
        dataset.attrs["events"] = "\n".join(f"{m:g}\t{name}\t{action}" for m, name, action in history.events[0])
    dataset.attrs["failures"] = json.dumps(sorted(model.check.failures, key=lambda r: r["run"]), allow_nan=False)
    return dataset


def run(
    scenario: Scenario,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    outputs: Sequence[str] | None = None,
) -> xr.Dataset:
    """Run one scenario (its own seed unless given): results without a ``run`` dimension.

    ``params`` (address -> value, ``python -m sim params`` lists them) are checked like a
    scenario file; the dataset's attributes record them and the changed scenario's config hash.
    ``outputs`` records only the named variables (the others are not computed). A negative or
    non-finite stock stops the run with ``sim.errors.StateError``.
    """
    _check_scenario(scenario, "sim.run")
    if seed is not None:
        check_seed(seed, "sim.run", "seed")
    chosen = check_outputs(outputs)
    scenario = with_values(scenario, params or {}, "params")
    seeds, _ = _check_run_args(scenario, [scenario.seed if seed is None else seed], None, progress, "sim.run")
    dataset = _run(scenario, seeds, None, progress, "raise", chosen).isel(run=0)
    if params:
        dataset.attrs["params"] = json.dumps({k: plain(v) for k, v in params.items()}, default=str)
    return dataset


def tidy_columns(dataset: xr.Dataset) -> list[str]:
    """The tidy table's columns: time, every other dimension, variable, value, unit."""
    return ["time", *[str(c) for c in dataset.dims if c != "time"], "variable", "value", "unit"]


def _field(value: Any) -> str:
    """One CSV field as the csv module writes it (floats in their shortest round trip, quoted when needed)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([value, ""])
    return buffer.getvalue()[:-2]


def tidy_lines(dataset: xr.Dataset, name: str) -> list[str]:
    """The tidy CSV's lines of one variable: its labels, the variable, the value and the unit, one line per value.

    Every dimension of the dataset is a column, so that no two rows of a variable share their
    labels; a dimension the variable does not have is left empty, and so is a missing value
    (NaN). Lines follow the variable's own dimensions in order (the last one fastest). The label
    columns are joined by numpy's string functions over the variable's shape, not row by row.
    """
    variable = dataset[name]
    columns = tidy_columns(dataset)[:-3]
    dims = [str(d) for d in variable.dims]
    shape = variable.shape
    line: np.ndarray | str = ""
    for position, column in enumerate(columns):
        if column in dims:
            axis = dims.index(column)
            labels = np.array([_field(v) for v in dataset[column].values.tolist()], dtype=str)
            cell: np.ndarray | str = labels.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        else:
            cell = ""
        line = cell if position == 0 else np.char.add(np.char.add(line, ","), cell)  # np.char: numpy 1.26 too
    labels = np.broadcast_to(line, shape).ravel().tolist()
    head, tail = f",{_field(name)},", f",{_field(variable.attrs['units'])}\n"
    values = variable.values.astype(float).ravel().tolist()
    return [f"{label}{head}{'' if v != v else repr(v)}{tail}" for label, v in zip(labels, values)]


def write_tidy_csv(dataset: xr.Dataset, path: Path) -> None:
    """The tidy table as CSV: time, every other dimension, variable, value, unit; floats in their shortest round trip.

    Byte for byte what pandas wrote before (``DataFrame.to_csv(index=False)`` of the same rows,
    tested), without building the frames, which cost more than the 100,000 rows themselves.
    """
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(",".join(_field(c) for c in tidy_columns(dataset)) + "\n")
        for name in dataset.data_vars:
            handle.write("".join(tidy_lines(dataset, str(name))))
