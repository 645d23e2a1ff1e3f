"""The explore page's server (sim.explore): views, stale requests, saving, bands, the static export, the CLI.

Fast: one explored scenario (plan2021 cut to 2014-2024) shared by the module, driven through
Starlette's TestClient or httpx's ASGI transport (no socket). The page in a real browser is
tests/test_explore_browser.py (slow).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sim
from sim.cli import main
from tests.conftest import SCENARIOS, write_scenario


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{module} is missing (CI installs the explore extra: see .ci/run)")
        pytest.skip(f"{module} is not installed (pip install -e '.[explore]')", allow_module_level=True)


_require("starlette")
_require("httpx")

with warnings.catch_warnings():  # Starlette 1.x asks for httpx2 on import; httpx works and is what is packaged
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient  # noqa: E402

from sim.explore import answers  # noqa: E402
from sim.explore.answers import Explorer, Trajectories, population_series  # noqa: E402
from sim.explore.app import create_app  # noqa: E402
from sim.explore.page import static_page  # noqa: E402
from sim.explore.sliders import sliders  # noqa: E402

CORE = "policies.core_area_control.strength"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("explore")


@pytest.fixture(scope="module")
def explorer(folder: Path) -> Explorer:
    path = write_scenario(folder, 'name = "plan_short"\n[run]\nend = 2024\n', "plan_short.toml", "plan2021.toml")
    return Explorer(sim.load_scenario(path), ensemble=folder / "no_ensemble.csv")


@pytest.fixture(scope="module")
def client(explorer: Explorer, folder: Path) -> TestClient:
    return TestClient(create_app(explorer, folder / "saved"))


def _population(dataset, explorer: Explorer) -> dict[str, np.ndarray]:
    return population_series(dataset.population.values, explorer.scenario.regions.codes)


def test_stockflow_view_at_the_explored_setting_is_the_full_run(explorer: Explorer) -> None:
    view = explorer.stockflow({})
    for key, values in view.series.items():
        assert values == explorer.reference.series[key], key


def test_stockflow_view_moves_as_the_model_says(explorer: Explorer) -> None:
    """Stronger core-area control (from 2021): fewer residents in the central six by 2024; none before."""
    weak, strong = explorer.stockflow({CORE: 0.0}), explorer.stockflow({CORE: 7.0})
    start = explorer.reference.time.index(2021.0)
    assert weak.series["central_six"][:start] == strong.series["central_six"][:start]
    assert strong.series["central_six"][-1] < weak.series["central_six"][-1] - 1000
    # more Xiong'an projects: more construction workers on site (the timeline is rerun for the setting)
    more = explorer.stockflow({"policies.xiongan_second_wave.projects": 300})
    assert sum(more.series["construction_workforce"]) > sum(explorer.reference.series["construction_workforce"])


def test_a_policy_switched_off_in_both_views_and_in_the_saved_file(explorer: Explorer, folder: Path) -> None:
    """Without the 2021 Xiong'an building programme: fewer workers on site from mid-2021 (its first homes come
    after this run's end in 2024), the months before untouched."""
    off = {"policies.xiongan_second_wave.enabled": False}
    view, reference = explorer.stockflow(off).series, explorer.reference.series
    start = explorer.reference.time.index(2021.5)
    assert view["construction_workforce"][:start] == reference["construction_workforce"][:start]
    assert sum(view["construction_workforce"]) < 0.9 * sum(reference["construction_workforce"])
    from sim.explore.save import save

    path = save(explorer.scenario, off, "no_second_wave", folder / "switched")
    assert "enabled = false" in path.read_text(encoding="utf-8")
    assert "xiongan_second_wave" not in sim.load_scenario(path).policies


