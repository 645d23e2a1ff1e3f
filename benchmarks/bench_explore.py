"""How fast the explore page answers, and how far its stock-and-flow view is from a full run.

    python benchmarks/bench_explore.py                       # timings (server and browser), Markdown
    python benchmarks/bench_explore.py --gaps                # also: the view's gap over the sliders' ranges
    python benchmarks/bench_explore.py --screenshots docs    # also: docs/explore_*.png at two settings

A benchmark, not a test. The browser figures drive the live page in Debian's chromium (Playwright):
a slider step is timed from the slider's input event to the frame after the charts were redrawn
(window.explore.timings, measured by the page itself); a full run from the slider's release.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sim  # noqa: E402
from sim.explore.answers import Explorer, gap  # noqa: E402
from sim.explore.sliders import sliders  # noqa: E402

CORE = "policies.core_area_control.strength"
SECOND_SETTING = {"policies.admission_control_2017.strength": "0", "policies.xiongan_second_wave.projects": "450"}
"""The second screenshot: no 2017 admission control, three times the 2021 Xiong'an building programme."""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def quantiles(samples: list[float]) -> str:
    ms = sorted(1000 * s for s in samples)
    return f"median {statistics.median(ms):.0f} ms, 90% {ms[int(0.9 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms"


def server_side(explorer: Explorer, steps: int) -> list[tuple[str, str]]:
    """Wall and CPU time of the server's work (CPU: this process alone, steadier on a shared machine)."""
    rows = []

    def timed(work, settings) -> str:
        wall, cpu = [], []
        for setting in settings:
            started, used = time.perf_counter(), time.process_time()
            work(setting)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
        return f"{quantiles(wall)}; CPU median {1000 * statistics.median(cpu):.0f} ms"

    for address, low, high in ((CORE, 0.0, 7.5), ("population.jobs_weight", 0.0, 6.0)):
        settings = [{address: float(v)} for v in np.linspace(low, high, steps)]
        rows.append((f"stock-and-flow view, {steps} steps of {address} (server)", timed(explorer.stockflow, settings)))
    settings = [{CORE: v} for v in (1.0, 4.0, 6.0)]
    rows.append(("full run of the setting (server)", timed(explorer.full, settings)))
    return rows


def in_browser(explorer: Explorer, steps: int, screenshots: Path | None) -> list[tuple[str, str]]:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from sim.explore.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(explorer, Path("/tmp")), host="127.0.0.1", port=8797))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    rows = []
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto("http://127.0.0.1:8797/")
            page.wait_for_function("document.querySelectorAll('#charts canvas').length === 6")
            if screenshots and explorer.ensemble:  # the explored setting's bands, as a user sees them after a moment
                page.wait_for_function("window.explore.bands !== null", timeout=60_000)
            if screenshots:
                page.screenshot(path=screenshots / "explore_plan2021.png")
            slider = page.locator(f'input[data-address="{CORE}"]')
            for i, value in enumerate(np.linspace(0.0, 7.5, steps)):
                slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", f"{value:.2f}")
                page.wait_for_function(f"window.explore.timings.filter(t => t.kind === 'stockflow').length > {i}")
            sf = [t["ms"] / 1000 for t in page.evaluate("window.explore.timings") if t["kind"] == "stockflow"]
            rows.append((f"slider step -> redrawn charts, stock-and-flow view ({steps} steps, browser)", quantiles(sf)))
            server_cpu = []  # the server's threads (this process) from the release to the redrawn charts
            for i, value in enumerate(("1", "5", "7")):
                used = time.process_time()
                slider.fill(value)
                page.wait_for_function(
                    f"window.explore.timings.filter(t => t.kind === 'full').length > {i}", timeout=120_000
                )
                server_cpu.append(time.process_time() - used)
            timings = [t for t in page.evaluate("window.explore.timings") if t["kind"] == "full"]
            full = [t["ms"] / 1000 for t in timings]
            rows.append(("slider release -> redrawn charts, full model (3 releases, browser)", quantiles(full)))
            rows.append(("... the server process's CPU time over it (every thread)", quantiles(server_cpu)))
            rows.append(
                (
                    "... of which the full run on the server",
                    quantiles([t["server"] for t in timings]),
                )
            )
            rows.append(
                (
                    "... the request, the gap to the view, JSON both ways",
                    quantiles([(t["answered"] / 1000 - t["server"]) for t in timings]),
                )
            )
            rows.append(
                (
                    "... setting the charts' data and the next frame",
                    quantiles([(t["ms"] - t["answered"]) / 1000 for t in timings]),
                )
            )
            if screenshots:
                slider.fill("2.5")  # back to the scenario's value, then two other levers
                for address, value in SECOND_SETTING.items():
                    done = len(page.evaluate("window.explore.timings"))
                    moved = page.locator(f'input[data-address="{address}"]')
                    moved.scroll_into_view_if_needed()
                    moved.fill(value)
                    drawn = f"window.explore.timings.length > {done} && window.explore.full && window.explore.full.gap"
                    page.wait_for_function(drawn, timeout=120_000)
                if explorer.ensemble:
                    page.wait_for_function("window.explore.bands !== null", timeout=60_000)
                page.wait_for_timeout(300)
                page.screenshot(path=screenshots / "explore_no_2017_control_more_xiongan.png")
            browser.close()
    finally:
        server.should_exit = True
    return rows


def gaps(explorer: Explorer) -> list[tuple[str, str]]:
    """The stock-and-flow view against a full run at both ends of every slider it answers (dates excluded)."""
    rows, worst = [], {}
    for slider in sliders(explorer.scenario):
        if not slider.stockflow or slider.type in ("date", "bool"):
            continue
        largest = 0.0
        for value in (slider.low, slider.high):
            setting = {slider.address: value}
            found = gap(explorer.stockflow(setting), explorer.full(setting))
            for key, g in found.items():
                worst[key] = max(worst.get(key, 0.0), g["relative"])
                largest = max(largest, g["relative"]) if key != "construction_workforce" else largest
        rows.append((f"gap at the ends of {slider.address}", f"{100 * largest:.2f} %"))
    rows.append(("largest gap by chart", ", ".join(f"{k} {100 * v:.2f} %" for k, v in worst.items())))
    return rows


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--scenario", default=os.path.relpath(ROOT / "scenarios" / "plan2021.toml"))
    options.add_argument("--steps", type=int, default=20)
    options.add_argument("--gaps", action="store_true")
    options.add_argument("--no-browser", action="store_true")
    options.add_argument("--screenshots", type=Path)
    args = options.parse_args()
    started = time.perf_counter()
    explorer = Explorer(sim.load_scenario(args.scenario))
    explorer.stockflow({})
    rows = [("start: one full run of the explored scenario, recorded", f"{time.perf_counter() - started:.1f} s")]
    rows += server_side(explorer, args.steps)
    if not args.no_browser:
        rows += in_browser(explorer, args.steps, args.screenshots)
    if args.gaps:
        rows += gaps(explorer)
    print(
        f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"compiled kernel: {explorer.compiled}; {Path(args.scenario).name}\n"
    )
    print("| what | time |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
