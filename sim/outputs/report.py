"""``sim report``: one self-contained HTML file to share a comparison.

Figures are embedded as PNG data URIs and the styles inline; a Content-Security-Policy forbids
every network request, so the file opens the same offline, from an e-mail or an archive.
It holds the scenarios' descriptions and their differences from their parents, the summary
table and every comparison figure with a caption.
"""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from sim.errors import InputError
from sim.outputs import observed
from sim.outputs.compare import YEARS, Comparison, compare, target_rows
from sim.outputs.describe import diff_against_parent, parent_path, value_files
from sim.outputs.sources import Source, seed_note
from sim.outputs.style import scenario_colours

CAPTIONS = {
    "key_outputs": "The headline outputs of every scenario on shared axes, with the year-end bulletins, the 2020 "
    "census and the master plan's levels where they apply.",
    "differences": "The same outputs as differences from the reference scenario (dashed zero line).",
    "population_by_region": "Resident population of each region on its own linear axis, with the 2020 census "
    "and the plan levels for the core and Tongzhou.",
    "beijing_and_plans": "Beijing against the 23 million cap; the six central districts and the core against "
    "their plan levels.",
    "xiongan_and_tongzhou": "The two new centres: residents, jobs, Xiong'an's construction workforce against "
    "the report's peak (X5), and Tongzhou's public staff.",
    "relocation_counters": "The 2021 report's counters against its figures (markers with tolerance bars).",
    "relocation_by_destination": "Where the dispersed firms relocated to, and the net change of public "
    "institutions by region, over the whole run.",
    "jobs_by_region": "Jobs in all sectors by region.",
    "jobs_and_firms": "Jobs and firms by sector, one line per region, for the reference scenario.",
    "flow_matrix": "Moves between regions over the whole run (origin by destination), reference scenario.",
}

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ddd; padding: 3px 6px; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } td.miss { color: #b00020; } th { background: #f3f3f3; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #444; } .swatch { display: inline-block; width: 1em; height: 1em;
vertical-align: middle; margin-right: 0.4em; } ul.diff { font-family: monospace; font-size: 0.85em; }
"""


def _scenario_section(source: Source, colour: str) -> str:
    ds = source.dataset
    parts = [
        f'<h3 id="s-{html.escape(source.name)}"><span class="swatch" style="background:{colour}"></span>'
        f"{html.escape(source.name)}</h3>",
        f"<p>{html.escape(ds.attrs.get('description', '') or '(no description)')}</p>",
        f"<p>From <code>{html.escape(str(source.origin))}</code>; configuration hash "
        f"<code>{html.escape(ds.attrs.get('config_hash', ''))}</code>"
        + (f"; fans span {html.escape(source.span)}" if source.span else "")
        + ".</p>",
    ]
    if source.scenario_file is not None and Path(source.scenario_file).is_file():
        child, parent, lines = diff_against_parent(source.scenario_file)
        if parent is None:
            values = "".join(f"; its values from {f.name}" for f in value_files(source.scenario_file))
            parts.append(
                f"<p>A base scenario ({len(child.policies)} policies; it extends no other{html.escape(values)}).</p>"
            )
        else:
            parent_name = parent_path(source.scenario_file).name
            items = "".join(f"<li>{html.escape(line)}</li>" for line in lines) or "<li>(no differences)</li>"
            parts.append(f"<p>Differences from its parent <code>{html.escape(parent_name)}</code>:</p>")
            parts.append(f'<ul class="diff">{items}</ul>')
    else:
        parts.append("<p>(scenario file not available: differences from its parent not shown)</p>")
    return "\n".join(parts)


def _table(comparison: Comparison) -> str:
    last = YEARS[-1]
    head = "".join(f"<th>{y}</th>" for y in YEARS)
    rows = [f"<tr><th>output</th><th>unit</th><th>scenario</th>{head}<th>{last} minus {comparison.reference}</th></tr>"]
    for r in comparison.rows:
        decimals = 1 if r.output.scale != 1 else 0
        cells = []
        for y in YEARS:
            text = f"{r.median[y]:,.{decimals}f}" if y in r.median else ""
            if y in r.low:
                text += f" ({r.low[y]:,.{decimals}f}-{r.high[y]:,.{decimals}f})"
            cells.append(f'<td class="n">{text}</td>')
        delta = r.difference.get(last)
        shown = "" if r.scenario == comparison.reference or delta is None else f"{delta:+,.{decimals}f}"
        rows.append(
            f"<tr><td>{html.escape(r.output.label)}</td><td>{html.escape(r.output.unit)}</td>"
            f"<td>{html.escape(r.scenario)}</td>{''.join(cells)}<td class='n'>{shown}</td></tr>"
        )
    return "<table>" + "\n".join(rows) + "</table>"


def _readable(value: float) -> str:
    """Whole numbers with separators from 100 up, one decimal from 10, three significant digits below."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


