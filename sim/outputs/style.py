"""One look for every figure: English names, one fixed colour per region, sector and scenario.

Figures are built with the object-oriented API (``matplotlib.figure.Figure``, which brings its
own canvas), never pyplot: writing PNG and SVG then needs no backend, and ``import sim`` leaves
the user's matplotlib backend alone. Layouts are fixed (``subplots_adjust``), not constrained,
which is both faster and predictable: legends go in reserved space outside the axes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from matplotlib.figure import Figure

from sim.regions import load_regions

REGION_COLOURS = {
    "bj_core": "#b2182b",
    "bj_central": "#ef8a62",
    "bj_tongzhou": "#7b3294",
    "bj_other": "#8c510a",
    "xiongan": "#1b7837",
    "north3": "#9ab33c",
    "tianjin": "#2166ac",
    "hebei_other": "#808080",
}
"""Region code -> colour, the same in every figure (Beijing warm, Hebei green/grey, Tianjin blue)."""

SECTOR_COLOURS = {
    "manufacturing": "#8c510a",
    "wholesale_logistics": "#d8b365",
    "high_end": "#2166ac",
    "other_services": "#67a9cf",
    "public": "#7b3294",
}
SECTOR_NAMES = {
    "manufacturing": "Manufacturing",
    "wholesale_logistics": "Wholesale markets and logistics",
    "high_end": "High-end services",
    "other_services": "Other services",
    "public": "Public institutions",
}
INSTITUTION_NAMES = {
    "school": "Schools",
    "hospital": "Hospitals",
    "university": "Universities",
    "department": "Municipal departments",
    "soe_hq": "Central SOE headquarters",
}

SCENARIO_COLOURS = {
    "historical": "#1f77b4",
    "counterfactual": "#d62728",
    "plan2021": "#2ca02c",
    "xiongan_accelerated": "#9467bd",
    "rail_first": "#ff7f0e",
    "incentives_withdrawn": "#8c564b",
    "core_strict": "#e377c2",
}
"""Shipped scenarios keep their colour in every comparison; other names take the next free one."""
SPARE_COLOURS = ("#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd")
OBSERVED_COLOUR = "black"
PLAN_COLOUR = "#444444"

BEIJING = ("bj_core", "bj_central", "bj_tongzhou", "bj_other")
CENTRAL_SIX = ("bj_core", "bj_central")


@cache
def region_names() -> dict[str, str]:
    """Region code -> English name, from sim/data/regions.csv."""
    regions = load_regions()
    return dict(zip(regions.codes, regions.names))


def region_name(code: str, short: bool = False) -> str:
    """The English name; ``short`` drops the parenthesised districts (for ticks and tight titles)."""
    name = region_names().get(code, code)
    return name.split(" (")[0] if short else name


def panel_title(code: str) -> str:
    """A region's name over two lines (name, then its districts) so small panels' titles never collide."""
    return region_name(code).replace(" (", "\n(", 1)


def scenario_colours(names: Iterable[str]) -> dict[str, str]:
    """A colour for each scenario: shipped ones fixed, others from the spare list in order."""
    names = list(dict.fromkeys(names))
    taken = {SCENARIO_COLOURS[n] for n in names if n in SCENARIO_COLOURS}
    spare = [c for c in (*SPARE_COLOURS, *SCENARIO_COLOURS.values()) if c not in taken]
    colours = {}
    for number, name in enumerate(names):
        if name in SCENARIO_COLOURS:
            colours[name] = SCENARIO_COLOURS[name]
        else:
            colours[name] = spare.pop(0) if spare else f"C{number % 10}"
    return colours


def figure(width: float, height: float) -> Figure:
    """A figure with its own canvas (no pyplot, no backend switch)."""
    return Figure(figsize=(width, height), dpi=100)


def grid(fig: Figure, rows: int, cols: int, *, legend_space: float = 0.0, top: float = 0.88, **adjust) -> list:
    """A fixed-layout grid of axes; ``legend_space`` (inches) is kept free at the bottom for a figure legend."""
    axes = fig.subplots(rows, cols, squeeze=False)
    height = fig.get_figheight()
    bottom = adjust.get("bottom", (legend_space + X_LABELS) / height)
    fig.subplots_adjust(
        left=adjust.get("left", 0.07),
        right=adjust.get("right", 0.98),
        top=top,
        bottom=bottom,
        wspace=adjust.get("wspace", 0.32),
        hspace=adjust.get("hspace", 0.45),
    )
    return [ax for row in axes for ax in row]


def title(fig: Figure, what: str, scenario: str | Sequence[str], note: str = "") -> None:
    """The figure title always names the scenario(s) drawn."""
    names = scenario if isinstance(scenario, str) else ", ".join(scenario)
    label = "Scenario" if isinstance(scenario, str) or len(scenario) == 1 else "Scenarios"
    fig.suptitle(f"{what}\n{label}: {names}" + (f"  ({note})" if note else ""), fontsize=11, y=0.985)


LEGEND_ROW = 0.19  # inches per legend row at font size 8
X_LABELS = 0.55  # inches below the lowest panels for tick labels and the x label


def bottom_legend(fig: Figure, handles: list, labels: list[str], columns: int | None = None) -> None:
    """One legend for the whole figure, below the panels; the panels move up to make room for all its rows."""
    if handles:
        columns = columns or min(len(labels), 4)
        rows = -(-len(labels) // columns)
        needed = (X_LABELS + 0.12 + LEGEND_ROW * rows) / fig.get_figheight()
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, needed))
        fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)


def save(fig: Figure, folder: Path, name: str, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write the figure in each format; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        if fmt == "png":  # 100 dpi and light compression: a third faster than the defaults, SVG is for print
            fig.savefig(path, dpi=100, pil_kwargs={"compress_level": 3})
        else:
            fig.savefig(path, metadata={"Date": None})  # no timestamp: identical runs give identical files
        paths.append(path)
    return paths
