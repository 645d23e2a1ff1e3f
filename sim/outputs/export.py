"""``sim export``: one run's results in the formats other tools read.

Formats are entries of ``EXPORTERS`` (name -> writer); the command line offers each as a flag
(``--csv``, ``--xlsx``). A format that needs the scenario rather than the results (the
performance work's ``--xmile``, the stock-and-flow part as XMILE) registers here the same way:
every writer gets the results Dataset, the scenario file (or None for a run folder without one)
and the output folder, and returns the paths it wrote.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import InputError

if TYPE_CHECKING:  # the command line reads EXPORTERS to build its flags: keep xarray out of `sim check`
    import xarray as xr

Writer = Callable[["xr.Dataset", "Path | None", Path], list[Path]]


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


def wide_csv(dataset: xr.Dataset, scenario_file: Path | None, folder: Path) -> list[Path]:
    """One CSV per variable: a row per month (time, date), a column per region / sector / run."""
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


def excel(dataset: xr.Dataset, scenario_file: Path | None, folder: Path) -> list[Path]:
    """An Excel workbook: a sheet per variable (as the wide CSV) and an ``about`` sheet with units and meanings."""
    try:
        from openpyxl import Workbook
    except ImportError:
        raise InputError(
            "--xlsx", "", "needs openpyxl: python -m pip install openpyxl (or the 'excel' extra)"
        ) from None
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


EXPORTERS: dict[str, tuple[Writer, str]] = {
    "csv": (wide_csv, "a wide CSV per variable (csv/NAME.csv: a row per month, a column per region/sector)"),
    "xlsx": (excel, "an Excel workbook, a sheet per variable (needs openpyxl)"),
}
"""Format name -> (writer, help text). Add formats here; the CLI makes a flag of each."""


def export(source: str | Path, out: str | Path, formats: Sequence[str] = ("csv",)) -> list[Path]:
    """Export one run folder or scenario file (run here) in each of ``formats``; returns the files written."""
    from sim.outputs.sources import gather

    unknown = [f for f in formats if f not in EXPORTERS]
    if unknown:
        raise InputError("export", "format", f"unknown format {unknown[0]!r}; expected one of {', '.join(EXPORTERS)}")
    (found,) = gather([source])
    paths: list[Path] = []
    for name in formats:
        writer, _ = EXPORTERS[name]
        paths += writer(found.dataset, found.scenario_file, Path(out))
    return paths
