"""The HTML report in a real browser: every figure shows and the page makes no network request.

Debian's ``chromium`` driven by Playwright's Python package (no browser download). Where either
is missing the test skips with the reason, except under CI (``CI=true``), where it fails:
``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must have it: see .ci/run)")
    pytest.skip(reason)


def browser_parts() -> tuple[str, Any]:
    """Debian's chromium and Playwright's ``sync_playwright``; a missing one skips (fails under CI)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        _missing("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright's Python package is not installed (pip install playwright)")
    return chromium, sync_playwright


@pytest.mark.slow
def test_report_shows_every_figure_offline(tmp_path: Path) -> None:
    chromium, sync_playwright = browser_parts()
    stories = []
    for name, extra in (("base", ""), ("no_xiongan", "[policies.xiongan_founded]\nenabled = false\n")):
        path = tmp_path / f"{name}.toml"
        path.write_text(
            f'extends = "{(ROOT / "scenarios" / "historical.toml").as_posix()}"\nname = "{name}"\n'
            f"[run]\nend = 2021\n{extra}",
            encoding="utf-8",
        )
        stories.append(str(path))
    stories.append(str(ROOT / "scenarios" / "counterfactual.toml"))
    out = tmp_path / "cmp"
    assert main(["compare", *stories, "--out", str(out)]) == 0
    report = out / "report.html"
    figures = len(list((out / "figures").glob("*.png")))
    assert figures >= 8

    requests: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "figure img", "els => els.map(e => [e.complete, e.naturalWidth, e.getBoundingClientRect().width])"
        )
        headings = page.eval_on_selector_all("h3", "els => els.map(e => e.textContent)")
        browser.close()
    assert len(images) == figures
    for complete, natural, shown in images:
        assert complete and natural > 500 and shown > 300, "every figure decodes and is laid out"
    assert [h.strip() for h in headings] == ["base", "no_xiongan", "counterfactual"]
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
