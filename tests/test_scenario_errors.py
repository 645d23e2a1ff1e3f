"""Bad scenario files, through the command line: one line on stderr, exit status 2, never a traceback.

Each case is a small TOML file written to a temporary folder. Most extend the shipped
historical scenario (by absolute path), to show that overrides are validated too and that
an error names the file that wrote the bad value, not the file it extends. Every case is
run through ``check`` and ``run`` in-process (``sim.cli.main``); two go through a real
``python -m sim`` subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim.cli import main
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.toml"))
HISTORICAL = ROOT / "scenarios" / "historical.toml"
EXTENDS = f"extends = '{HISTORICAL.as_posix()}'\n"  # a TOML literal string: no escapes on Windows paths


@dataclass(frozen=True)
class Case:
    """A bad scenario: the files to write, the one to load, and what the error line must say."""

    files: dict[str, str | bytes]
    key: str
    """The key path the message must name (for syntax errors, the line)."""
    says: tuple[str, ...] = ()
    """Further text the message must contain (what was expected, a did-you-mean suggestion)."""
    target: str = "bad.toml"
    culprit: str = ""
    """The file the message must name (default: the target)."""
    skip_key: bool = False


def over(text: str) -> dict[str, str | bytes]:
    """A file bad.toml that extends the shipped historical scenario with ``text``."""
    return {"bad.toml": EXTENDS + text}


NEW_RAIL = '[policies.new_rail]\nkind = "rail"\ndate = 2025-01-01\nfrom = "bj_core"\nto = "xiongan"\n'

CASES: dict[str, Case] = {
    "syntax error": Case({"bad.toml": 'name = "x"\n[run\nstart = 2014\n'}, "line 2", ("TOML syntax error",)),
    "not UTF-8": Case({"bad.toml": b'name = "\xff"\n'}, "", ("not UTF-8",), skip_key=True),
    "unknown top-level key": Case(over("[polices.catalogue_2014]\nenabled = false\n"), "polices", ("'policies'",)),
    "misspelt parameter": Case(
        over("[population]\nout_migraton_rate = 0.04\n"),
        "population.out_migraton_rate",
        ("unknown parameter", "did you mean 'out_migration_rate'"),
    ),
    "misspelt parameter group": Case(over("[housng]\ntarget_occupancy = 0.9\n"), "housng", ("'housing'",)),
    "string where number": Case(
        over('[population]\njobs_weight = "2.0"\n'), "population.jobs_weight", ("expected a number", "'2.0'")
    ),
    "string in a policy number": Case(
        over('[policies.market_dispersal]\nrate = "fast"\n'), "policies.market_dispersal.rate", ("a number",)
    ),
    "not finite": Case(over("[population]\njobs_weight = nan\n"), "population.jobs_weight", ("finite",)),
    "negative parameter rate": Case(
        over("[population]\nout_migration_rate = -0.01\n"), "population.out_migration_rate", ("out of range",)
    ),
    "negative policy rate": Case(
        over("[policies.manufacturing_dispersal]\nrate = -0.1\n"),
        "policies.manufacturing_dispersal.rate",
        ("out of range", "expected 0 to 5"),
    ),
    "share above 1 (parameter)": Case(
        over("[firms]\npharma_share = 1.5\n"), "firms.pharma_share", ("out of range", "1.0")
    ),
    "share above 1 (policy)": Case(
        over("[policies.market_dispersal]\nclose_share = 1.2\n"),
        "policies.market_dispersal.close_share",
        ("out of range",),
    ),
    "share above 1 (sector table)": Case(
        over("[policies.catalogue_2014]\ncoverage_elsewhere = { manufacturing = 2.0 }\n"),
        "policies.catalogue_2014.coverage_elsewhere.manufacturing",
        ("out of range",),
    ),
    "unknown sector in a sector table": Case(
        over("[policies.catalogue_2014]\ncoverage_elsewhere = { manufactoring = 0.5 }\n"),
        "policies.catalogue_2014.coverage_elsewhere.manufactoring",
        ("did you mean 'manufacturing'",),
    ),
    "unknown region in a parameter table": Case(
        over("[housing]\nmax_build_rate = { bj_cor = 0.1 }\n"),
        "housing.max_build_rate.bj_cor",
        ("unknown region", "did you mean 'bj_core'"),
    ),
    "unknown region in a policy field": Case(
        over('[policies.xiongan_founded]\nregion = "xiongan2"\n'),
        "policies.xiongan_founded.region",
        ("unknown region", "did you mean 'xiongan'"),
    ),
    "unknown region in a policy list": Case(
        over('[policies.subcenter_first_batch]\nfrom = ["bj_core", "bj_centre"]\n'),
        "policies.subcenter_first_batch.from",
        ("'bj_centre'", "did you mean 'bj_central'"),
    ),
    "region where a list is expected": Case(
        over('[policies.subcenter_first_batch]\nfrom = "bj_core"\n'),
        "policies.subcenter_first_batch.from",
        ("a list of regions",),
    ),
    "extends cycle": Case(
        {"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'},
        "extends",
        ("cycle", "a.toml -> b.toml -> a.toml"),
        target="a.toml",
        culprit="b.toml",
    ),
    "extends itself": Case({"bad.toml": 'extends = "bad.toml"\n'}, "extends", ("cycle",)),
    "missing scenario file": Case({}, "", ("file not found",), target="absent.toml", skip_key=True),
    "missing extends target": Case(
        {"bad.toml": 'extends = "absent.toml"\n'}, "extends", ("'absent.toml'", "not found")
    ),
    "extends a folder": Case({"bad.toml": 'extends = "."\n'}, "extends", ("not a file",)),
    "extends not a string": Case({"bad.toml": "extends = 3\n"}, "extends", ("a file name",)),
    "date before 2014": Case(
        over("[policies.xiongan_founded]\nstart = 2013-05-01\n"),
        "policies.xiongan_founded.start",
        ("2013-05-01", "out of range"),
    ),
    "date after 2050": Case(
        over("[policies.rail_beijing_zhangjiakou]\ndate = 2051-01-01\n"),
        "policies.rail_beijing_zhangjiakou.date",
        ("2051-01-01", "out of range"),
    ),
    "policy ends before it starts": Case(
        over(
            '[policies.late_dispersal]\nkind = "dispersal"\nsector = "manufacturing"\n'
            "start = 2020-01-01\nend = 2019-06-01\nrate = 0.01\nclose_share = 0.5\n"
        ),
        "policies.late_dispersal.end",
        ("ends before it starts",),
    ),
    "override ends before the inherited start": Case(
        over("[policies.manufacturing_dispersal]\nend = 2014-01-01\n"),
        "policies.manufacturing_dispersal.end",
        ("ends before it starts", "2014-03-01"),
    ),
    "override starts after the inherited end": Case(
        over("[policies.manufacturing_dispersal]\nstart = 2021-06-01\n"),
        "policies.manufacturing_dispersal.start",
        ("starts after it ends", "2021-01-01"),
    ),
    "unknown policy kind": Case(
        over('[policies.new_rail]\nkind = "rial"\n'), "policies.new_rail.kind", ("'rial'", "did you mean 'rail'")
    ),
    "policy kind not a string": Case(
        over("[policies.odd]\nkind = []\n"), "policies.odd.kind", ("unknown policy kind",)
    ),
    "missing required policy field": Case(over(NEW_RAIL), "policies.new_rail.hours", ("missing", "new travel time")),
    "unknown policy field": Case(
        over(NEW_RAIL + "hour = 1.0\n"), "policies.new_rail.hour", ("unknown field for a rail", "did you mean 'hours'")
    ),
    "unknown field of a kind that takes 'an'": Case(
        over("[policies.subcenter_first_batch]\ncont = 3\n"),
        "policies.subcenter_first_batch.cont",
        ("unknown field for an institution_move policy", "did you mean 'count'"),
    ),
    "policy not a table": Case(over("[policies]\nnew_rail = 5\n"), "policies.new_rail", ("a table",)),
    "override changes the kind": Case(
        over('[policies.catalogue_2014]\nkind = "rail"\n'), "policies.catalogue_2014.kind", ("cannot change",)
    ),
    "run.end equal to run.start": Case(over("[run]\nend = 2014\n"), "run.end", ("after run.start",)),
    "run.end before run.start": Case(
        over("[run]\nstart = 2030\nend = 2020\n"), "run.end", ("after run.start", "2030", "2020")
    ),
    "run.start moved past inherited run.end": Case(over("[run]\nstart = 2040\n"), "run.start", ("2035",)),
    "run year out of range": Case(over("[run]\nend = 2060\n"), "run.end", ("out of range",)),
    "run.method unknown": Case(over('[run]\nmethod = "rk5"\n'), "run.method", ("'rk5'", "did you mean 'rk4'")),
    "unknown run key": Case(over("[run]\nsed = 3\n"), "run.sed", ("did you mean 'seed'",)),
    "negative seed": Case(over("[run]\nseed = -1\n"), "run.seed", ("an integer from 0",)),
    "seed beyond int64": Case(over("[run]\nseed = 100000000000000000000\n"), "run.seed", ("an integer from 0",)),
    "bad date string": Case(
        over('[policies.xiongan_founded]\nstart = "April 2017"\n'),
        "policies.xiongan_founded.start",
        ("'April 2017'", "2019-01-15"),
    ),
    "date with a time": Case(
        over("[policies.xiongan_founded]\nstart = 2017-04-01T10:00:00\n"),
        "policies.xiongan_founded.start",
        ("2017-04-01T10:00:00",),
    ),
    "month 13": Case(
        over('[policies.xiongan_founded]\nstart = "2017-13"\n'), "policies.xiongan_founded.start", ("'2017-13'",)
    ),
    "policy override not a boolean": Case(
        over('[policies.catalogue_2014]\nenabled = "no"\n'),
        "policies.catalogue_2014.enabled",
        ("true or false", "'no'"),
    ),
    "override of a policy that is not inherited": Case(
        over("[policies.catalouge_2014]\nenabled = false\n"),
        "policies.catalouge_2014.kind",
        ("no policy 'catalouge_2014' is inherited", "did you mean the inherited policy 'catalogue_2014'"),
    ),
    "policy without kind, nothing extended": Case(
        {"bad.toml": "[policies.rail]\ndate = 2025-01-01\n"}, "policies.rail.kind", ("give a kind",)
    ),
    "error in a parent names the parent": Case(
        {
            "base.toml": EXTENDS + "[policies.market_dispersal]\nclose_share = 1.2\n",
            "bad.toml": 'extends = "base.toml"\n[run]\nseed = 1\n',
        },
        "policies.market_dispersal.close_share",
        ("out of range",),
        culprit="base.toml",
    ),
    "error in a middle file of a chain": Case(
        {
            "base.toml": EXTENDS,
            "middle.toml": 'extends = "base.toml"\n[policies.catalogue_2014]\nenabled = "no"\n',
            "bad.toml": 'extends = "middle.toml"\n',
        },
        "policies.catalogue_2014.enabled",
        culprit="middle.toml",
    ),
}


def write(folder: Path, files: dict[str, str | bytes]) -> None:
    for name, text in files.items():
        if isinstance(text, bytes):
            (folder / name).write_bytes(text)
        else:
            (folder / name).write_text(text, encoding="utf-8")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, case: Case, folder: Path) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"expected one line on stderr, got {err!r}"
    line = lines[0]
    assert "Traceback" not in err
    assert line.startswith("error: ")
    culprit = folder / (case.culprit or case.target)
    assert culprit.name in line, f"{line!r} does not name {culprit.name}"
    assert str(culprit.resolve()) in line or str(culprit) in line, line
    if not case.skip_key:
        assert f": {case.key}:" in line or case.key in line, f"{line!r} does not name the key {case.key!r}"
    for text in case.says:
        assert text in line, f"{line!r} lacks {text!r}"


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_scenario_is_one_line_and_exit_2(
    case: Case, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, case.files)
    out_dir = tmp_path / "out"
    extra = ["--out", str(out_dir), "--no-plots"] if command == "run" else []
    code, out, err = cli(capsys, command, str(tmp_path / case.target), *extra)
    assert code == 2, err
    assert out == ""
    assert_one_line_error(err, case, tmp_path)
    assert not out_dir.exists(), "a bad scenario must not start a run"


def test_key_paths_name_the_key_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The message has the form 'error: FILE: KEY: what was expected'."""
    write(tmp_path, over("[firms]\npharma_share = 1.5\n"))
    code, _, err = cli(capsys, "check", str(tmp_path / "bad.toml"))
    assert code == 2
    assert err.startswith(f"error: {(tmp_path / 'bad.toml').resolve()}: firms.pharma_share: ")


