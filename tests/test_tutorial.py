"""docs/scenarios.md's tutorial works as written: its file validates, its commands parse, its outputs match.

The fast tests check the scenario file, the printed lines and every command line; the slow test
follows the tutorial end to end (run, compare with historical) in a scratch folder.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from sim.cli import main, parser

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
TUTORIAL = TEXT.split("## Tutorial", 1)[1].split("\n## ", 1)[0]
TOML = re.search(r"```toml\n(.*?)```", TUTORIAL, flags=re.S).group(1)
COMMANDS = [line.split("python -m sim ", 1)[1] for line in TUTORIAL.splitlines() if "python -m sim " in line]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the shipped scenarios (and the fit they extend) with the tutorial's file saved beside them."""
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    shutil.copytree(ROOT / "calibration", tmp_path / "calibration")
    (tmp_path / "scenarios" / "my_hospitals.toml").write_text(TOML, encoding="utf-8")
    return tmp_path


def test_the_tutorial_file_checks_and_diffs_as_printed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(workspace)
    assert 'extends = "plan2021.toml"' in TOML
    assert main(["check", "scenarios/my_hospitals.toml"]) == 0
    assert main(["diff", "scenarios/my_hospitals.toml"]) == 0
    for line in capsys.readouterr().out.splitlines():
        assert line in TUTORIAL, f"the tutorial does not show: {line}"


def test_every_tutorial_command_parses() -> None:
    assert len(COMMANDS) >= 8
    for command in COMMANDS:
        args = parser().parse_args(shlex.split(command.split("#", 1)[0]))
        assert callable(args.handler), command


@pytest.mark.slow
def test_the_tutorial_end_to_end(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the story and history, compare them with plan2021: the extra hospitals reach Xiong'an."""
    import csv

    monkeypatch.chdir(workspace)
    assert main(["run", "scenarios/historical.toml", "--no-plots"]) == 0  # as the README's first command left it
    run = next(c for c in COMMANDS if c.startswith("run scenarios/my_hospitals.toml"))
    assert main([*shlex.split(run), "--no-plots"]) == 0
    compare = next(c for c in COMMANDS if c.startswith("compare runs/historical"))
    assert main(shlex.split(compare)) == 0
    out = workspace / "runs" / "compare_my_hospitals"
    assert (out / "report.html").is_file() and (out / "figures" / "key_outputs.png").is_file()
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        rows = {(r["output"], r["scenario"]): r for r in csv.DictReader(handle)}
    moved = {s: float(rows["institutions_moved", s]["2035"]) for s in ("historical", "plan2021", "my_hospitals")}
    assert moved["my_hospitals"] - moved["plan2021"] == 6
    assert moved["plan2021"] > moved["historical"]


def test_every_readme_command_parses() -> None:
    """The README's everyday commands are real commands with real options."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = [line.strip() for line in readme.splitlines() if line.startswith(("    python -m", "python -m"))]
    commands = [line.split("python -m sim ", 1)[1] for line in code if "python -m sim " in line]
    assert any(c.startswith("compare") for c in commands) and any(c.startswith("export") for c in commands)
    for command in commands:
        words = shlex.split(command.split("#", 1)[0].replace("scenarios/*.toml", "scenarios/historical.toml"))
        assert callable(parser().parse_args(words).handler), command
