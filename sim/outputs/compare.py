"""Compare scenarios: overlays of the key outputs, differences from a reference, a summary table.

``compare(["scenarios/historical.toml", "scenarios/counterfactual.toml", "runs/plan2021"])``
runs the scenario files (``seeds`` > 1: a batch, drawn as quantile fans), reads the run folders,
and writes into ``out``: ``figures/`` (PNG; SVG too on request), ``summary.csv`` and ``summary.md``.
Every scenario keeps one colour in every figure; observations and plan levels share the axes.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from sim.errors import InputError
from sim.outputs import figures
from sim.outputs.figures import TENK, Legend, Runs, draw_observed, fan_entries, line
from sim.outputs.sources import Source, gather, seed_note
from sim.outputs.style import BEIJING, CENTRAL_SIX, bottom_legend, figure, grid, save, scenario_colours, title

YEARS = (2020, 2025, 2030, 2035)
"""Summary years; values are read at 1 January (2035.0 is the end of a run to 2035)."""


@dataclass(frozen=True)
class KeyOutput:
    """One headline number of a scenario, as a series over time (and runs)."""

    key: str
    label: str
    unit: str
    scale: float
    pick: Callable[[xr.Dataset], xr.DataArray]
    regions: tuple[str, ...] = ()
    """Population outputs: the regions summed, to draw observations and plan levels beside them."""


def _population(regions: tuple[str, ...]) -> Callable[[xr.Dataset], xr.DataArray]:
    return lambda ds: ds.population.sel(region=list(regions)).sum("region")


KEY_OUTPUTS: tuple[KeyOutput, ...] = (
    KeyOutput("beijing_residents", "Beijing residents", "10,000 persons", TENK, _population(BEIJING), BEIJING),
    KeyOutput(
        "central_six_residents",
        "Six central districts: residents",
        "10,000 persons",
        TENK,
        _population(CENTRAL_SIX),
        CENTRAL_SIX,
    ),
    KeyOutput(
        "core_residents", "Core area: residents", "10,000 persons", TENK, _population(("bj_core",)), ("bj_core",)
    ),
    KeyOutput(
        "tongzhou_residents",
        "Tongzhou: residents",
        "10,000 persons",
        TENK,
        _population(("bj_tongzhou",)),
        ("bj_tongzhou",),
    ),
    KeyOutput(
        "xiongan_residents", "Xiong'an: residents", "10,000 persons", TENK, _population(("xiongan",)), ("xiongan",)
    ),
    KeyOutput(
        "xiongan_jobs", "Xiong'an: jobs", "10,000 jobs", TENK, lambda ds: ds.jobs.sel(region="xiongan").sum("sector")
    ),
    KeyOutput(
        "dispersed_firms",
        "Firms and markets dispersed from Beijing (cumulative)",
        "firms",
        1.0,
        lambda ds: ds.dispersed_firms_cum.sum("sector"),
    ),
    KeyOutput(
        "relocated_to_xiongan_north3",
        "Dispersed firms relocated to Xiong'an and the northern three counties",
        "firms",
        1.0,
        lambda ds: ds.relocated_firms_cum.sel(region=["xiongan", "north3"]).sum(("region", "sector")),
    ),
    KeyOutput(
        "institutions_moved",
        "Public institutions relocated (cumulative)",
        "institutions",
        1.0,
        lambda ds: ds.institutions_moved_cum,
    ),
)


def _panels(runs: Runs, reference: str | None) -> Figure:
    """Key outputs as 3x3 overlays (``reference`` None) or as differences from the reference."""
    fig = figure(14, 9.6)
    axes = grid(fig, 3, 3, legend_space=0.6, top=0.9, left=0.06, wspace=0.3, hspace=0.5)
    legend = Legend()
    colours = scenario_colours(runs)
    start = min(float(ds.time[0]) for ds in runs.values())
    end = max(float(ds.time[-1]) for ds in runs.values())
    for ax, output in zip(axes, KEY_OUTPUTS):
        lacking = [name for name, ds in runs.items() if not _has(ds, output)]
        if lacking:
            ax.text(0.5, 0.04, f"not kept by {', '.join(lacking)}", transform=ax.transAxes, ha="center", fontsize=8)
        for order, (name, ds) in enumerate(runs.items()):
            if name in lacking or (reference is not None and reference in lacking):
                continue
            if reference is None:
                series = output.pick(ds)
            elif name == reference:
                continue
            else:
                series = difference(output.pick(ds), output.pick(runs[reference]))
            legend.add(name, line(ax, series, colours[name], output.scale, lw=figures.width(order, len(runs))))
        if reference is None and output.regions:
            draw_observed(ax, output.regions, legend, start, end)
        if reference is not None:
            ax.axhline(0, color=colours[reference], lw=1.2, ls="--")
            legend.add(f"{reference} (reference, zero)", ax.lines[-1])
        prefix = "difference: " if reference is not None else ""
        figures._axes_labels(ax, f"{prefix}{output.unit}", output.label)
    fan_entries(legend, runs)
    heading = "Key outputs" if reference is None else f"Key outputs: difference from {reference}"
    title(fig, heading, list(runs))
    bottom_legend(fig, list(legend.entries.values()), list(legend.entries), 4)
    return fig


def _has(ds: xr.Dataset, output: KeyOutput) -> bool:
    """Whether the results keep what ``output`` reads (a sweep keeps only the outputs it names)."""
    try:
        output.pick(ds)
    except (AttributeError, KeyError):
        return False
    return True


def difference(series: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """``series - reference`` on their common months; run by run when both have the same runs (common seeds)."""
    common = np.intersect1d(np.round(series.time.values * 12), np.round(reference.time.values * 12)) / 12
    a = series.sel(time=common, method="nearest")
    b = reference.sel(time=common, method="nearest")
    a, b = a.drop_vars([c for c in a.coords if c not in a.dims]), b.drop_vars([c for c in b.coords if c not in b.dims])
    b = b.assign_coords(time=a.time)
    if "run" in b.dims and ("run" not in a.dims or a.sizes["run"] != b.sizes["run"]):
        b = b.median("run")
    return a - b


def _at(series: xr.DataArray, year: int) -> xr.DataArray | None:
    times = series.time.values
    i = int(np.argmin(np.abs(times - year)))
    return series.isel(time=i) if abs(times[i] - year) < 1e-6 else None


@dataclass
class Row:
    output: KeyOutput
    scenario: str
    median: dict[int, float] = field(default_factory=dict)
    low: dict[int, float] = field(default_factory=dict)
    high: dict[int, float] = field(default_factory=dict)
    difference: dict[int, float] = field(default_factory=dict)


def summary(runs: Runs, reference: str) -> list[Row]:
    """Median (and 5-95% where runs) of each key output in each summary year, and the median difference."""
    rows = []
    for output in KEY_OUTPUTS:
        if not _has(runs[reference], output):
            continue
        base = output.pick(runs[reference])
        for name, ds in runs.items():
            if not _has(ds, output):
                continue
            row = Row(output, name)
            series = output.pick(ds)
            change = difference(series, base)
            for year in YEARS:
                value, delta = _at(series, year), _at(change, year)
                if value is None:
                    continue
                runs_axis = "run" in value.dims
                row.median[year] = float(value.median("run") if runs_axis else value) / output.scale
                if runs_axis and value.sizes["run"] > 1:
                    row.low[year] = float(value.quantile(0.05, "run")) / output.scale
                    row.high[year] = float(value.quantile(0.95, "run")) / output.scale
                if delta is not None:
                    row.difference[year] = float(delta.median("run") if "run" in delta.dims else delta) / output.scale
            rows.append(row)
    return rows


def _number(value: float | None, output: KeyOutput, signed: bool = False) -> str:
    """Persons in 10,000 with one decimal, counts whole; ``signed`` for differences."""
    if value is None:
        return ""
    decimals = 1 if output.scale != 1 else 0
    return f"{value:{'+' if signed else ''},.{decimals}f}"


def write_csv(rows: list[Row], path: Path, reference: str) -> None:
    header = ["output", "unit", "scenario"]
    header += [f"{y}" for y in YEARS] + [f"{y}_p05" for y in YEARS] + [f"{y}_p95" for y in YEARS]
    header += [f"{y}_minus_{reference}" for y in YEARS]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in rows:
            cells = [r.output.key, r.output.unit, r.scenario]
            for table in (r.median, r.low, r.high, r.difference):
                cells += [f"{table[y]:.6g}" if y in table else "" for y in YEARS]
            writer.writerow(cells)


def markdown(rows: list[Row], reference: str) -> str:
    """The table as Markdown: value (5-95%) per year, and the difference from the reference in the last year."""
    last = max((y for r in rows for y in r.median), default=YEARS[-1])
    lines = [
        f"Key outputs at 1 January of each year; medians with 5-95% ranges where there are several runs; "
        f"the last column is the difference from `{reference}` in {last}.",
        "",
        f"| output | unit | scenario | {' | '.join(map(str, YEARS))} | {last} minus {reference} |",
        "|---|---|---|" + "---:|" * (len(YEARS) + 1),
    ]
    for r in rows:
        cells = []
        for y in YEARS:
            text = _number(r.median.get(y), r.output)
            if y in r.low:
                text += f" ({_number(r.low[y], r.output)}-{_number(r.high[y], r.output)})"
            cells.append(text)
        shown = "" if r.scenario == reference else _number(r.difference.get(last), r.output, signed=True)
        lines.append(f"| {r.output.label} | {r.output.unit} | {r.scenario} | {' | '.join(cells)} | {shown} |")
    return "\n".join(lines) + "\n"


def target_rows(runs: Runs) -> list[tuple[str, Any, dict[str, float | None]]]:
    """Each report target (calibration/targets.toml, read by sim.calibration.targets) with every scenario's
    value (the median where there are several runs; None where the run does not reach the target's time)."""
    from sim.calibration.targets import TARGETS, load_targets

    if not TARGETS.is_file():
        return []
    rows = []
    for name, target in load_targets().items():
        values: dict[str, float | None] = {}
        for scenario, ds in runs.items():
            try:
                values[scenario] = float(np.median(target.model_value(ds)))
            except KeyError:  # the target's time lies outside this run
                values[scenario] = None
        rows.append((name, target, values))
    return rows


@dataclass
class Comparison:
    """What ``compare`` made: the inputs, the table and the files written."""

    sources: list[Source]
    reference: str
    rows: list[Row]
    folder: Path
    figures: dict[str, list[Path]]
    """Figure name -> its files (PNG first)."""

    @property
    def runs(self) -> dict[str, xr.Dataset]:
        return {s.name: s.dataset for s in self.sources}


REFERENCE_ONLY = ("jobs_and_firms", "flow_matrix")


def _note_left_out(fig: Figure, name: str, left_out: list[str]) -> None:
    """Say in the title which inputs a figure does not draw, and why, so that no scenario goes missing unseen."""
    if not left_out:
        return
    why = "it draws the reference alone" if name in REFERENCE_ONLY else "their results do not keep what it shows"
    fig.suptitle(f"{fig.get_suptitle()}  (not drawn: {', '.join(left_out)}; {why})", fontsize=11, y=0.985)


COMPARE_FIGURES: dict[str, tuple[tuple[str, ...], Callable[[Runs, str], Figure | None]]] = {
    "key_outputs": ((), lambda runs, ref: _panels(runs, None)),
    "differences": ((), lambda runs, ref: _panels(runs, ref) if len(runs) > 1 else None),
    "population_by_region": (("population",), lambda runs, ref: figures.by_region(runs, "population")),
    "beijing_and_plans": (("population",), lambda runs, ref: figures.beijing_and_plans(runs)),
    "xiongan_and_tongzhou": (
        ("population", "jobs", "construction_workforce"),
        lambda runs, ref: figures.xiongan_and_tongzhou(runs),
    ),
    "relocation_counters": (
        ("dispersed_firms_cum", "refused_registrations_cum", "high_end_share_new_entrants", "institutions_moved_cum"),
        lambda runs, ref: figures.relocation_counters(runs),
    ),
    "relocation_by_destination": (
        ("relocated_firms_cum", "institutions"),
        lambda runs, ref: figures.relocation_by_destination(runs),
    ),
    "jobs_by_region": (("jobs",), lambda runs, ref: figures.by_region(runs, "jobs")),
    "jobs_and_firms": (("jobs", "firms", "institutions"), lambda runs, ref: figures.jobs_and_firms({ref: runs[ref]})),
    "flow_matrix": ((), lambda runs, ref: figures.flow_matrix({ref: runs[ref]})),
}
"""Figures of a comparison in reading order, each with the variables it reads; the last two show the
reference scenario alone. A figure leaves out the inputs that do not keep its variables (a sweep keeps
only the outputs its file names) and is not drawn when none, or not the reference where it needs it, does."""


COMPARISON_FILES = frozenset({"figures", "summary.csv", "summary.md", "report.html"})
"""What a comparison folder holds: anything else there means it is not one."""


def clear_comparison_folder(folder: Path) -> Path:
    """An empty folder for a new comparison: an earlier comparison's files removed, so none is mixed in.

    A folder that holds anything else (a run folder, a sweep, a user's files) is refused, not written into.
    """
    if folder.exists():
        others = sorted(p.name for p in folder.iterdir() if p.name not in COMPARISON_FILES)
        if others:
            raise InputError(
                folder,
                "--out",
                f"holds files a comparison does not write ({', '.join(others[:3])}); choose another folder",
            )
        for name in COMPARISON_FILES:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def compare(
    inputs: Sequence[str | Path] | Sequence[Source],
    out: str | Path = "runs/compare",
    reference: str | None = None,
    seeds: int = 1,
    formats: Sequence[str] = ("png",),
    progress: Callable[[str], None] | None = None,
    ensemble: str | Path | None = None,
) -> Comparison:
    """Compare scenario files, run folders or Sources; write figures and the summary table into ``out``.

    ``seeds`` > 1 runs each scenario file that many times (fans over seeds); ``ensemble`` names a
    calibration ensemble CSV whose parameter sets the runs take (fans over parameters and seeds).
    Figures are written in ``formats``: PNG unless asked for SVG too (``compare --svg``, as for ``run``).
    """

    def check_reference(names: list[str]) -> None:  # before any run: a typo costs no run time
        if reference is not None and reference not in names:
            raise InputError("--reference", "", f"unknown scenario {reference!r}; expected one of {', '.join(names)}")

    sources = [s for s in inputs if isinstance(s, Source)]
    if sources:
        check_reference([s.name for s in sources])
    else:
        sources = gather(inputs, seeds, progress, ensemble, check_reference)
    runs = {s.name: s.dataset for s in sources}
    reference = reference or sources[0].name
    folder = clear_comparison_folder(Path(out))
    written: dict[str, list[Path]] = {}
    for name, (variables, draw) in COMPARE_FIGURES.items() if formats else ():  # no formats: the table only
        keeping = {n: ds for n, ds in runs.items() if all(v in ds for v in variables)}
        if not keeping or (name in REFERENCE_ONLY and reference not in keeping):
            if progress:
                progress(f"not drawing {name}: no input keeps {', '.join(variables)}")
            continue
        if progress:
            progress(f"drawing {name}")
        fig = draw(keeping, reference if reference in keeping else next(iter(keeping)))
        if fig is not None:
            _note_left_out(
                fig, name, [n for n in runs if n not in keeping or name in REFERENCE_ONLY and n != reference]
            )
        if fig is not None:
            written[name] = save(fig, folder / "figures", name, formats)
    rows = summary(runs, reference)
    if progress:
        progress(f"writing {folder / 'summary.csv'} and summary.md")
    write_csv(rows, folder / "summary.csv", reference)
    note = seed_note(sources)
    if note and progress:
        progress(f"note: {note}")
    (folder / "summary.md").write_text((f"Note: {note}.\n\n" if note else "") + markdown(rows, reference), "utf-8")
    return Comparison(sources, reference, rows, folder, written)
