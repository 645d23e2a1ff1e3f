"""The explore page: one HTML document, served live or written as a self-contained static file.

The page's script (``static/explore.js``) reads its configuration from a JSON block: the sliders,
the reference run, observed data and plan levels, and, in a static export, a precomputed grid of
full runs instead of a server. uPlot (vendored from npm, MIT, ``static/uPlot.LICENSE``) draws the
charts; nothing is loaded from elsewhere.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.outputs.style import OBSERVED_COLOUR, PLAN_COLOUR, REGION_COLOURS

if TYPE_CHECKING:
    from sim.explore.answers import Explorer

STATIC = Path(__file__).parent / "static"
SERIES_COLOURS = {
    "beijing": "#b2182b",
    "central_six": REGION_COLOURS["bj_central"],
    "tongzhou": REGION_COLOURS["bj_tongzhou"],
    "xiongan": REGION_COLOURS["xiongan"],
    "dispersed_firms": "#8c510a",
    "construction_workforce": "#2166ac",
}
"""Chart colours: the regions' own colours from sim.outputs.style (Beijing in the core's red)."""


def config(explorer: Explorer, grid: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the page's script needs, as JSON-ready values."""
    from sim.explore.answers import SERIES
    from sim.explore.sliders import sliders

    scenario = explorer.scenario
    return {
        "scenario": scenario.name,
        "path": str(scenario.path),
        "description": scenario.description,
        "seed": explorer.seed,
        "compiled": explorer.compiled,
        "sliders": [s.json() for s in sliders(scenario)],
        "series": {
            key: {"title": title, "unit": unit, "colour": SERIES_COLOURS[key], "stockflow": key != "dispersed_firms"}
            for key, (title, unit, _) in SERIES.items()
        },
        "reference": explorer.reference.json(with_time=True),
        "observed": explorer.observed(),
        "observed_colour": OBSERVED_COLOUR,
        "plan_colour": PLAN_COLOUR,
        "ensemble": len(explorer.ensemble) if explorer.ensemble else 0,
        "ensemble_path": _shown(explorer.ensemble_path),
        "grid": grid,
    }


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when it is below it."""
    relative = os.path.relpath(Path(path).resolve())
    return str(path) if relative.startswith("..") else relative


def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _template(settings: dict[str, Any], inline: bool) -> str:
    data = json.dumps(settings, separators=(",", ":")).replace("</", "<\\/")
    if inline:
        styles = "".join(f"<style>{_read(n)}</style>" for n in ("uPlot.min.css", "explore.css"))
        scripts = "".join(
            f"<script>{_read(n).replace('</script', '<' + chr(92) + '/script')}</script>"
            for n in ("uPlot.iife.min.js", "explore.js")
        )
    else:
        styles = "".join(f'<link rel="stylesheet" href="/static/{n}">' for n in ("uPlot.min.css", "explore.css"))
        scripts = "".join(f'<script src="/static/{n}"></script>' for n in ("uPlot.iife.min.js", "explore.js"))
    title = html.escape(f"explore {settings['scenario']}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{styles}</head>
<body>
<header><h1>{title}</h1><p id="description"></p></header>
<main>
<aside id="controls"></aside>
<section>
<p id="status" role="status"></p>
<div id="charts"></div>
<p id="method"></p>
</section>
</main>
<script id="config" type="application/json">{data}</script>
{scripts}
</body></html>
"""


def page(explorer: Explorer) -> str:
    """The live page (scripts and styles from the server's /static/)."""
    return _template(config(explorer), inline=False)


def static_page(explorer: Explorer, grid: dict[str, Any]) -> str:
    """One self-contained HTML file over a precomputed grid of full runs (no server, no network)."""
    return _template(config(explorer, grid), inline=True)