def test_full_endpoint_is_sim_run_and_states_the_gap(client: TestClient, explorer: Explorer) -> None:
    values = {CORE: 6.0, "population.jobs_weight": 2.5}
    answer = client.post("/api/full", json={"seq": 1, "values": values}).json()
    expected = _population(sim.run(explorer.scenario, params=values), explorer)
    for key, series in expected.items():
        assert np.allclose(answer["series"][key], series, rtol=0, atol=0.06), key
    approx = client.post("/api/stockflow", json={"seq": 1, "values": values}).json()
    for key, gap in answer["gap"].items():
        diff = np.abs(np.array(approx["series"][key]) - np.array(answer["series"][key])).max()
        assert gap["absolute"] == pytest.approx(diff, abs=0.1), key
    assert answer["gap"]["central_six"]["absolute"] > 0  # the agents answer too: the view is an approximation


def test_older_requests_are_answered_stale(client: TestClient) -> None:
    """One counter for every kind: a slider step makes the full run and bands of the step before stale."""
    assert "series" in client.post("/api/stockflow", json={"seq": 10, "values": {}}).json()
    assert client.post("/api/stockflow", json={"seq": 9, "values": {CORE: 1.0}}).json() == {"seq": 9, "stale": True}
    assert client.post("/api/full", json={"seq": 9, "values": {CORE: 1.0}}).json() == {"seq": 9, "stale": True}
    assert client.post("/api/bands", json={"seq": 9, "values": {CORE: 1.0}}).json() == {"seq": 9, "stale": True}


def _paused(explorer: Explorer) -> tuple[Explorer, threading.Event]:
    """The explorer whose first full run, at its first month, waits until a newer request has made it stale
    (so that the newer request surely arrives while it runs, however fast a run is); and the event it sets then."""
    running = threading.Event()

    class Paused(Explorer):
        def full(self, values: Mapping[str, Any], still_wanted: Callable[[], bool] = lambda: True) -> Trajectories:
            def gate() -> bool:
                if not running.is_set():
                    running.set()
                    deadline = time.monotonic() + 10
                    while still_wanted() and time.monotonic() < deadline:
                        time.sleep(0.005)
                return still_wanted()

            return super().full(values, gate)

    paused = Paused.__new__(Paused)
    paused.__dict__.update(explorer.__dict__)
    return paused, running