def _targets(comparison: Comparison) -> str:
    """The 2021 report's figures against each scenario (medians where there are several runs), each value
    marked within its tolerance or not (the misfit in tolerances), and a count per scenario."""
    names = [s.name for s in comparison.sources]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = [f"<tr><th>target</th><th>meaning</th><th>report</th>{head}</tr>"]
    within = dict.fromkeys(names, 0)
    counted = dict.fromkeys(names, 0)
    for key, target, values in target_rows(comparison.runs):
        when = "peak" if target.time == "max" else f"at {target.time:g}"
        report_value = f"{target.relation} {_readable(target.value)} ({when}, ±{_readable(target.sigma)})"
        cells = []
        for name, value in values.items():
            if value is None:
                cells.append('<td class="n"></td>')
                continue
            z = float(target.misfit(value))
            counted[name] += 1
            within[name] += abs(z) <= 1
            mark = "within" if abs(z) <= 1 else f"outside: {z:+.1f} tolerances"
            css = "n" if abs(z) <= 1 else "n miss"
            cells.append(f'<td class="{css}">{_readable(value)}<br><small>{mark}</small></td>')
        rows.append(
            f"<tr><td>{html.escape(key)}</td><td>{html.escape(target.meaning)}</td>"
            f"<td>{html.escape(report_value)}</td>{''.join(cells)}</tr>"
        )
    count = "".join(f"<td class='n'>{within[n]} of {counted[n]} within</td>" for n in names)
    rows.append(f"<tr><th colspan='3'>targets within their tolerance</th>{count}</tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def _figure(name: str, png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    caption = CAPTIONS.get(name, name)
    return (
        f'<figure id="f-{name}"><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption><b>{html.escape(name.replace('_', ' ').capitalize())}.</b> {html.escape(caption)}"
        "</figcaption></figure>"
    )


def _sources_section() -> str:
    items = sorted({o.source for o in observed.population_observed()} | {p.source for p in observed.plan_levels()})
    listed = "".join(f"<li>{html.escape(s)}</li>" for s in items)
    return (
        "<h2>Observations drawn beside the model</h2><p>Report targets from <code>calibration/targets.toml</code> "
        "(the 2021 report on Beijing-Tianjin-Hebei coordinated development); population series and plan levels "
        f"from <code>calibration/population_observed.csv</code> and <code>plan_levels.csv</code>:</p><ul>{listed}</ul>"
    )


def _fit_section() -> str:
    """The calibration's fit table (``calibration/fit.md``, written by calibration), where present."""
    path = observed.CALIBRATION / "fit.md"
    if not path.is_file():
        return ""
    return (
        "<h2>Calibration fit</h2><p>From <code>calibration/fit.md</code> (each target against the best fit and "
        f"the ensemble's 5-95% range):</p><pre>{html.escape(path.read_text(encoding='utf-8'))}</pre>"
    )


def render(comparison: Comparison) -> str:
    """The report of a finished comparison as one HTML string."""
    from sim import __version__

    names = [s.name for s in comparison.sources]
    colours = scenario_colours(names)
    figures = [_figure(name, paths[0]) for name, paths in comparison.figures.items() if paths[0].suffix == ".png"]
    note = seed_note(comparison.sources)
    body = [
        f"<h1>Scenario comparison: {html.escape(', '.join(names))}</h1>",
        f"<p>Reference scenario: <b>{html.escape(comparison.reference)}</b>. Made by <code>sim {__version__}</code>; "
        "open the figure <a href='#f-key_outputs'>Key outputs</a> first.</p>",
        *(
            [f"<p class='note'><b>Note:</b> {html.escape(note)}.</p>"]
            if (note := seed_note(comparison.sources))
            else []
        ),
        "<h2>Scenarios</h2>",
        *(_scenario_section(s, colours[s.name]) for s in comparison.sources),
        "<h2>Summary table</h2>",
        "<p>Values at 1 January of each year; medians with 5-95% ranges where there are several runs.</p>",
        _table(comparison),
        "<h2>Against the 2021 report</h2>",
        "<p>The report's figures (<code>calibration/targets.toml</code>) and each scenario's value, marked "
        "<i>within</i> its tolerance or <i>outside</i> (in red, with the misfit in tolerances); the last row "
        "counts them. A scenario that changes the record before 2021 is not expected to meet them.</p>",
        _targets(comparison),
        _fit_section(),
        "<h2>Figures</h2>",
        *figures,
        _sources_section(),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">"
        f"<title>sim report: {html.escape(', '.join(names))}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


REPORT_MARK = b"<title>sim report:"
"""How a file this module wrote begins (within its first kilobyte): only such a file is replaced."""


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise InputError(out, "--out", "expected the HTML file to write, got a folder")
    if out.exists():
        with open(out, "rb") as handle:
            written_here = REPORT_MARK in handle.read(1024)
        if not written_here:
            raise InputError(
                out, "--out", "exists and is not a report sim wrote: not replaced (give another name, or remove it)"
            )


def report(
    inputs: Sequence[str | Path] | Comparison,
    out: str | Path = "runs/report.html",
    reference: str | None = None,
    seeds: int = 1,
    progress: Callable[[str], None] | None = None,
    ensemble: str | Path | None = None,
) -> Path:
    """Write the HTML report of a comparison (made here from ``inputs`` unless one is given).

    ``out`` may replace an earlier report, never another file (a scenario, a user's notes).
    """
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(inputs, Comparison):
        text = render(inputs)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            made = compare(inputs, scratch, reference, seeds, formats=("png",), progress=progress, ensemble=ensemble)
            text = render(made)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(out)
    return out
