"""Inputs of ``compare``, ``report`` and ``export``: scenario files, run folders, sweep folders.

Each input becomes one labeled results Dataset named after its scenario. A scenario file is run
here (``seeds`` > 1 runs a batch with a ``run`` axis, drawn as quantile fans); a run folder is
read from its ``results.nc``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from sim.errors import InputError
from sim.results import run_batch, with_date_index
from sim.scenario import Scenario, load_scenario


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


def _from_folder(folder: Path) -> Source:
    if not (folder / "results.nc").is_file():
        raise InputError(
            folder,
            "",
            "expected a scenario file (.toml) or a run folder holding results.nc "
            "(sweep folders are read once the sweep format lands)",
        )
    dataset = open_run(folder)
    scenario_file = None
    manifest = folder / "manifest.json"
    if manifest.is_file():
        recorded = Path(json.loads(manifest.read_text(encoding="utf-8")).get("scenario_file", ""))
        scenario_file = recorded if recorded.is_file() else None
    return Source(dataset.attrs.get("scenario", folder.name), dataset, folder, scenario_file, _span(dataset))


def _from_scenario(scenario: Scenario, seeds: int, progress: Callable[[str], None] | None) -> Source:
    if progress:
        progress(f"running {scenario.name} ({seeds} seed{'s' if seeds > 1 else ''})")
    numbers = [scenario.seed + i for i in range(seeds)]
    dataset = run_batch(scenario, numbers)
    dataset.attrs.pop("events", None)
    if seeds == 1:
        dataset = dataset.isel(run=0)
    else:
        dataset.attrs["runs_span"] = f"{seeds} seeds ({numbers[0]}-{numbers[-1]})"
    return Source(scenario.name, dataset, scenario.path, scenario.path, _span(dataset))


def gather(inputs: Sequence[str | Path], seeds: int = 1, progress: Callable[[str], None] | None = None) -> list[Source]:
    """Every input as a Source; scenario files are all validated before any is run."""
    if seeds < 1:
        raise InputError("--seeds", "", f"expected a positive number of seeds, got {seeds}")
    kinds: list[Path | Scenario] = []
    for item in inputs:
        path = Path(item)
        kinds.append(path if path.is_dir() else load_scenario(path))
    sources = []
    for kind in kinds:
        sources.append(_from_folder(kind) if isinstance(kind, Path) else _from_scenario(kind, seeds, progress))
    seen: dict[str, int] = {}
    for source in sources:  # two runs of one scenario stay apart: historical, historical-2
        seen[source.name] = seen.get(source.name, 0) + 1
        if seen[source.name] > 1:
            source.name = f"{source.name}-{seen[source.name]}"
    return sources
