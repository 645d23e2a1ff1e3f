"""The documentation names every parameter, output and policy field the code has (and no removed one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.model import RECORDED
from sim.policies import POLICY_KINDS
from sim.scenario import PARAMETERS

DOCS = Path(__file__).resolve().parents[1] / "docs"
MODEL = (DOCS / "model.md").read_text(encoding="utf-8")
SCENARIOS = (DOCS / "scenarios.md").read_text(encoding="utf-8")


def table_rows(text: str) -> set[str]:
    """The first cell of every Markdown table body row (not headers), without backticks."""
    lines = text.splitlines()
    rows = set()
    for line, following in zip(lines, [*lines[1:], ""]):
        is_header = re.match(r"^\|\s*:?-{3,}", following)
        if line.startswith("|") and not re.match(r"^\|\s*:?-{3,}", line) and not is_header:
            rows.add(line.split("|")[1].strip().strip("`"))
    return rows


def test_every_parameter_is_in_the_parameter_table_and_nothing_else_is():
    documented = {row for row in table_rows(MODEL) if re.fullmatch(r"[a-z]+\.[a-z_0-9]+", row)}
    expected = {f"{group}.{name}" for group, table in PARAMETERS.items() for name in table}
    assert documented == expected


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_every_output_is_documented(name):
    assert f"`{name}`" in MODEL


@pytest.mark.parametrize("kind", sorted(POLICY_KINDS))
def test_every_policy_field_is_documented(kind):
    section = SCENARIOS.split(f"`{kind}`", 1)
    assert len(section) == 2, f"policy kind {kind} is not in docs/scenarios.md"
    for field in POLICY_KINDS[kind]:
        assert f"`{field}`" in section[1], f"{kind}.{field} is not documented"


def test_the_worked_example_checks_as_the_docs_say(tmp_path, capsys):
    """The tutorial's scenario file is valid and `check` prints what the docs show."""
    import shutil

    from sim.cli import main

    example = SCENARIOS.split("## Worked example", 1)[1]
    toml = re.search(r"```toml\n(.*?)```", example, flags=re.S).group(1)
    name = re.search(r'name = "([^"]+)"', toml).group(1)
    (tmp_path / "scenarios").mkdir()
    shutil.copy(DOCS.parent / "scenarios" / "historical.toml", tmp_path / "scenarios")
    (tmp_path / "calibration").mkdir()  # historical extends ../calibration/fitted.toml
    shutil.copy(DOCS.parent / "calibration" / "fitted.toml", tmp_path / "calibration")
    (tmp_path / "scenarios" / f"{name}.toml").write_text(toml)
    assert main(["check", str(tmp_path / "scenarios" / f"{name}.toml")]) == 0
    printed = capsys.readouterr().out.split(": ", 1)[1].strip()
    assert printed in example


def test_the_shipped_scenarios_table_counts_their_policies():
    """A row of the shipped-scenarios table that says "N policies" says what `check` counts."""
    from sim.scenario import load_scenario

    table = SCENARIOS.split("## Shipped scenarios", 1)[1].split("\n\n", 2)[1]
    counted = re.findall(r"^\| `(scenarios/[a-z_0-9]+\.toml)`.*?\b(\d+) policies", table, flags=re.M)
    assert counted, "no row of the shipped-scenarios table gives a policy count"
    for path, count in counted:
        assert len(load_scenario(DOCS.parent / path).policies) == int(count), path
