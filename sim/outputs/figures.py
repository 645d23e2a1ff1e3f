"""Figures for a paper: each takes one or more scenarios' results and returns a Figure.

Every function takes ``runs``, a mapping scenario name -> results Dataset (with or without a
``run`` axis; a run axis is drawn as a median line inside 25-75% and 5-95% quantile fans).
With one scenario, lines are coloured by region; with several, by scenario. Observations
(bulletins, the 2020 census, the report's targets) and plan levels share the axes.
Nothing here writes files; ``sim.outputs.style.save`` does.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, MultipleLocator

from sim.outputs import observed
from sim.outputs.style import (
    BEIJING,
    CENTRAL_SIX,
    OBSERVED_COLOUR,
    PLAN_COLOUR,
    REGION_COLOURS,
    SECTOR_COLOURS,
    SECTOR_NAMES,
    bottom_legend,
    figure,
    grid,
    panel_title,
    region_name,
    scenario_colours,
    title,
)

Runs = Mapping[str, xr.Dataset]
TENK = 1e4  # 10,000 persons (万), the unit of Chinese statistics


class Legend:
    """Legend entries collected while drawing, each label once, in order."""

    def __init__(self) -> None:
        self.entries: dict[str, object] = {}

    def add(self, label: str, handle: object) -> None:
        self.entries.setdefault(label, handle)

    def draw(self, fig: Figure, columns: int | None = None) -> None:
        bottom_legend(fig, list(self.entries.values()), list(self.entries), columns)


def span_of(runs: Runs) -> str:
    """What the fans span, for the legend (``"5-95% of 20 seeds"``), or "" when no run has a run axis."""
    spans = {
        ds.attrs.get("runs_span") or f"{ds.sizes['run']} runs"
        for ds in runs.values()
        if "run" in ds.dims and ds.sizes["run"] > 1
    }
    return "; ".join(sorted(spans))


def width(order: int, count: int) -> float:
    """Line width of the ``order``-th of ``count`` scenarios: earlier ones wider, so where paths coincide
    each still shows as a rim of its colour around the next."""
    step = min(0.7, 2.6 / max(count - 1, 1))
    return 1.2 + step * (count - 1 - order)


def line(ax: Axes, series: xr.DataArray, colour: str, scale: float = 1.0, style: str = "-", lw: float = 1.6) -> Line2D:
    """A trajectory; with a run axis, the median inside 25-75% and 5-95% fans."""
    if "run" in series.dims and series.sizes["run"] > 1:
        q = series.quantile([0.05, 0.25, 0.5, 0.75, 0.95], dim="run").transpose("quantile", ...) / scale
        ax.fill_between(series.time, q[0], q[4], color=colour, alpha=0.15, linewidth=0)
        ax.fill_between(series.time, q[1], q[3], color=colour, alpha=0.3, linewidth=0)
        (handle,) = ax.plot(series.time, q[2], color=colour, linestyle=style, linewidth=lw)
    else:
        (handle,) = ax.plot(series.time, series.squeeze(drop=True) / scale, color=colour, linestyle=style, lw=lw)
    return handle


def fan_entries(legend: Legend, runs: Runs) -> None:
    span = span_of(runs)
    if span:
        label = textwrap.fill(f"median, 25-75% and 5-95% across {span}", 60)  # a long label would push others out
        legend.add(label, Patch(facecolor="0.5", alpha=0.35))


def colours_for(runs: Runs) -> dict[str, str]:
    return scenario_colours(runs)


def population(ds: xr.Dataset, regions: tuple[str, ...]) -> xr.DataArray:
    return ds.population.sel(region=list(regions)).sum("region")


def draw_observed(ax: Axes, regions: tuple[str, ...], legend: Legend, start: float, end: float) -> None:
    """Bulletin and census points and plan levels for the population of ``regions`` [10,000 persons]."""
    for obs in observed.observed_for(regions):
        if not start - 0.01 <= obs.time <= end + 0.01:
            continue
        marker = "o" if obs.kind == "bulletin" else "D"
        census = "observed: 2020 census (Beijing: 1.7 % above the bulletins the model follows)"
        label = "observed: year-end bulletins" if obs.kind == "bulletin" else census
        handle = ax.plot(obs.time, obs.value / TENK, marker, color=OBSERVED_COLOUR, ms=4, zorder=5)[0]
        legend.add(label, handle)
    for plan in observed.plans_for(regions):
        if plan.start == plan.end:  # a level by a date
            low = plan.low if plan.low is not None else plan.high
            high = plan.high if plan.high is not None else plan.low
            mid, half = (low + high) / 2 / TENK, (high - low) / 2 / TENK
            handle = ax.errorbar(
                plan.start, mid, yerr=half or None, fmt="*", color=PLAN_COLOUR, ms=9, capsize=3, zorder=5
            )
            legend.add("plan level by a date (Beijing master plan 2016-2035)", handle)
        else:
            handle = ax.hlines(plan.high / TENK, plan.start, plan.end, colors=PLAN_COLOUR, linestyles="--", lw=1.2)
            legend.add("plan level over years (Beijing master plan 2016-2035)", handle)


def _axes_labels(ax: Axes, ylabel: str, panel: str) -> None:
    """Title, units and a light grid; years every five, about five y ticks (ticks are most of the drawing time)."""
    ax.xaxis.set_major_locator(MultipleLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_title(panel, fontsize=9)
    ax.set_xlabel("year", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _scenario_lines(ax: Axes, runs: Runs, pick, legend: Legend, scale: float, single_colour: str | None = None) -> None:
    """One line per scenario (the single scenario in ``single_colour`` when given)."""
    colours = colours_for(runs)
    for order, (name, ds) in enumerate(runs.items()):
        colour = single_colour if single_colour and len(runs) == 1 else colours[name]
        handle = line(ax, pick(ds), colour, scale, lw=1.6 if len(runs) == 1 else width(order, len(runs)))
        if len(runs) == 1:  # lines take the colour of their region or sector; the entry names the model
            legend.add(f"model: {name}", Line2D([], [], color="0.35", lw=1.6))
        else:
            legend.add(name, handle)


def _time_range(runs: Runs) -> tuple[float, float]:
    return min(float(ds.time[0]) for ds in runs.values()), max(float(ds.time[-1]) for ds in runs.values())


def by_region(runs: Runs, variable: str = "population") -> Figure:
    """Small multiples, one panel per region on its own linear axis (a log axis flattens Xiong'an)."""
    units = {"population": ("residents [10,000 persons]", TENK), "jobs": ("jobs [10,000]", TENK)}
    ylabel, scale = units.get(variable, (f"{variable} [{next(iter(runs.values()))[variable].attrs['units']}]", 1.0))
    regions = list(next(iter(runs.values())).region.values)
    fig = figure(13, 6.6)
    axes = grid(fig, 2, 4, legend_space=0.5, top=0.85, left=0.06, wspace=0.38, hspace=0.6)
    legend = Legend()
    start, end = _time_range(runs)
    for ax, region in zip(axes, regions):

        def pick(ds: xr.Dataset, region: str = region) -> xr.DataArray:
            series = ds[variable].sel(region=region)
            return series.sum("sector") if "sector" in series.dims else series

        _scenario_lines(ax, runs, pick, legend, scale, REGION_COLOURS.get(region))
        if variable == "population":
            draw_observed(ax, (region,), legend, start, end)
        _axes_labels(ax, ylabel, panel_title(region))
    fan_entries(legend, runs)
    what = {"population": "Resident population by region", "jobs": "Jobs by region (all sectors)"}
    title(fig, what.get(variable, f"{variable} by region"), list(runs))
    legend.draw(fig, columns=5)
    return fig


def beijing_and_plans(runs: Runs) -> Figure:
    """Beijing against the 23 million cap; the central six and the core against their plan levels."""
    fig = figure(13, 4.6)
    axes = grid(fig, 1, 3, legend_space=0.55, top=0.82, left=0.06)
    legend = Legend()
    start, end = _time_range(runs)
    panels = (
        (BEIJING, "Beijing (16 districts)", "#000000"),
        (CENTRAL_SIX, "Six central districts (core + central city)", REGION_COLOURS["bj_central"]),
        (("bj_core",), region_name("bj_core"), REGION_COLOURS["bj_core"]),
    )
    for ax, (regions, panel, colour) in zip(axes, panels):
        _scenario_lines(ax, runs, lambda ds, r=regions: population(ds, r), legend, TENK, colour)
        draw_observed(ax, regions, legend, start, end)
        _axes_labels(ax, "residents [10,000 persons]", panel)
    fan_entries(legend, runs)
    title(fig, "Beijing's population against the master plan's levels", list(runs))
    legend.draw(fig, columns=3)
    return fig


def _label_above(ax: Axes, time: float, low: float, high: float) -> bool:
    """Whether a target's label fits above its error bar (``low``-``high``) without sitting on a trajectory.

    Above unless a model line drawn so far passes through the label's band above and none through the band below.
    """
    band = 0.1 * (ax.dataLim.y1 - ax.dataLim.y0 or 1.0)

    def crossed(bottom: float, top: float) -> bool:
        for line in ax.lines:
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            near = np.abs(x - time) <= 0.6
            if len(x) > 2 and near.any() and (y[near] >= bottom).any() and (y[near] <= top).any():
                return True
        return False

    return not crossed(high, high + band) or crossed(low - band, low)


def _target_marks(ax: Axes, output: str, select: dict | None, legend: Legend, scale: float = 1.0) -> None:
    """The report's figures read from ``output`` (``select`` as in calibration/targets.toml)."""
    markers = {"about": "o", "at least": "^", "nearly": "v"}
    for name, target in observed.targets_for(output, select):
        value = target["value"] / scale
        if target["time"] == "max":
            handle = ax.axhline(value, color=OBSERVED_COLOUR, linestyle=":", lw=1.2)
        else:
            error = target["tolerance_abs"] / scale if "tolerance_abs" in target else value * target.get("tolerance", 0)
            handle = ax.errorbar(
                target["time"],
                value,
                yerr=error,
                fmt=markers.get(target["relation"], "o"),
                color=OBSERVED_COLOUR,
                ms=6,
                capsize=3,
                zorder=5,
            )
            above = _label_above(ax, target["time"], value - error, value + error)
            ax.annotate(
                name,
                (target["time"], value + error if above else value - error),
                xytext=(0, 3 if above else -3),
                textcoords="offset points",
                fontsize=7,
                ha="center",
                va="bottom" if above else "top",
            )
        legend.add("report target (2021 report; ^ at least, v nearly, o about, ± tolerance)", handle)
        ax.margins(y=0.12)  # room for the target's label inside the axes


def relocation_counters(runs: Runs) -> Figure:
    """The report's counters (F1, F3, F4, F5, F2/K1) against its figures."""
    fig = figure(12, 7.6)
    axes = grid(fig, 2, 2, legend_space=0.75, top=0.9, left=0.08, hspace=0.42)
    legend = Legend()
    single = len(runs) == 1
    for sector, style in (("manufacturing", "-"), ("wholesale_logistics", "--")):
        colours = colours_for(runs)
        for order, (name, ds) in enumerate(runs.items()):
            colour = SECTOR_COLOURS[sector] if single else colours[name]
            handle = line(
                axes[0], ds.dispersed_firms_cum.sel(sector=sector), colour, style=style, lw=width(order, len(runs))
            )
            legend.add(SECTOR_NAMES[sector] if single else name, handle)
        if not single:
            kind = "solid" if style == "-" else "dashed"
            legend.add(f"{SECTOR_NAMES[sector]} ({kind})", Line2D([], [], color="0.3", ls=style))
        _target_marks(axes[0], "dispersed_firms_cum", {"sector": sector}, legend)
    _axes_labels(axes[0], "firms or markets (cumulative)", "Dispersed from Beijing since 2014 (F3, F4)")
    _scenario_lines(axes[1], runs, lambda ds: ds.refused_registrations_cum, legend, 1.0, "#444444")
    _target_marks(axes[1], "refused_registrations_cum", None, legend)
    _axes_labels(axes[1], "applications (cumulative)", "Registrations refused by the catalogue (F1)")
    share = SECTOR_COLOURS["high_end"]
    _scenario_lines(axes[2], runs, lambda ds: ds.high_end_share_new_entrants, legend, 0.01, share)
    _target_marks(axes[2], "high_end_share_new_entrants", None, legend, 0.01)
    _axes_labels(axes[2], "share of new entrants [%]", "High-end share of Beijing's new entrants, 12 months (F5)")
    _scenario_lines(axes[3], runs, lambda ds: ds.institutions_moved_cum, legend, 1.0, SECTOR_COLOURS["public"])
    _axes_labels(axes[3], "institutions (cumulative)", "Public institutions relocated (F2, K1)")
    fan_entries(legend, runs)
    title(fig, "Relocation counters against the 2021 report", list(runs))
    legend.draw(fig, columns=3)
    return fig


def jobs_and_firms(runs: Runs) -> Figure:
    """Jobs (top row) and firms (bottom row) by sector, one line per region; public: staff and institutions."""
    name, ds = next(iter(runs.items()))  # one scenario: regions need the colours
    fig = figure(15, 6.8)
    axes = grid(fig, 2, 5, legend_space=0.5, top=0.87, left=0.05, wspace=0.42)
    legend = Legend()
    sectors = list(ds.sector.values)
    for column, sector in enumerate(sectors):
        top, bottom = axes[column], axes[5 + column]
        for region in ds.region.values:
            handle = line(top, ds.jobs.sel(region=region, sector=sector), REGION_COLOURS[str(region)], TENK)
            legend.add(region_name(str(region)), handle)
            if sector == "public":
                line(bottom, ds.institutions.sel(region=region).sum("institution"), REGION_COLOURS[str(region)])
            else:
                line(bottom, ds.firms.sel(region=region, sector=sector), REGION_COLOURS[str(region)], 1e3)
        _axes_labels(top, "jobs [10,000]", f"Jobs: {SECTOR_NAMES[sector]}")
        if sector == "public":
            _axes_labels(bottom, "institutions", "Public institutions (count)")
        else:
            unit = "markets and centres [1,000]" if sector == "wholesale_logistics" else "firms [1,000]"
            _axes_labels(bottom, unit, f"Firms: {SECTOR_NAMES[sector]}")
    fan_entries(legend, runs)
    title(fig, "Jobs and firms by sector and region", name)
    legend.draw(fig, columns=4)
    return fig


def xiongan_and_tongzhou(runs: Runs) -> Figure:
    """The two new centres: residents, jobs, and the construction crews / public staff that built them."""
    fig = figure(13, 7.2)
    axes = grid(fig, 2, 3, legend_space=0.5, top=0.88, left=0.06, wspace=0.34)
    legend = Legend()
    start, end = _time_range(runs)
    for row, region in enumerate(("xiongan", "bj_tongzhou")):
        colour = REGION_COLOURS[region]
        ax_pop, ax_jobs, ax_third = axes[3 * row : 3 * row + 3]
        _scenario_lines(ax_pop, runs, lambda ds, r=region: ds.population.sel(region=r), legend, TENK, colour)
        draw_observed(ax_pop, (region,), legend, start, end)
        _axes_labels(ax_pop, "residents [10,000 persons]", f"{region_name(region, short=True)}: residents")
        _scenario_lines(ax_jobs, runs, lambda ds, r=region: ds.jobs.sel(region=r).sum("sector"), legend, TENK, colour)
        _axes_labels(ax_jobs, "jobs [10,000]", f"{region_name(region, short=True)}: jobs (all sectors)")
    _scenario_lines(axes[2], runs, lambda ds: ds.construction_workforce, legend, TENK, REGION_COLOURS["xiongan"])
    _target_marks(axes[2], "construction_workforce", None, legend, TENK)
    _axes_labels(axes[2], "workers on site [10,000]", "Xiong'an: construction workforce (X5)")
    _scenario_lines(
        axes[5],
        runs,
        lambda ds: ds.jobs.sel(region="bj_tongzhou", sector="public"),
        legend,
        TENK,
        REGION_COLOURS["bj_tongzhou"],
    )
    _axes_labels(axes[5], "public jobs [10,000]", "Tongzhou: public institutions' staff")
    fan_entries(legend, runs)
    title(fig, "Xiong'an New Area and the Tongzhou sub-center", list(runs))
    legend.draw(fig, columns=2)
    return fig


def relocation_by_destination(runs: Runs) -> Figure:
    """Where dispersed firms went and which regions gained or lost institutions, by the end of the run."""
    fig = figure(13, 5.4)
    axes = grid(fig, 1, 2, legend_space=0.75, top=0.82, left=0.07, bottom=0.3, wspace=0.2)
    legend = Legend()
    names = list(runs)
    first = runs[names[0]]
    regions = [str(r) for r in first.region.values]
    x = np.arange(len(regions))
    width = 0.8 / len(names)
    colours = colours_for(runs)

    def last(series: xr.DataArray) -> xr.DataArray:
        series = series.isel(time=-1)
        return series.median("run") if "run" in series.dims else series

    for k, name in enumerate(names):
        ds = runs[name]
        offset = x - 0.4 + width * (k + 0.5)
        relocated = last(ds.relocated_firms_cum).reindex(region=regions)
        if len(names) == 1:
            base = np.zeros(len(regions))
            for sector in relocated.sector.values:
                values = relocated.sel(sector=sector).values
                if not values.any():
                    continue  # no empty legend entries
                handle = axes[0].bar(offset, values, width, bottom=base, color=SECTOR_COLOURS[str(sector)])
                legend.add(SECTOR_NAMES[str(sector)], handle)
                base = base + values
        else:
            handle = axes[0].bar(offset, relocated.sum("sector").values, width, color=colours[name])
            legend.add(name, handle)
        moved = last(ds.institutions.sum("institution")) - ds.institutions.sum("institution").isel(time=0)
        moved = moved.median("run") if "run" in moved.dims else moved
        colour = SECTOR_COLOURS["public"] if len(names) == 1 else colours[name]
        handle = axes[1].bar(offset, moved.reindex(region=regions).values, width, color=colour)
        legend.add("Public institutions, net change" if len(names) == 1 else name, handle)
    end = float(first.time[-1])
    axes[0].set_title(f"Dispersed firms that relocated, by destination, 2014-{end:.0f}", fontsize=9)
    axes[0].set_ylabel("firms (cumulative)", fontsize=8)
    axes[1].set_title(f"Public institutions gained (+) or lost (-), 2014-{end:.0f}", fontsize=9)
    axes[1].set_ylabel("institutions (net change)", fontsize=8)
    axes[1].axhline(0, color="0.3", lw=0.8)
    for ax in axes:
        ax.set_xticks(x, [region_name(r, short=True) for r in regions], rotation=30, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3, axis="y")
        ax.margins(y=0.08)
    if any("run" in ds.dims for ds in runs.values()):
        legend.add(f"bars: medians across {span_of(runs)}", Patch(facecolor="white", edgecolor="white"))
    title(fig, "Relocation by destination", names)
    legend.draw(fig, columns=5)
    return fig


def flow_matrix(runs: Runs) -> Figure | None:
    """Moves between regions over the whole run (origin by destination), where the results hold flows.

    A flow is a variable over (region, destination) or (origin, destination): a rate per year
    (summed over the months) or a cumulative count (its last value). None when there is none.
    """
    name, ds = next(iter(runs.items()))
    flows = [v for v in ds.data_vars if {"destination"} <= set(ds[v].dims) and {"region", "origin"} & set(ds[v].dims)]
    if not flows:
        return None
    data = ds[flows[0]]
    data = data.rename({"region": "origin"}) if "region" in data.dims else data
    units = str(data.attrs.get("units", ""))
    if units.endswith("/year"):
        step = float(ds.time[1] - ds.time[0])
        total, units = data.isel(time=slice(None, -1)).sum("time") * step, units.removesuffix("/year")
    else:
        total = data.isel(time=-1)
    if "run" in total.dims:
        total = total.median("run")
    total = total.transpose("origin", "destination") / TENK
    start, end = float(ds.time[0]), float(ds.time[-1])
    fig = figure(8.6, 7.0)
    ax = grid(fig, 1, 1, top=0.89, left=0.2, right=0.95, bottom=0.19)[0]
    values = np.where(np.eye(total.sizes["origin"], dtype=bool), np.nan, total.values)  # staying is not a move
    image = ax.imshow(values, cmap="Blues")
    high = np.nanmax(values)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                colour = "white" if values[i, j] > 0.6 * high else "black"
                ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", fontsize=7, color=colour)
    labels = [region_name(str(r), short=True) for r in total.origin.values]
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=7)
    ax.set_xlabel("destination", fontsize=8)
    ax.set_ylabel("origin", fontsize=8)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    colourbar.set_label(f"moved {start:.0f}-{end:.0f} [10,000 {units}]", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    what = ds[flows[0]].attrs.get("long_name", flows[0]).split(",")[0]
    title(fig, f"Moves between regions, {start:.0f}-{end:.0f} ({what})", name)
    return fig


FIGURES = {
    "population_by_region": lambda runs: by_region(runs, "population"),
    "beijing_and_plans": beijing_and_plans,
    "relocation_counters": relocation_counters,
    "jobs_and_firms": jobs_and_firms,
    "xiongan_and_tongzhou": xiongan_and_tongzhou,
    "relocation_by_destination": relocation_by_destination,
    "flow_matrix": flow_matrix,
}
"""Every figure for one scenario, in the order a reader should open them (population first)."""