def test_check_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Several files: each good one is reported ok and each bad one by its error, whatever the order."""
    write(tmp_path, over("[run]\nmethod = 'rk5'\n"))
    code, out, err = cli(capsys, "check", str(tmp_path / "bad.toml"), str(HISTORICAL))
    assert code == 2
    assert out.startswith(f"{HISTORICAL}: ok")
    assert len(err.splitlines()) == 1 and "run.method" in err


def test_independent_mistakes_in_one_file_are_reported_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per mistake, in file order, each naming the file and its key: one fix-and-rerun, not four."""
    write(
        tmp_path,
        over(
            "[population]\nbirth_rat = 0.01\nmigrant_mobility = -1\n[run]\nseed = -1\n"
            "[policies.x]\nkind = 'demolition'\nbogus = 3\n[policies.y]\nkind = 'nonsense'\n"
        ),
    )
    for command in ("check", "run"):
        code, out, err = cli(
            capsys, command, str(tmp_path / "bad.toml"), *(["--out", str(tmp_path / "o")] * (command == "run"))
        )
        assert code == 2 and out == ""
        keys = [line.split(": ")[2] for line in err.splitlines()]
        assert keys == [
            "population.birth_rat",
            "population.migrant_mobility",
            "run.seed",
            "policies.x.bogus",
            "policies.y.kind",
        ]
        assert all(line.startswith(f"error: {(tmp_path / 'bad.toml').resolve()}: ") for line in err.splitlines())
    assert not (tmp_path / "o").exists()


