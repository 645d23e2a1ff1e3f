"""Plots a modeler looks at first: trajectories by region, the relocation counters, construction.

Each function takes a results Dataset (no ``run`` dimension, or a run axis drawn as a
median line with a 5-95% band) and returns a matplotlib Figure; nothing here touches files.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: runs headless in CI and on servers
import matplotlib.pyplot as plt  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]


def _line(ax, series: xr.DataArray, label: str, scale: float = 1.0) -> None:
    if "run" in series.dims and series.sizes["run"] > 1:
        low, mid, high = (series.quantile(q, dim="run") / scale for q in (0.05, 0.5, 0.95))
        (handle,) = ax.plot(series.time, mid, label=label)
        ax.fill_between(series.time, low, high, color=handle.get_color(), alpha=0.2, linewidth=0)
    else:
        ax.plot(series.time, series.squeeze(drop=True) / scale, label=label)


def population_by_region(ds: xr.Dataset) -> Figure:
    """Resident population of each region and of Beijing as a whole [10,000 persons]."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for region in ds.region.values:
        target = left if region in BEIJING else right
        _line(target, ds.population.sel(region=region), str(region), 1e4)
    _line(left, ds.population.sel(region=[r for r in BEIJING if r in ds.region]).sum("region"), "Beijing total", 1e4)
    right.set_yscale("log")
    for ax, title in ((left, "Beijing"), (right, "Surrounding regions (log scale)")):
        ax.set(title=title, xlabel="year", ylabel="residents [10,000 persons]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Population by region: {ds.attrs.get('scenario', '')}")
    return fig


def relocation_counters(ds: xr.Dataset) -> Figure:
    """The report's counters: dispersed firms (F3, F4), refused registrations (F1), F5, institutions (F2, K1)."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    for sector in ("manufacturing", "wholesale_logistics"):
        _line(axes[0, 0], ds.dispersed_firms_cum.sel(sector=sector), sector)
    axes[0, 0].set(title="Dispersed from Beijing (cumulative)", ylabel="firms / markets")
    _line(axes[0, 1], ds.refused_registrations_cum, "refused registrations")
    axes[0, 1].set(title="Registrations refused by the catalogue (cumulative)", ylabel="applications")
    _line(axes[1, 0], ds.high_end_share_new_entrants * 100, "high-end share")
    axes[1, 0].set(title="High-end share of Beijing's new entrants (12 months)", ylabel="%")
    _line(axes[1, 1], ds.institutions_moved_cum, "institutions moved")
    axes[1, 1].set(title="Public institutions relocated (cumulative)", ylabel="institutions")
    for ax in axes.flat:
        ax.set_xlabel("year")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def construction_and_jobs(ds: xr.Dataset) -> Figure:
    """Xiong'an's construction workforce on site, and jobs by region."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    _line(left, ds.construction_workforce, "workers on site", 1e4)
    left.set(title="Xiong'an construction workforce", ylabel="workers [10,000]", xlabel="year")
    for region in ds.region.values:
        _line(right, ds.jobs.sel(region=region).sum("sector"), str(region), 1e4)
    right.set(title="Jobs by region", ylabel="jobs [10,000]", xlabel="year", yscale="log")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


FIGURES = {
    "population_by_region": population_by_region,
    "relocation_counters": relocation_counters,
    "construction_and_jobs": construction_and_jobs,
}


def save_all(ds: xr.Dataset, folder) -> list:
    """Write every figure as PNG into ``folder``; returns the paths."""
    paths = []
    for name, draw in FIGURES.items():
        fig = draw(ds)
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
