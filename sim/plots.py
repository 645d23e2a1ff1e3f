"""The figures ``sim run`` draws for one scenario: at most four, the ones to open first.

The rest (Xiong'an and Tongzhou, relocation by destination, flows, every comparison) belong to
``sim compare`` and ``sim report`` (``sim.outputs``). Figures are built without pyplot and with
fixed layouts, so drawing needs no backend and ``import sim`` sets none.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from sim.outputs.figures import FIGURES
from sim.outputs.style import save

RUN_FIGURES = ("population_by_region", "beijing_and_plans", "relocation_counters", "jobs_and_firms")
"""What ``run`` draws, in the order to open them: population by region first."""
RUN_FORMATS = ("png",)
"""``run`` writes PNG; SVG (for print) on request (``--svg``): it cost a third of the figures' time."""


def save_all(ds: xr.Dataset, folder: Path, formats: tuple[str, ...] = RUN_FORMATS) -> list[Path]:
    """Write the run figures into ``folder`` in each format; returns the paths."""
    runs = {ds.attrs.get("scenario", "scenario"): ds}
    paths: list[Path] = []
    for name in RUN_FIGURES:
        paths += save(FIGURES[name](runs), Path(folder), name, formats)
    return paths
