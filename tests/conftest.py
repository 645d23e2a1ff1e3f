"""Shared fixtures: the shipped scenarios and short variants of them written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

pytest_plugins = ["tiers"]  # test tiers (-m fast) and --regenerate-golden: tests/tiers.py

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


def write_scenario(folder: Path, text: str, name: str = "story.toml", extends: str = "historical.toml") -> Path:
    """A scenario file in ``folder`` that extends a shipped one (by absolute path) with ``text``."""
    path = folder / name
    path.write_text(f'extends = "{(SCENARIOS / extends).as_posix()}"\n{text}')
    return path


@pytest.fixture
def short_historical(tmp_path: Path) -> sim.Scenario:
    """The historical scenario, 2014-2016: every mechanism at work, fast."""
    return sim.load_scenario(write_scenario(tmp_path, "[run]\nend = 2016\n"))
