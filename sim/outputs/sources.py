"""Inputs of ``compare``, ``report`` and ``export``: scenario files, run folders, sweep folders.

Each input becomes one labeled results Dataset named after its scenario. A scenario file is run
here (``seeds`` > 1 runs a batch with a ``run`` axis, drawn as quantile fans); a run folder is
read from its ``results.nc``; a sweep folder (``sim sweep``) likewise, its runs drawn as a fan
labeled with the design they span and its failed runs left out of the quantiles.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from sim.errors import InputError
from sim.results import run_batch, with_date_index
from sim.scenario import Scenario, load_scenario
from sim.space import addresses


@dataclass
class Source:
    """One scenario's results and where they came from."""

    name: str
    dataset: xr.Dataset
    origin: Path
    scenario_file: Path | None
    """The scenario file (for its description and its differences from its parent), where known."""
    span: str
    """What a fan across the ``run`` axis spans (``"20 seeds"``), or "" for a single run."""


def open_run(folder: str | Path) -> xr.Dataset:
    """A run folder's results in memory, with the ``date`` index restored."""
    folder = Path(folder)
    path = folder / "results.nc"
    if not path.is_file():
        raise InputError(folder, "results.nc", "missing: expected a run folder written by `sim run`")
    with xr.open_dataset(path, engine="scipy") as stored:
        dataset = stored.load()
    return with_date_index(dataset)


def _span(dataset: xr.Dataset) -> str:
    if "run" not in dataset.dims or dataset.sizes["run"] < 2:
        return ""
    return dataset.attrs.get("runs_span") or f"{dataset.sizes['run']} seeds"


def _recorded_scenario(manifest: Path) -> Path | None:
    """The scenario file a run or sweep folder's manifest names, where it still exists."""
    if not manifest.is_file():
        return None
    recorded = Path(json.loads(manifest.read_text(encoding="utf-8")).get("scenario_file", ""))
    return recorded if recorded.is_file() else None


def _sweep_span(dataset: xr.Dataset) -> str:
    """What a sweep's fan spans: its runs, design, varied values and seeds, and the runs that failed."""
    varied = [
        str(c) for c in dataset.coords if dataset.coords[c].dims == ("run",) and c not in ("run", "seed", "point")
    ]
    seeds = len(np.unique(dataset.seed.values)) if "seed" in dataset.coords else 1
    shown = varied[0] if len(varied) == 1 else f"{len(varied)} values"  # a legend label: short
    failed = 0
    if dataset.data_vars:
        first = next(iter(dataset.data_vars.values()))
        failed = int(first.isnull().all([d for d in first.dims if d != "run"]).sum())
    text = (
        f"{dataset.sizes['run']} runs of sweep {dataset.attrs.get('sweep', '?')} "
        f"({dataset.attrs.get('design', '?')} over {shown}; {seeds} seed{'s' if seeds > 1 else ''})"
    )
    return text + (f", {failed} failed and left out" if failed else "")


def _from_folder(folder: Path) -> Source:
    if not (folder / "results.nc").is_file():
        hint = (
            " (a sweep not yet finished: run `sim sweep` again to complete it)"
            if (folder / "sweep.toml").is_file()
            else ""
        )
        raise InputError(
            folder, "", f"expected a scenario file (.toml), a run folder or a sweep folder holding results.nc{hint}"
        )
    dataset = open_run(folder)
    scenario_file = _recorded_scenario(folder / "manifest.json")
    if (folder / "sweep.toml").is_file():
        dataset.attrs["runs_span"] = _sweep_span(dataset)
        return Source(
            dataset.attrs.get("sweep", folder.name), dataset, folder, scenario_file, dataset.attrs["runs_span"]
        )
    return Source(dataset.attrs.get("scenario", folder.name), dataset, folder, scenario_file, _span(dataset))


