"""The fit report's figures, written by ``calibrate`` beside fit.md.

``fit_series.png``: each yearly series of targets (Beijing's levels and changes, its migrants)
against its data on one axis, with the best fit and the ensemble's 5-95 %, and every other
target's misfit in sigmas. ``fit_posteriors.png``: each free parameter's ensemble against its
prior's bounds, the best fit marked. ``fit_correlations.png``: the ensemble's pairwise
correlations, where trade-offs between parameters (what the targets cannot tell apart) show.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sim.calibration.fit import Fit
from sim.calibration.targets import Target

YEARLY = re.compile(r"^(?P<series>.+)_(?P<year>\d{4})$")
FIGURES = ("fit_series", "fit_posteriors", "fit_correlations")


def yearly_series(targets: dict[str, Target]) -> dict[str, list[tuple[int, str]]]:
    """Targets named SERIES_YEAR, grouped by series when a series has three years or more."""
    series: dict[str, list[tuple[int, str]]] = {}
    for name in targets:
        match = YEARLY.match(name)
        if match:
            series.setdefault(match["series"], []).append((int(match["year"]), name))
    return {key: sorted(years) for key, years in series.items() if len(years) >= 3}


def write_figures(
    fit: Fit, targets: dict[str, Target], best: dict[str, float], ensemble: dict[str, np.ndarray], out: Path
) -> list[Path]:
    """Draw the three figures into ``out``, each file written whole or not at all; returns their paths."""
    from sim.runfolder import atomic_write

    figures = {
        "fit_series": _series_figure(targets, best, ensemble),
        "fit_posteriors": _posteriors_figure(fit),
        "fit_correlations": _correlations_figure(fit),
    }
    paths = []
    for name, fig in figures.items():
        path = out / f"{name}.png"
        atomic_write(path, lambda target, fig=fig: fig.savefig(target, format="png", dpi=100))
        paths.append(path)
    return paths


def _series_figure(targets, best, ensemble):
    from sim.outputs.style import bottom_legend, figure, grid

    series = yearly_series(targets)
    fig = figure(4.2 * (len(series) + 1), 5.0)
    axes = grid(fig, 1, len(series) + 1, legend_space=0.4, top=0.8, left=0.05, wspace=0.3)
    for ax, (key, years) in zip(axes, series.items()):
        x = [year for year, _ in years]
        observed = np.array([targets[name].value for _, name in years])
        scale = 1e4 if np.abs(observed).max() >= 1e5 else 1.0  # persons in 万, as the bulletins give them
        sigma = np.array([targets[name].sigma for _, name in years])
        low, high = np.array([np.percentile(ensemble[name], [5, 95]) for _, name in years]).T
        band = ax.fill_between(x, low / scale, high / scale, color="C0", alpha=0.25, linewidth=0)
        (line,) = ax.plot(x, [best[name] / scale for _, name in years], color="C0", marker="o", markersize=3)
        data = ax.errorbar(x, observed / scale, yerr=sigma / scale, fmt="s", color="black", markersize=4, capsize=3)
        ax.set_title(_series_title(targets[years[0][1]].meaning) + f"\n({key}_YEAR)", fontsize=9)
        ax.set_xlabel("year")
        ax.set_ylabel("[10,000 persons]" if scale == 1e4 else targets[years[0][1]].output, fontsize=8)
        ax.grid(alpha=0.3)
    in_series = {name for years in series.values() for _, name in years}
    others = [name for name in targets if name not in in_series]
    ax = axes[-1]
    for row, name in enumerate(others):
        target = targets[name]
        low, high = np.sort([float(target.misfit(v)) for v in np.percentile(ensemble[name], [5, 95])])
        ax.plot([low, high], [row, row], color="C0", alpha=0.4, linewidth=5, solid_capstyle="butt")
        ax.plot([float(target.misfit(best[name]))], [row], "o", color="C0", markersize=4)
    ax.axvspan(-1, 1, color="black", alpha=0.07)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(others)), others, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("misfit [sigma of the tolerance]")
    ax.set_title("every other target\n(shaded: within tolerance)", fontsize=9)
    fig.suptitle("Calibration targets against the data: best fit and ensemble 5-95 %", fontsize=11, y=0.985)
    bottom_legend(
        fig,
        [data, line, band],
        ["observed, with its tolerance (1 sigma)", "best fit", "ensemble 5-95 % (full runs of members)"],
    )
    return fig


def _series_title(meaning: str) -> str:
    """A target's meaning without its year or parenthesis: "change of Beijing's resident population"."""
    meaning = re.sub(r"\s*\(.*?\)", "", meaning)
    return re.sub(r",?\s*(during|end of|in)?\s*\d{4}$", "", meaning)


def _short(address: str) -> str:
    return ".".join(address.split(".")[-2:]) if address.startswith("policies.") else address.split(".", 1)[1]


def _posteriors_figure(fit: Fit):
    from sim.outputs.style import figure, grid

    columns = 6
    rows = -(-len(fit.parameters) // columns)
    fig = figure(15, 2.1 * rows + 0.8)
    axes = grid(fig, rows, columns, top=1 - 0.6 / (2.1 * rows + 0.8), left=0.03, hspace=0.75, wspace=0.25)
    for i, (ax, p) in enumerate(zip(axes, fit.parameters)):
        ax.hist(fit.samples[1:, i], bins=20, range=(p.low, p.high), color="C0", alpha=0.7)
        ax.axvline(fit.samples[0, i], color="black", linewidth=1.2)
        ax.set_xlim(p.low, p.high)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
        ax.set_title(_short(p.address) + (" (step)" if p.added_to else ""), fontsize=8)
    for ax in axes[len(fit.parameters) :]:
        ax.set_visible(False)
    fig.suptitle("Ensemble of each free parameter over its prior's bounds (black line: best fit)", fontsize=11, y=0.995)
    return fig


def _correlations_figure(fit: Fit):
    from sim.outputs.style import figure

    samples = fit.samples[1:]
    varies = samples.std(axis=0) > 0
    correlation = np.zeros((samples.shape[1], samples.shape[1]))
    correlation[np.ix_(varies, varies)] = np.corrcoef(samples[:, varies], rowvar=False)
    names = [_short(p.address) for p in fit.parameters]
    fig = figure(11, 9.5)
    ax = fig.add_axes((0.27, 0.05, 0.6, 0.7))
    image = ax.imshow(correlation, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.xaxis.tick_top()
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="correlation across the ensemble")
    fig.suptitle("Pairwise correlations of the free parameters across the ensemble", fontsize=11, y=0.985)
    return fig
