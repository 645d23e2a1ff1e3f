"""``sim export``: one run in the formats other tools read.

Formats are entries of ``EXPORTERS`` (name -> writer, help); the command line offers each as a
flag (``--csv``, ``--xlsx``, ``--xmile``). Every writer gets an ``ExportInput`` (the run folder
or scenario file: its results and its scenario, each made only when a writer asks) and the
output folder, and returns the paths it wrote. So ``--xmile`` alone on a scenario file does not
run the model twice.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import InputError

if TYPE_CHECKING:  # the command line reads EXPORTERS to build its flags: keep xarray out of `sim check`
    import xarray as xr

    from sim.scenario import Scenario


class ExportInput:
    """A run folder or a scenario file, with its results and its scenario made on first use."""

    def __init__(self, source: str | Path) -> None:
        self.path = Path(source)

    @cached_property
    def dataset(self) -> xr.Dataset:
        from sim.outputs.sources import gather

        (found,) = gather([self.path])
        return found.dataset

    @cached_property
    def scenario(self) -> Scenario:
        """The scenario file, or the run folder's resolved copy of its scenario (scenario.toml)."""
        from sim.scenario import load_scenario

        return load_scenario(self.path / "scenario.toml" if self.path.is_dir() else self.path)

    @property
    def seed(self) -> int:
        return int(self.dataset.seed) if self.path.is_dir() else self.scenario.seed


Writer = Callable[[ExportInput, Path], list[Path]]


def _columns(variable: xr.DataArray) -> tuple[list[str], np.ndarray]:
    """Column labels and a (time, column) matrix: one column per combination of the other dimensions."""
    others = [d for d in variable.dims if d != "time"]
    values = variable.transpose("time", *others).values.reshape(variable.sizes["time"], -1)
    if not others:
        return [variable.name], values
    labels = [
        "/".join(f"run {v}" if d == "run" else str(v) for d, v in zip(others, combo))
        for combo in itertools.product(*(variable[d].values for d in others))
    ]
    return labels, values


def _dates(dataset: xr.Dataset) -> list[str]:
    if "date" in dataset.coords:
        return [str(d)[:7] for d in dataset.date.values.astype("datetime64[M]")]
    return ["" for _ in dataset.time.values]


def wide_csv(source: ExportInput, folder: Path) -> list[Path]:
    """One CSV per variable: a row per month (time, date), a column per region / sector / run."""
    dataset = source.dataset
    folder = folder / "csv"
    folder.mkdir(parents=True, exist_ok=True)
    dates = _dates(dataset)
    paths = []
    for name, variable in dataset.data_vars.items():
        labels, values = _columns(variable)
        path = folder / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["time", "date", *labels])
            for t, d, row in zip(dataset.time.values, dates, values):
                writer.writerow([f"{t:.6f}", d, *(f"{v:.10g}" for v in row)])
        paths.append(path)
    return paths


def _needs_openpyxl() -> None:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise InputError("--xlsx", "", "needs openpyxl: python -m pip install -e '.[excel]'") from None


def excel(source: ExportInput, folder: Path) -> list[Path]:
    """An Excel workbook: a sheet per variable (as the wide CSV) and an ``about`` sheet with units and meanings."""
    _needs_openpyxl()
    from openpyxl import Workbook

    dataset = source.dataset
    book = Workbook(write_only=True)
    about = book.create_sheet("about")
    about.append(["scenario", dataset.attrs.get("scenario", "")])
    about.append(["description", dataset.attrs.get("description", "")])
    about.append(["config_hash", dataset.attrs.get("config_hash", "")])
    about.append([])
    about.append(["sheet", "units", "meaning"])
    dates = _dates(dataset)
    for name, variable in dataset.data_vars.items():
        about.append([name, variable.attrs.get("units", ""), variable.attrs.get("long_name", "")])
        labels, values = _columns(variable)
        sheet = book.create_sheet(name[:31])
        sheet.append(["time", "date", *labels])
        for t, d, row in zip(dataset.time.values, dates, values.tolist()):
            sheet.append([float(t), d, *row])
    path = folder / f"{dataset.attrs.get('scenario', 'results')}.xlsx"
    folder.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return [path]


def xmile(source: ExportInput, folder: Path) -> list[Path]:
    """The stock-and-flow part as XMILE 1.0 (sim.xmile; agents and events as recorded inputs of this seed)."""
    from sim.xmile import export_xmile

    folder.mkdir(parents=True, exist_ok=True)
    return [export_xmile(source.scenario, folder / f"{source.scenario.name}.xmile", seed=source.seed)]


EXPORTERS: dict[str, tuple[Writer, str]] = {
    "csv": (wide_csv, "a wide CSV per variable (csv/NAME.csv: a row per month, a column per region/sector)"),
    "xlsx": (excel, "an Excel workbook, a sheet per variable (needs openpyxl)"),
    "xmile": (xmile, "the stock-and-flow part as XMILE 1.0 for Stella and PySD (docs/xmile.md)"),
}
"""Format name -> (writer, help text). Add formats here; the CLI makes a flag of each."""


def export(source: str | Path, out: str | Path, formats: Sequence[str] = ("csv",)) -> list[Path]:
    """Export one run folder or scenario file (run here) in each of ``formats``; returns the files written."""
    unknown = [f for f in formats if f not in EXPORTERS]
    if unknown:
        raise InputError("export", "format", f"unknown format {unknown[0]!r}; expected one of {', '.join(EXPORTERS)}")
    if "xlsx" in formats:  # a missing optional package is reported before any file is written
        _needs_openpyxl()
    found = ExportInput(source)
    if not found.path.is_dir():
        found.scenario  # noqa: B018  (a bad scenario file is reported before anything runs)
    paths: list[Path] = []
    for name in formats:
        writer, _ = EXPORTERS[name]
        paths += writer(found, Path(out))
    return paths
