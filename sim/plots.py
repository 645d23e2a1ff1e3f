"""The figures ``sim run`` draws for one scenario: by default the two to open first.

Beijing against its cap and the population of every region are what a modeler looks at after
a run; the other figures of one scenario (the report's counters, jobs and firms, Xiong'an and
Tongzhou, relocation by destination, flows) are drawn on request (``run --figures all`` or
names) and by ``sim compare`` and ``sim report`` (``sim.outputs``). Each figure costs 0.15-0.45 s
of CPU (matplotlib's text and ticks for its panels), so the default keeps ``run`` short.
Figures are built without pyplot and with fixed layouts, so drawing needs no backend and
``import sim`` sets none; this module imports matplotlib only when it draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr

RUN_FIGURES = ("population_by_region", "beijing_and_plans")
"""What ``run`` draws unless told otherwise, in the order to open them: population by region first."""
ALL_FIGURES = (
    "population_by_region",
    "beijing_and_plans",
    "relocation_counters",
    "jobs_and_firms",
    "xiongan_and_tongzhou",
    "relocation_by_destination",
    "flow_matrix",
)
"""Every figure of one scenario (``sim.outputs.figures.FIGURES``, named here so that the command line
checks ``--figures`` before a run without importing matplotlib)."""
RUN_FORMATS = ("png",)
"""Figures are PNG; SVG (for print) on request (``--svg``, in ``run`` and ``compare`` alike)."""


def figure_names(text: str) -> tuple[str, ...]:
    """``--figures``: ``key`` (the default set), ``all``, ``none`` or names separated by commas; ValueError if not."""
    choice = text.strip()
    if choice in ("key", "all", "none"):
        return {"key": RUN_FIGURES, "all": ALL_FIGURES, "none": ()}[choice]
    names = tuple(name.strip() for name in choice.split(",") if name.strip())
    unknown = [name for name in names if name not in ALL_FIGURES]
    if unknown or not names:
        raise ValueError(
            f"expected key, all, none or figure names separated by commas ({', '.join(ALL_FIGURES)}), got {text!r}"
        )
    return tuple(dict.fromkeys(names))


def save_all(
    ds: xr.Dataset, folder: Path, formats: Sequence[str] = RUN_FORMATS, names: Sequence[str] = RUN_FIGURES
) -> list[Path]:
    """Write the named figures into ``folder`` in each format (a figure the results cannot hold is left out)."""
    from sim.outputs.figures import FIGURES  # matplotlib: only when figures are drawn
    from sim.outputs.style import save

    runs = {ds.attrs.get("scenario", "scenario"): ds}
    paths: list[Path] = []
    for name in names:
        fig = FIGURES[name](runs)
        if fig is not None:
            paths += save(fig, Path(folder), name, formats)
    return paths
