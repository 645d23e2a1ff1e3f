"""The explore page in a real browser: a slider moves the trajectories the model's way, the saved
scenario reproduces the page's full-model numbers through ``run``, and nothing leaves loopback.

Debian's ``chromium`` driven by Playwright's Python package (no browser download); the server runs
in this process (uvicorn in a thread on 127.0.0.1), so the test also sees every connection the
server opens. Skips with the reason where something is missing, fails under CI (``CI=true``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sim
from tests.conftest import ROOT, write_scenario
from tests.test_report_browser import FLAGS, _missing, browser_parts

CORE = "policies.core_area_control.strength"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_explore_page_in_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chromium, sync_playwright = browser_parts()
    try:
        import uvicorn

        from sim.explore.answers import Explorer, population_series
        from sim.explore.app import LOOPBACK, create_app
    except ImportError:
        _missing("the explore extra is not installed (pip install -e '.[explore]')")

    # every connection this process opens (the server's included) is recorded
    opened: list[object] = []
    connect = socket.socket.connect

    def recording(self: socket.socket, address: object) -> object:
        opened.append(address)
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)

    path = write_scenario(tmp_path, 'name = "plan_short"\n[run]\nend = 2026\n', "plan_short.toml", "plan2021.toml")
    shipped = (ROOT / "calibration" / "ensemble.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "ensemble.csv").write_text("\n".join(shipped[:9]) + "\n", encoding="utf-8")  # eight sets: quick bands
    explorer = Explorer(sim.load_scenario(path), ensemble=tmp_path / "ensemble.csv")
    assert explorer.ensemble is not None and len(explorer.ensemble) == 8
    explorer.stockflow({})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(explorer, tmp_path / "saved"), host=LOOPBACK, port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    origin = f"http://{LOOPBACK}:{port}/"
    from urllib.request import urlopen

    with urlopen(origin) as response:  # served, and the recorder sees connections (this one)
        assert response.status == 200
    assert (LOOPBACK, port) in opened
    requests: list[str] = []
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(origin)
            page.wait_for_function("document.querySelectorAll('#charts canvas').length === 6")
            page.wait_for_function("window.explore.bands !== null", timeout=60_000)  # the explored setting's bands
            bands_before = page.evaluate("window.explore.bands")

            slider = page.locator(f'input[data-address="{CORE}"]')
            slider.fill("7")  # input (stock-and-flow view) then change (full run when it rests)
            page.wait_for_function("window.explore.sf !== null && window.explore.last !== null")
            sf = page.evaluate("window.explore.sf.series")
            page.wait_for_function("window.explore.full && window.explore.full.gap", timeout=60_000)
            full = page.evaluate("window.explore.full")
            page.wait_for_function("window.explore.bands !== null", timeout=60_000)  # the new setting's, at rest
            bands_after = page.evaluate("window.explore.bands")
            status = page.inner_text("#status")
            values = page.evaluate("window.explore.values")

            page.fill("#save-name", "strict_core")
            page.click("#save")
            page.wait_for_function("window.explore.saved !== undefined")
            saved = page.evaluate("window.explore.saved")

            # a setting the validator refuses (a start after its end) is refused on the page, with its message
            late = page.locator('input[data-address="policies.subcenter_second_batch.start"]')
            late.fill(late.get_attribute("max"))
            page.wait_for_function("window.explore.error !== null")
            refused = page.inner_text("#status")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    assert errors == []
    assert refused.startswith("Refused:") and "subcenter_second_batch" in refused
    assert values[CORE] == 7.0
    reference = explorer.reference.series
    # stronger control in the core: fewer residents in the central six, in both views, from 2021 only
    for shown in (sf["central_six"], full["series"]["central_six"]):
        assert shown[-1] < reference["central_six"][-1] - 1000
    assert "Showing the full model" in status and "off from this full run by at most" in status
    assert "Band: 5-95% of 8 calibration-ensemble parameter sets" in status
    # the bands follow the setting: stronger control in the core lowers the central six's band too
    for bands in (bands_before, bands_after):
        assert bands["runs"] == 8
        low, high = (np.array(side) for side in bands["bands"]["central_six"])
        assert np.all(low <= high) and np.any(low < high)
    assert bands_after["bands"]["central_six"][1][-1] < bands_before["bands"]["central_six"][1][-1] - 1000
    for key, gap in full["gap"].items():  # the stated bound holds for what the page drew
        drawn = np.abs(np.array(sf[key]) - np.array(full["series"][key])).max()
        assert drawn <= gap["absolute"] + 0.1, key

    # the saved file, run by `run`, gives the page's full-model numbers
    saved_path = Path(saved["path"])
    assert saved_path.parent == tmp_path / "saved" and "strength = 7.0" in saved_path.read_text(encoding="utf-8")
    rerun = sim.run(sim.load_scenario(saved_path))
    for key, series in population_series(rerun.population.values, explorer.scenario.regions.codes).items():
        assert np.allclose(full["series"][key], series, rtol=0, atol=0.06), key

    # nothing left loopback: the page's requests, and every connection the process opened
    assert all(url.startswith(origin) for url in requests), json.dumps(requests)
    for asked in ("static/uPlot.iife.min.js", "api/stockflow", "api/full", "api/bands", "api/save"):
        assert origin + asked in requests
    hosts = {address[0] for address in opened if isinstance(address, tuple)}
    assert hosts <= {LOOPBACK, "::1", "localhost"}, hosts


@pytest.mark.slow
def test_static_export_in_chromium(tmp_path: Path) -> None:
    """The exported page works from a file: its slider steps through the grid's full runs; no request leaves it."""
    chromium, sync_playwright = browser_parts()
    from sim.cli import main

    path = write_scenario(tmp_path, 'name = "plan_short"\n[run]\nend = 2024\n', "plan_short.toml", "plan2021.toml")
    out = tmp_path / "page.html"
    assert main(["explore", str(path), "--static", str(out), "--grid", f"{CORE}=0,7"]) == 0
    grid = json.loads(out.read_text(encoding="utf-8").split('type="application/json">')[1].split("</script>")[0])
    requests: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(out.as_uri())
        page.wait_for_function("document.querySelectorAll('#charts canvas').length === 6")
        sliders = page.eval_on_selector_all("input[type=range]", "els => els.map(e => e.dataset.address)")
        page.locator(f'input[data-address="{CORE}"]').fill("0")
        first = page.evaluate("window.explore.full.series.central_six")
        page.locator(f'input[data-address="{CORE}"]').fill("1")
        second = page.evaluate("window.explore.full.series.central_six")
        browser.close()
    assert errors == [] and sliders == [CORE]
    assert first == grid["grid"]["runs"][0]["central_six"] and second == grid["grid"]["runs"][1]["central_six"]
    assert second[-1] < first[-1]  # stronger core-area control: fewer residents in the central six
    assert requests == [out.as_uri()]