def _while_a_full_run_runs(explorer: Explorer, folder: Path, kind: str, values: dict) -> tuple[dict, dict]:
    """Ask for a full run (seq 1), then, once it runs, for ``kind`` (seq 2); both answers."""
    import httpx

    paused, running = _paused(explorer)
    app = create_app(paused, folder / "saved")

    async def both() -> tuple[dict, dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            first = asyncio.create_task(http.post("/api/full", json={"seq": 1, "values": {CORE: 1.0}}))
            while not running.is_set():  # the first run is under way
                await asyncio.sleep(0.01)
            second = await http.post(f"/api/{kind}", json={"seq": 2, "values": values})
            return (await first).json(), second.json()

    return asyncio.run(both())


def test_a_newer_full_request_cancels_the_running_one(explorer: Explorer, folder: Path) -> None:
    first, second = _while_a_full_run_runs(explorer, folder, "full", {CORE: 2.0})
    assert first == {"seq": 1, "stale": True}
    assert second["seq"] == 2 and "series" in second


def test_a_slider_step_cancels_the_full_run_under_way(explorer: Explorer, folder: Path) -> None:
    """Dragging again after a release: the released setting's full run stops (it would take the processor
    from the stock-and-flow answers the page now waits for)."""
    first, step = _while_a_full_run_runs(explorer, folder, "stockflow", {CORE: 1.5})
    assert first == {"seq": 1, "stale": True}
    assert step["seq"] == 2 and "series" in step


def test_bad_values_are_refused_with_the_address(client: TestClient) -> None:
    answer = client.post("/api/stockflow", json={"seq": 100, "values": {"policies.core_area_control.strenght": 1}})
    assert answer.status_code == 422
    assert "strenght" in answer.json()["error"] and "did you mean" in answer.json()["error"]
    assert client.post("/api/stockflow", json={"seq": 101, "values": {CORE: 99}}).status_code == 422
    assert client.post("/api/stockflow", content=b"not json").status_code == 400


def test_save_writes_a_scenario_that_run_reproduces(client: TestClient, explorer: Explorer, folder: Path) -> None:
    values = {s.address: s.value for s in sliders(explorer.scenario)}
    values[CORE] = 4.0
    values["policies.rail_tianjin_xiongan.date"] = 2020 + 5 / 12  # June 2020
    values["policies.universities_to_xiongan.count"] = 7
    answer = client.post("/api/save", json={"name": "my_setting", "values": values}).json()
    path = Path(answer["path"])
    text = path.read_text(encoding="utf-8")
    assert path == folder / "saved" / "my_setting.toml"
    assert "date = 2020-06-01" in text and "strength = 4.0" in text and "count = 7" in text
    assert "jobs_weight" not in text  # unchanged values are not written
    full = client.post("/api/full", json={"seq": 150, "values": values}).json()
    assert "series" in full, full
    saved = _population(sim.run(sim.load_scenario(path)), explorer)
    for key, series in saved.items():
        assert np.allclose(full["series"][key], series, rtol=0, atol=0.06), key
    again = client.post("/api/save", json={"name": "my_setting", "values": values})
    assert again.status_code == 422 and "exists" in again.json()["error"]
    assert client.post("/api/save", json={"name": "../x", "values": values}).status_code == 422


def test_bands_from_an_ensemble_file_and_none_without(
    explorer: Explorer, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert explorer.bands({}) is None
    ensemble = folder / "ensemble.csv"
    own = explorer.scenario.parameters  # the middle row holds the scenario's own (fitted) values
    jobs, sensitivity = own["population.jobs_weight"], own["population.move_sensitivity"]
    ensemble.write_text(
        "sample,population.jobs_weight,population.move_sensitivity,log_posterior\n"
        f"0,{jobs - 0.1},{sensitivity / 2},-3\n1,{jobs + 0.5},{sensitivity + 0.02},-4\n2,{jobs},{sensitivity},-3.5\n",
        encoding="utf-8",
    )
    with_bands = Explorer.__new__(Explorer)
    with_bands.__dict__.update(explorer.__dict__)
    from sim.explore.answers import load_ensemble

    with_bands.ensemble = load_ensemble(ensemble, explorer.space)
    bands = with_bands.bands({CORE: 3.0})
    assert bands["runs"] == 3
    low, high = (np.array(b) for b in bands["bands"]["tongzhou"])
    assert (low <= high).all() and (high - low).max() > 0
    # the middle parameter set is the explored one: its trajectory lies within the band
    middle = np.array(explorer.stockflow({CORE: 3.0}).series["tongzhou"])
    assert (low - 0.1 <= middle).all() and (middle <= high + 0.1).all()
    # replayed in chunks (a newer request waits at most one): the same bands as one batch, bit for bit
    _, one_batch = with_bands._replay({CORE: 3.0}, with_bands.ensemble)
    for key, runs in population_series(one_batch, explorer.scenario.regions.codes).items():
        whole = [[round(float(v), 1) for v in q] for q in np.percentile(runs, [5, 95], axis=1)]
        assert bands["bands"][key] == whole, key
    # a newer request stops them between chunks
    asked = []

    def wanted() -> bool:
        asked.append(1)
        return len(asked) < 2

    monkeypatch.setattr(answers, "BAND_CHUNK", 1)
    with pytest.raises(answers.Cancelled):
        with_bands.bands({CORE: 3.0}, wanted)
    assert len(asked) == 2  # one chunk replayed, stopped before the second


def test_a_full_run_states_its_gap_to_the_view_the_page_drew(
    explorer: Explorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The view of the setting the page asked a moment before is reused, not replayed again."""
    values = {CORE: 5.5}
    view = explorer.stockflow(values)
    monkeypatch.setattr(Explorer, "_stockflow", lambda *_: pytest.fail("replayed again"))
    assert explorer.stockflow(dict(values)) is view


def test_sliders_have_units_and_ranges_within_the_space(explorer: Explorer) -> None:
    from sim.space import addresses

    space = addresses(explorer.scenario)
    found = {s.address: s for s in sliders(explorer.scenario)}
    assert found[CORE].unit == "utility" and found[CORE].stockflow
    assert found["policies.core_area_control.date"].type == "date"
    assert (
        found["policies.universities_to_xiongan.count"].step == 1
        and not found["policies.universities_to_xiongan.count"].stockflow
    )
    assert (
        found["policies.xiongan_second_wave.enabled"].type == "bool"
        and found["policies.xiongan_second_wave.enabled"].value
    )
    for s in found.values():
        if s.type == "bool":
            continue
        a = space[s.address]
        assert s.low <= s.value <= s.high
        if s.type != "date":
            assert a.low is None or s.low >= a.low
            assert a.high is None or s.high <= a.high


def test_every_slider_end_is_a_setting_the_view_answers(explorer: Explorer) -> None:
    for s in sliders(explorer.scenario):
        if s.type in ("number", "integer"):
            for value in (s.low, s.high):
                explorer.stockflow({s.address: value})  # no InputError: the range holds only valid settings


def test_page_and_its_files_are_served_from_the_server_only(client: TestClient) -> None:
    page = client.get("/").text
    assert 'src="/static/uPlot.iife.min.js"' in page and "http://" not in page and "https://" not in page
    config = json.loads(page.split('<script id="config" type="application/json">')[1].split("</script>")[0])
    assert config["reference"]["series"]["beijing"][0] > 20e6
    assert client.get("/static/uPlot.iife.min.js").status_code == 200
    assert client.get("/static/pyproject.toml").status_code == 404
    assert client.post("/api/bands", json={"seq": 200, "values": {}}).json() == {"seq": 200, "bands": None}


def test_static_page_holds_its_grid_and_loads_nothing(explorer: Explorer) -> None:
    grid = explorer.grid({CORE: [2.5, 5.0]})  # 2.5: the explored value, whose full run the explorer holds
    html = static_page(explorer, grid)
    assert "<script src=" not in html and "<link" not in html
    assert not any(f'{attr}="http' in html or f"{attr}='http" in html for attr in ("src", "href", "action"))
    stored = json.loads(html.split('<script id="config" type="application/json">')[1].split("</script>")[0])
    assert stored["grid"]["levels"] == [[2.5, 5.0]]
    assert stored["grid"]["runs"][0] == explorer.reference.series  # a batch of runs gives each run's own numbers
    assert stored["grid"]["runs"][1]["central_six"][-1] < stored["grid"]["runs"][0]["central_six"][-1]


def test_cli_static_export_and_its_errors(folder: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_scenario(folder, 'name = "cli_short"\n[run]\nend = 2017\n', "cli_short.toml", "historical.toml")
    out = folder / "page.html"
    grid = "policies.admission_control_2017.strength=0:1.4:2"
    assert main(["explore", str(path), "--static", str(out), "--grid", grid]) == 0
    assert out.stat().st_size > 50_000 and "MB, 2 runs" in capsys.readouterr().out
    assert main(["explore", str(path), "--static", str(out), "--grid", "population.nothing=1,2"]) == 2
    assert "population.nothing" in capsys.readouterr().err
    assert main(["explore", str(path), "--grid", grid]) == 2
    assert main(["explore", str(path), "--ensemble", str(folder / "missing.csv"), "--no-browser"]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_cli_serves_on_loopback_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: served.append(self.config))
    path = write_scenario(folder, 'name = "serve_short"\n[run]\nend = 2016\n', "serve_short.toml", "historical.toml")
    assert main(["explore", str(path), "--no-browser", "--port", "8791"]) == 0
    assert [(c.host, c.port) for c in served] == [("127.0.0.1", 8791)]


def test_timelines_of_scenarios_that_differ_only_by_their_end_are_not_shared() -> None:
    """The policy timeline is cached by what it depends on, the horizon included (a cached 2035 timeline
    served to a 2024 scenario gave the page series of the wrong length)."""
    from sim.explore.answers import timeline_inputs

    plan = sim.load_scenario(SCENARIOS / "plan2021.toml")
    long, short = timeline_inputs(plan), timeline_inputs(replace(plan, end=2024))
    assert len(short.months) == (2024 - plan.start) * 12 < len(long.months)
