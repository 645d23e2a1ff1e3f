"""Sensitivity analysis of a sweep (SALib): Sobol indices from a Saltelli design, Morris elementary effects.

Indices are computed on the mean over replications of each design point, so seeded noise
does not pass for a parameter effect; the share of the output's variance that is noise
(within design points, across replications) is reported beside them. Outputs that are time
series get indices at every kept time. Plots: index bars, indices over time, quantile fans
over the sweep, and each output against each parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sim.experiments.designs import Design
from sim.experiments.spec import Sweep

CONFIDENCE = 0.95
RESAMPLES = 200


def sobol_indices(design: Design, y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """First-order and total Sobol indices with 95% bootstrap half-widths, from a Saltelli design's outputs."""
    from SALib.analyze import sobol

    result = sobol.analyze(
        design.problem(),
        np.asarray(y, dtype=float),
        calc_second_order=design.second_order,
        num_resamples=RESAMPLES,
        conf_level=CONFIDENCE,
        seed=seed,
    )
    return {key: np.asarray(result[key]) for key in ("S1", "S1_conf", "ST", "ST_conf")}


def morris_indices(design: Design, y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Morris mu* (mean absolute elementary effect, per full range of each parameter), its half-width, sigma."""
    from SALib.analyze import morris

    result = morris.analyze(
        design.problem(),
        design.unit,
        np.asarray(y, dtype=float),
        num_resamples=RESAMPLES,
        conf_level=CONFIDENCE,
        num_levels=design.levels,
        seed=seed,
    )
    return {key: np.asarray(result[key]) for key in ("mu_star", "mu_star_conf", "sigma")}


def point_means(array: xr.DataArray, replications: int) -> tuple[np.ndarray, float]:
    """Mean over replications per design point (run axis first), and the share of variance that is noise."""
    values = np.asarray(array.transpose("run", ...).values, dtype=float)
    grouped = values.reshape(-1, replications, *values.shape[1:])
    means = grouped.mean(axis=1)
    total = np.nanvar(values, axis=0)
    noise = np.nanmean(grouped.var(axis=1), axis=0) if replications > 1 else np.zeros_like(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = float(np.nanmean(np.where(total > 0, noise / total, 0.0)))
    return means, share


def _indices(sweep: Sweep, design: Design, y: np.ndarray) -> dict[str, np.ndarray] | None:
    if sweep.method == "saltelli":
        return sobol_indices(design, y, sweep.seed)
    if sweep.method == "morris":
        return morris_indices(design, y, sweep.seed)
    return None


def _rows(target: str, time: float | None, names: list[str], indices: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """indices.csv rows: one per parameter and index, with its 95% half-width where SALib gives one."""
    keys = [k for k in indices if not k.endswith("_conf")]
    return [
        {
            "output": target,
            "time": "" if time is None else time,
            "parameter": name,
            "index": key,
            "value": float(indices[key][j]),
            "conf": float(indices[f"{key}_conf"][j]) if f"{key}_conf" in indices else np.nan,
        }
        for j, name in enumerate(names)
        for key in keys
    ]


def _table(names: list[str], indices: dict[str, np.ndarray]) -> list[str]:
    keys = [k for k in indices if not k.endswith("_conf")]
    lines = ["| parameter | " + " | ".join(f"{k} (± 95%)" if f"{k}_conf" in indices else k for k in keys) + " |"]
    lines.append("|---" * (len(keys) + 1) + "|")
    for j, name in enumerate(names):
        cells = [
            f"{indices[k][j]:.3g} ± {indices[f'{k}_conf'][j]:.2g}" if f"{k}_conf" in indices else f"{indices[k][j]:.3g}"
            for k in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _main_index(indices: dict[str, np.ndarray]) -> str:
    return "ST" if "ST" in indices else "mu_star"


def _bars(plt, names: list[str], indices: dict[str, np.ndarray], label: str):
    key = _main_index(indices)
    figure, axis = plt.subplots(figsize=(7, 0.4 * len(names) + 1.5))
    axis.barh(names, indices[key], xerr=indices.get(f"{key}_conf"), color="tab:blue", alpha=0.8, label=key)
    if key == "ST":
        axis.barh(names, indices["S1"], height=0.4, color="tab:orange", label="S1")
    axis.set_xlabel(f"{key} of {label}")
    axis.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    axis.legend()
    figure.tight_layout()
    return figure


def _over_time(plt, names: list[str], times: np.ndarray, series: list[dict[str, np.ndarray]], target: str):
    key = _main_index(series[0])
    figure, axis = plt.subplots(figsize=(8, 4))
    for j, name in enumerate(names):
        axis.plot(times, [indices[key][j] for indices in series], label=name)
    axis.set_xlabel("year")
    axis.set_ylabel(key)
    axis.set_title(f"{key} of {target} over time")
    axis.legend(fontsize=7)
    return figure


def _fan(plt, array: xr.DataArray, target: str):
    quantiles = np.nanquantile(array.transpose("run", "time").values, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.fill_between(array.time, quantiles[0], quantiles[4], alpha=0.25, color="tab:blue", label="5-95%")
    axis.fill_between(array.time, quantiles[1], quantiles[3], alpha=0.4, color="tab:blue", label="25-75%")
    axis.plot(array.time, quantiles[2], color="tab:blue", label="median")
    axis.set_xlabel("year")
    axis.set_ylabel(f"{target} [{array.attrs.get('units', '')}]")
    axis.set_title(f"{target} across the sweep ({array.sizes['run']} runs)")
    axis.legend()
    return figure


def _scatter(plt, dataset: xr.Dataset, names: list[str], values: np.ndarray, label: str):
    columns = min(len(names), 4)
    rows = (len(names) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        axis.scatter(dataset[name].values, values, s=6, alpha=0.6)
        axis.set_xlabel(name.split(".", 1)[-1], fontsize=7)
        axis.set_ylabel(label, fontsize=7)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure


def analyze(folder: Path, sweep: Sweep, dataset: xr.Dataset, design: Design) -> list[str]:
    """Indices (Saltelli or Morris designs), plots and ``sensitivity/summary.md``; returns the files written.

    Targets are the sweep's ``[analysis] outputs`` (default: its summaries): numbers per run
    get index bars and scatter plots; series over time get indices at every kept time (the
    bars show the last) and a quantile fan. A target with failed runs gets plots, no indices.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = folder / "sensitivity"
    out.mkdir(exist_ok=True)
    names = list(design.names)
    rows: list[dict[str, Any]] = []
    files: list[str] = []
    lines = [
        f"# Sensitivity: {sweep.name}",
        "",
        f"Design: {sweep.method}, {len(design.points)} points x {sweep.replications} replications "
        f"(common random numbers), base scenario {sweep.scenario.name}. Indices are computed on the mean "
        "of each point's replications; the noise share is the within-point share of the output's variance.",
    ]

    def save(figure, name: str) -> None:
        figure.savefig(out / name, dpi=110)
        plt.close(figure)
        files.append(f"sensitivity/{name}")

    for target in sweep.analysis:
        array = dataset[target]
        lines += ["", f"## {target}", ""]
        extra = [d for d in array.dims if d not in ("run", "time")]
        if extra:
            lines.append(f"Skipped: dimensions {extra} (summarise it to a number or a series in [outputs.summaries]).")
            continue
        series = "time" in array.dims
        means, noise = point_means(array, sweep.replications)
        last = means[:, -1] if series else means
        failed = int(np.isnan(last).sum())
        lines.append(f"Noise share of variance: {noise:.3f}")
        indices = _indices(sweep, design, last) if not failed else None
        if failed:
            lines.append(f"{failed} design points have failed runs (failures.csv): no indices.")
        if indices is not None:
            when = float(array.time[-1]) if series else None
            label = target + (f" at {when:.4g}" if series else "")
            lines += ["", f"Indices of {label}:", "", *_table(names, indices)]
            rows += _rows(target, when, names, indices)
            save(_bars(plt, names, indices, label), f"indices_{target}.png")
            if series:
                over_time = [_indices(sweep, design, means[:, t]) for t in range(means.shape[1])]
                for t, at_t in zip(array.time.values, over_time):
                    rows += _rows(target, float(t), names, at_t) if float(t) != when else []
                save(_over_time(plt, names, array.time.values, over_time, target), f"indices_over_time_{target}.png")
        if series:
            save(_fan(plt, array, target), f"fan_{target}.png")
        final = array.transpose("run", "time").values[:, -1] if series else array.values
        save(_scatter(plt, dataset, names, final, target), f"scatter_{target}.png")
    if rows:
        import pandas as pd

        pd.DataFrame(rows).to_csv(out / "indices.csv", index=False)
        files.append("sensitivity/indices.csv")
    lines += ["", "Figures: " + ", ".join(f"[{Path(f).name}]({Path(f).name})" for f in files if f.endswith(".png"))]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return [*files, "sensitivity/summary.md"]