def test_a_mistake_in_a_base_file_stops_before_the_files_that_extend_it(tmp_path: Path) -> None:
    """The files after a bad one would report its consequences (an override of a policy that failed), not news."""
    from sim.errors import InputError

    write(
        tmp_path,
        {
            "base.toml": EXTENDS + "[policies.x]\nkind = 'nonsense'\n",
            "bad.toml": "extends = 'base.toml'\n[policies.x]\nenabled = false\n",
        },
    )
    with pytest.raises(InputError) as raised:
        load_scenario(tmp_path / "bad.toml")
    assert (
        not hasattr(raised.value, "errors")
        and raised.value.path.endswith("base.toml")
        and raised.value.key == "policies.x.kind"
    )


def test_missing_fields_of_two_policies_are_reported_together(tmp_path: Path) -> None:
    from sim.errors import InputErrors

    write(tmp_path, over("[policies.a]\nkind = 'rail'\n[policies.b]\nkind = 'rail'\n"))
    with pytest.raises(InputErrors) as raised:
        load_scenario(tmp_path / "bad.toml")
    keys = [error.key for error in raised.value.errors]
    assert {key.split(".")[1] for key in keys} == {"a", "b"} and all(
        "missing" in e.message for e in raised.value.errors
    )


def test_run_validates_every_scenario_before_running_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, over("[run]\nmethod = 'rk5'\n"))
    code, _, err = cli(capsys, "run", str(HISTORICAL), str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"))
    assert code == 2 and "run.method" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_check_accepts_every_shipped_scenario(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "check", str(path))
    assert code == 0, err
    assert err == ""
    assert out.startswith(f"{path}: ok")


def test_shipped_scenarios_exist() -> None:
    assert {p.name for p in SHIPPED} >= {"historical.toml", "counterfactual.toml"}


def test_override_only_policy_tables_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A [policies.NAME] table without kind overrides the inherited policy of that name."""
    write(
        tmp_path,
        over(
            "[policies.catalogue_2014]\nenabled = false\n"
            "[policies.manufacturing_dispersal]\nrate = 0.03\nend = 2022-12-31\n"
            '[policies.xiongan_founded]\nstart = "2018-01"\n'
        ),
    )
    code, out, err = cli(capsys, "check", str(tmp_path / "bad.toml"))
    assert code == 0, err
    scenario = load_scenario(tmp_path / "bad.toml")
    assert "catalogue_2014" not in scenario.policies
    dispersal = scenario.policies["manufacturing_dispersal"]
    assert dispersal["rate"] == 0.03
    assert dispersal["close_share"] == 0.6  # inherited
    assert dispersal["end"] == pytest.approx(2022 + (11 + 30 / 31) / 12)
    assert scenario.policies["xiongan_founded"]["start"] == 2018.0


def test_restating_the_same_kind_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, over('[policies.admission_control_2017]\nkind = "admission_control"\nstrength = 2.0\n'))
    policy = load_scenario(tmp_path / "bad.toml").policies["admission_control_2017"]
    assert policy["strength"] == 2.0 and policy["date"] == 2017.0


def test_copied_scenario_extending_by_relative_path(tmp_path: Path) -> None:
    """The shipped layout copied elsewhere: scenarios/ beside calibration/ (historical extends the fit)."""
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "calibration").mkdir()
    (tmp_path / "scenarios" / "historical.toml").write_text(HISTORICAL.read_text(encoding="utf-8"), encoding="utf-8")
    fitted = HISTORICAL.parent.parent / "calibration" / "fitted.toml"
    (tmp_path / "calibration" / "fitted.toml").write_text(fitted.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "scenarios" / "story.toml").write_text(
        'extends = "historical.toml"\n[run]\nend = 2030\n', encoding="utf-8"
    )
    scenario = load_scenario(tmp_path / "scenarios" / "story.toml")
    assert (scenario.start, scenario.end) == (2014, 2030)
    assert scenario.policies.keys() == load_scenario(HISTORICAL).policies.keys()


def test_policy_without_kind_names_the_file_that_wrote_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The parent is fine; the child adds a kind-less policy the parent does not have."""
    write(tmp_path, {"parent.toml": EXTENDS, "child.toml": 'extends = "parent.toml"\n[policies.brand_new]\nrate = 1\n'})
    code, _, err = cli(capsys, "check", str(tmp_path / "child.toml"))
    assert code == 2
    assert "child.toml" in err and "parent.toml" not in err
    assert "policies.brand_new.kind" in err and "give a kind" in err


def python_m_sim(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sim", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this tree's sim, not the editable install's
    )


def test_subprocess_bad_scenario(tmp_path: Path) -> None:
    """The real entry point: exit status 2, one line, no traceback."""
    write(tmp_path, over("[population]\nout_migraton_rate = 0.04\n"))
    result = python_m_sim("check", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "bad.toml" in lines[0] and "population.out_migraton_rate" in lines[0]
    assert "did you mean 'out_migration_rate'" in lines[0]



def test_zero_out_migration_rate_is_refused_without_a_warning(tmp_path: Path) -> None:
    """A rate of 0 is refused by name at set-up; numpy's divide-by-zero warning does not come first."""
    write(tmp_path, over("[population]\nout_migration_rate = 0\n"))
    result = python_m_sim("check", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: bad.toml: population.out_migration_rate: "
        "is 0 in bj_core, whose 2014 trend needs residents to move out"
    ]

def test_subprocess_check_shipped_scenarios() -> None:
    result = python_m_sim("check", *(str(p.relative_to(ROOT)) for p in SHIPPED), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == len(SHIPPED)


def test_a_file_name_that_cannot_name_a_run_folder_needs_a_name(tmp_path, capsys):
    path = tmp_path / "my story.toml"
    path.write_text(f'extends = "{(ROOT / "scenarios" / "historical.toml").as_posix()}"\n')
    assert main(["check", str(path)]) == 2
    assert "name" in capsys.readouterr().err
    path.write_text(path.read_text() + 'name = "my_story"\n')
    assert main(["check", str(path)]) == 0


def test_missing_fields_are_reported_with_the_file_s_other_mistakes(tmp_path: Path) -> None:
    """What only the merge shows (a policy's missing fields) comes in the same pass as the rest."""
    from sim.errors import InputErrors

    write(
        tmp_path,
        over(
            "[run]\nmethod = 'rk5'\n"
            "[policies.x]\nkind = 'rail'\ndate = '2025-13-01'\nfrom = 'bj_core'\n"
            "[policies.y]\nkind = 'rail'\ndate = 2025-01-01\nfrom = 'bj_core'\nto = 'xiongan'\n"
        ),
    )
    with pytest.raises(InputErrors) as raised:
        load_scenario(tmp_path / "bad.toml")
    keys = [error.key for error in raised.value.errors]
    assert keys == ["run.method", "policies.x.date", "policies.x.to", "policies.x.hours", "policies.y.hours"]