def read_ensemble(path: str | Path, members: int) -> list[dict[str, float]]:
    """``members`` parameter sets spread evenly over a calibration ensemble (calibration/ensemble.csv).

    Columns other than ``sample`` and ``log_posterior`` are parameter addresses ('group.name').
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise InputError(path, "", f"cannot read the ensemble: {error.strerror or error}") from None
    if not rows:
        raise InputError(path, "", "expected a header and at least one parameter set")
    picked = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, min(members, len(rows))).round()]
    sets = []
    for number, row in enumerate(picked):
        values = {}
        for key, text in row.items():
            if key in ("sample", "log_posterior"):
                continue
            try:
                values[key] = float(text)
            except (TypeError, ValueError):
                raise InputError(path, f"row {number + 1}: {key}", f"expected a number, got {text!r}") from None
        sets.append(values)
    return sets


def _from_scenario(
    scenario: Scenario, seeds: int, progress: Callable[[str], None] | None, ensemble: Path | None = None
) -> Source:
    overrides = read_ensemble(ensemble, seeds if seeds > 1 else 20) if ensemble is not None else None
    count = len(overrides) if overrides is not None else seeds
    if progress:
        progress(f"running {scenario.name} ({count} run{'s' if count > 1 else ''})")
    numbers = [scenario.seed + i for i in range(count)]
    space = addresses(scenario) if overrides else {}
    for override in overrides or []:
        unknown = [key for key in override if key not in space]
        if unknown:
            raise InputError(
                ensemble, unknown[0], "not an address of the scenario (`python -m sim params SCENARIO` lists them)"
            )
    dataset = run_batch(scenario, numbers, overrides)
    dataset.attrs.pop("events", None)
    if count == 1:
        dataset = dataset.isel(run=0)
    elif overrides is not None:
        dataset.attrs["runs_span"] = f"{count} members of the calibration ensemble {Path(ensemble).name}, one seed each"
    else:
        dataset.attrs["runs_span"] = f"{count} seeds ({numbers[0]}-{numbers[-1]})"
    return Source(scenario.name, dataset, scenario.path, scenario.path, _span(dataset))


def gather(
    inputs: Sequence[str | Path],
    seeds: int = 1,
    progress: Callable[[str], None] | None = None,
    ensemble: str | Path | None = None,
    check_names: Callable[[list[str]], None] | None = None,
) -> list[Source]:
    """Every input as a Source; all inputs are read and validated, and ``check_names`` sees the
    scenario names, before any scenario is run.

    ``seeds`` > 1 runs each scenario file with that many seeds; with ``ensemble`` (a calibration
    ensemble CSV) each run takes one of ``seeds`` (default 20) parameter sets spread over it.
    Two inputs of one scenario stay apart as NAME and NAME-2.
    """
    ensemble = Path(ensemble) if ensemble is not None else None
    if seeds < 1:
        raise InputError("--seeds", "", f"expected a positive number of seeds, got {seeds}")
    loaded: list[Source | Scenario] = []
    for item in inputs:
        path = Path(item)
        loaded.append(_from_folder(path) if path.is_dir() else load_scenario(path))
    names, seen = [], {}
    for item in loaded:
        seen[item.name] = seen.get(item.name, 0) + 1
        names.append(item.name if seen[item.name] == 1 else f"{item.name}-{seen[item.name]}")
    if check_names is not None:
        check_names(names)
    sources = []
    for name, item in zip(names, loaded):
        source = item if isinstance(item, Source) else _from_scenario(item, seeds, progress, ensemble)
        source.name = name
        sources.append(source)
    return sources


def seed_note(sources: Sequence[Source]) -> str:
    """A warning when single runs with different seeds are compared: their differences include the agents' noise."""
    single = {
        s.name: int(np.ravel(s.dataset["seed"].values)[0]) for s in sources if not s.span and "seed" in s.dataset.coords
    }
    if len(set(single.values())) <= 1:
        return ""
    seeds = ", ".join(f"{name} {seed}" for name, seed in single.items())
    return (
        f"single runs with different seeds ({seeds}): their differences include the firm agents' random noise, "
        "not only the scenarios'; compare scenario files with --seeds N for fans on common seeds"
    )
