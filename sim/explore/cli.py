"""``python -m sim explore``: serve the page, or write the static export over a grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.scenario import load_scenario

MAX_RUNS = 400
DEFAULT_LEVELS = 5


def parse_grid(texts: list[str], sliders: dict, where: str = "--grid") -> dict[str, list[float]]:
    """``ADDRESS=v1,v2`` or ``ADDRESS=low:high:n`` -> address -> levels (checked against the page's sliders)."""
    levels: dict[str, list[float]] = {}
    for text in texts:
        address, sep, spec = text.partition("=")
        if not sep or address not in sliders:
            known = ", ".join(list(sliders)[:5])
            raise InputError(where, text, f"expected ADDRESS=LEVELS with a slider's address (e.g. {known}, ...)")
        try:
            if ":" in spec:
                low, high, count = spec.split(":")
                values = np.linspace(float(low), float(high), int(count)).tolist()
            else:
                values = [float(v) for v in spec.split(",")]
        except ValueError:
            raise InputError(where, address, f"expected v1,v2,... or low:high:n, got {spec!r}") from None
        if sliders[address].type == "bool":
            raise InputError(where, address, "a policy's switch, not a slider: the grid takes numbers and dates")
        if sliders[address].type == "integer":
            values = sorted({round(v) for v in values})
        if not values:
            raise InputError(where, address, "expected at least one level")
        levels[address] = values
    if not 1 <= len(levels) <= 3:
        raise InputError(where, "--grid", f"expected 1 to 3 sliders, got {len(levels)}")
    runs = int(np.prod([len(v) for v in levels.values()]))
    if runs > MAX_RUNS:
        raise InputError(where, "--grid", f"{runs} runs: expected at most {MAX_RUNS} (fewer levels)")
    return levels


def default_grid(scenario, sliders: dict) -> list[str]:
    """Two strengths of the policies the explored file itself sets (else any), five levels each."""
    own = set(scenario.document.get("policies", {})) if scenario.path is None else _own_policies(scenario)
    strengths = [s for s in sliders.values() if s.group in own and s.type in ("number", "integer")]
    strengths = strengths or [
        s for s in sliders.values() if s.group != "uncertainties" and s.type in ("number", "integer")
    ]
    return [f"{s.address}={s.low}:{s.high}:{DEFAULT_LEVELS}" for s in strengths[:2]]


def _own_policies(scenario) -> set[str]:
    import tomllib

    with open(scenario.path, "rb") as handle:
        return set(tomllib.load(handle).get("policies", {}))


def explore(args: argparse.Namespace) -> int:
    from sim.explore.answers import Explorer
    from sim.explore.sliders import sliders as page_sliders

    scenario = load_scenario(args.scenario)
    sliders = {s.address: s for s in page_sliders(scenario)}
    if args.grid and not args.static:
        raise InputError("explore", "--grid", "expected --static OUT.html with --grid")
    levels = parse_grid(args.grid or default_grid(scenario, sliders), sliders) if args.static else None
    print(f"running {scenario.name} once (the reference the page starts from) ...", file=sys.stderr, flush=True)
    if args.ensemble and not Path(args.ensemble).is_file():
        raise InputError(args.ensemble, "--ensemble", "no such file (python -m sim calibrate writes ensemble.csv)")
    explorer = Explorer(scenario, args.seed, Path(args.ensemble) if args.ensemble else None)
    if args.static:
        from sim.explore.page import static_page

        runs = int(np.prod([len(v) for v in levels.values()]))
        print(f"{runs} full runs over {', '.join(levels)} ...", file=sys.stderr, flush=True)

        def progress(done: int, total: int) -> None:
            print(f"  {done}/{total}", file=sys.stderr, flush=True)

        grid = explorer.grid(levels, progress=progress)
        out = Path(args.static)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(static_page(explorer, grid), encoding="utf-8")
        print(f"{out}: {out.stat().st_size / 1e6:.2f} MB, {runs} runs over {' x '.join(levels)}")
        return 0
    from sim.explore.app import serve

    explorer.stockflow({})  # the compiled kernel loads now, not on the first slider step
    folder = Path(args.save_dir) if args.save_dir else Path(scenario.path).parent
    serve(explorer, folder, args.port, not args.no_browser)
    return 0
