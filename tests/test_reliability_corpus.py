"""A generated corpus of malformed scenario files: every one a clean error from `check` and `run`.

Each case is refused with exit status 2 and one line on stderr starting with ``error:``:
no traceback and no internal error, from ``check`` and from ``run`` (through ``sim.cli.main``,
in-process). The model's run loop is replaced by one that fails the test, so a case that is
accidentally valid shows up instead of running for seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sim.cli import main
from sim.policies import POLICY_KINDS
from sim.scenario import MAX_FILE_BYTES, PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
HISTORICAL = ROOT / "scenarios" / "historical.toml"
EXTENDS = f"extends = '{HISTORICAL.as_posix()}'\n"


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes] = field(default_factory=dict)
    target: str = "bad.toml"
    make: Callable[[Path], None] | None = None  # special files (FIFO, links)


def over(text: str) -> Case:
    return Case({"bad.toml": EXTENDS + text})


CORPUS: dict[str, Case] = {}

# -- [run] ---------------------------------------------------------------------------------------------
RUN_VALUES = {
    "start": ['"2014"', "2014.0", "true", "[2014]", "{ y = 2014 }", "2013", "2051", "2035", "2014-01-01", "nan"],
    "end": ['"2035"', "2035.5", "false", "[]", "2013", "2051", "2014", "-1", "99999999999999999999"],
    "seed": ['"7"', "1.5", "true", "-1", "2147483648", "99999999999999999999", "[1]", "inf"],
    "method": ['"RK4"', '"euler2"', "4", "true", '""', "[]"],
    "steps": ["12"],
}
for key, values in RUN_VALUES.items():
    for value in values:
        CORPUS[f"run.{key} = {value}"] = over(f"[run]\n{key} = {value}\n")
CORPUS["run not a table"] = over("run = 2014\n")

# -- parameters --------------------------------------------------------------------------------------
for group, table in PARAMETERS.items():
    for name, spec in table.items():
        low, high = spec["range"]
        CORPUS[f"{group}.{name} above range"] = over(f"[{group}]\n{name} = {high * 2 + 1}\n")
        CORPUS[f"{group}.{name} as text"] = over(f'[{group}]\n{name} = "{low}"\n')
        if spec["dims"]:
            CORPUS[f"{group}.{name} unknown label"] = over(f"[{group}]\n{name} = {{ nowhere = {low} }}\n")
        else:
            CORPUS[f"{group}.{name} as a list"] = over(f"[{group}]\n{name} = [{low}]\n")
CORPUS["parameter group not a table"] = over("population = 3\n")
CORPUS["unknown parameter group"] = over("[populations]\njobs_weight = 2\n")
CORPUS["out_migration_rate 0 (the fit cannot start)"] = over("[population]\nout_migration_rate = 0.0\n")
CORPUS["outside_in_migration 0"] = over("[population]\noutside_in_migration = 0\n")
CORPUS["workers beyond the workforce"] = over("[construction]\nworkforce_capacity = 10\n")
CORPUS["more institutions ordered than the origins hold"] = over(
    '[policies.many_hospitals]\nkind = "institution_move"\ninstitution = "hospital"\ncount = 600\n'
    'from = ["bj_core", "bj_central"]\nto = "xiongan"\nstart = 2026-01-01\nend = 2028-12-01\n'
)

# -- policies ------------------------------------------------------------------------------------------
WRONG = {
    "date": ['"2019/01"', "12:00:00", "2019-01-01T10:00:00", '"2019"', "2019", '"٢٠١٩-٠١"', '"2_019-01"'],
    "number": ['"x"', "true", "nan"],
    "integer": ["2.5", '"3"'],
    "region": ['"nowhere"', "1", '["xiongan"]'],
    "regions": ['["nowhere"]', "[]", '"bj_core"', "[1]"],
    "sector": ['"farming"', "[]"],
    "sectors": ['["farming"]', "[]"],
    "kind": ['"library"'],
    "bool": ['"yes"', "1"],
    "sector_table": ["0.5", "{ farming = 0.5 }", '{ manufacturing = "all" }'],
}
SAMPLE_POLICY = {
    "catalogue": "catalogue_2014",
    "dispersal": "market_dispersal",
    "admission_control": "admission_control_2017",
    "rail": "rail_beijing_xiongan_core",
    "incentive": "xiongan_founded",
    "institution_move": "subcenter_first_batch",
    "construction": "xiongan_major_projects",
    "demolition": "clean_up_campaign",
}
NEW_POLICY = {  # kinds the historical scenario does not use: a valid new policy to spoil one field of
    "land_release": 'kind = "land_release"\ndate = 2020-01-01\nhousing_build_rate = 0.05\nregions = ["bj_other"]\n',
    "housing_cap": 'kind = "housing_cap"\ndate = 2020-01-01\nregion = "bj_core"\npopulation = 1e6\n',
}
for kind, fields in POLICY_KINDS.items():
    policy = SAMPLE_POLICY.get(kind, f"new_{kind}")
    for name, spec in fields.items():
        for value in WRONG[spec.type][:2]:
            valid = "".join(
                line + "\n" for line in NEW_POLICY.get(kind, "").splitlines() if line.split(" =")[0] != name
            )
            CORPUS[f"{policy}.{name} = {value}"] = over(f"[policies.{policy}]\n{valid}{name} = {value}\n")
    CORPUS[f"{policy}: unknown field"] = over(f"[policies.{policy}]\nspeed = 3\n")
    CORPUS[f"{policy}: kind changed"] = over(
        f'[policies.{policy}]\nkind = "{"rail" if kind != "rail" else "catalogue"}"\n'
    )
    CORPUS[f"new {kind} without its fields"] = over(f'[policies.new_{kind}]\nkind = "{kind}"\n')
for value in WRONG["date"][2:]:
    CORPUS[f"date {value}"] = over(f"[policies.admission_control_2017]\ndate = {value}\n")
CORPUS["policy not a table"] = over("[policies]\ncatalogue_2014 = 3\n")
CORPUS["policies not a table"] = over("policies = 3\n")
CORPUS["enabled not a bool"] = over('[policies.catalogue_2014]\nenabled = "no"\n')
CORPUS["unknown kind"] = over('[policies.x]\nkind = "teleport"\n')
CORPUS["kind not a string"] = over("[policies.x]\nkind = 3\n")
CORPUS["override of nothing"] = over("[policies.catalogue_2099]\nenabled = false\n")
CORPUS["ends before it starts"] = over("[policies.market_dispersal]\nend = 2014-01-01\n")
CORPUS["rail to itself"] = over('[policies.rail_beijing_xiongan_core]\nto = "bj_core"\n')
CORPUS["institutions to their own region"] = over('[policies.subcenter_first_batch]\nto = "bj_core"\n')

# -- names -------------------------------------------------------------------------------------------
for label, name in {
    "comma": '"a,b"',
    "newline": '"a\\nb"',
    "tab": '"a\\tb"',
    "quote": '"a\'b"',
    "slash": '"a/b"',
    "dot-dot": '".."',
    "empty": '""',
    "300 characters": '"' + "n" * 300 + '"',
    "not a string": "3",
}.items():
    CORPUS[f"scenario name: {label}"] = over(f"name = {name}\n")
    CORPUS[f"policy name: {label}"] = over(f'[policies.{name}]\nkind = "rail"\n')
CORPUS["file name that cannot name a folder"] = Case({"bad name!.toml": EXTENDS}, target="bad name!.toml")
CORPUS["description not a string"] = over("description = 3\n")

# -- syntax and encoding -----------------------------------------------------------------------------
for label, text in {
    "unclosed table": "[run\nstart = 2014\n",
    "unclosed string": 'name = "abc\n',
    "duplicate key": "name = 'a'\nname = 'b'\n",
    "duplicate table": "[run]\nstart = 2014\n[run]\nend = 2030\n",
    "bad escape": 'name = "\\q"\n',
    "bare word": "name = historical\n",
    "NUL byte": "name = 'a\x00b'\n",
    "invalid date": "[policies.x]\ndate = 2019-13-45\n",
    "key without value": "name =\n",
    "only garbage": "}}}{{{",
}.items():
    CORPUS[f"syntax: {label}"] = Case({"bad.toml": text})
CORPUS["syntax: not UTF-8"] = Case({"bad.toml": b"name = '\xff\xfe'\n"})
CORPUS["syntax: UTF-16"] = Case({"bad.toml": "name = 'x'\n".encode("utf-16")})
CORPUS["syntax: binary"] = Case({"bad.toml": bytes(range(256))})
CORPUS["syntax: deep nesting"] = Case({"bad.toml": "x = " + "[" * 50_000 + "]" * 50_000 + "\n"})
CORPUS["unknown top-level key"] = over("speed = 3\n")

# -- files ---------------------------------------------------------------------------------------------
CORPUS["missing file"] = Case(target="absent.toml")
CORPUS["a directory"] = Case(make=lambda d: (d / "bad.toml").mkdir())
CORPUS["a FIFO"] = Case(make=lambda d: os.mkfifo(d / "bad.toml"))
CORPUS["/dev/zero"] = Case(target="/dev/zero")
CORPUS["/dev/null"] = Case(target="/dev/null")
CORPUS["a symlink loop"] = Case(make=lambda d: os.symlink(d / "bad.toml", d / "bad.toml"))
CORPUS["a dangling symlink"] = Case(make=lambda d: os.symlink(d / "nothing.toml", d / "bad.toml"))
CORPUS["too large"] = Case({"bad.toml": "#" * (MAX_FILE_BYTES + 1)})
CORPUS["extends missing"] = Case({"bad.toml": "extends = 'absent.toml'\n"})
CORPUS["extends a directory"] = Case({"bad.toml": "extends = '.'\n"})
CORPUS["extends a FIFO"] = Case({"bad.toml": "extends = 'pipe'\n"}, make=lambda d: os.mkfifo(d / "pipe"))
CORPUS["extends /dev/zero"] = Case({"bad.toml": "extends = '/dev/zero'\n"})
CORPUS["extends a symlink loop"] = Case(
    {"bad.toml": "extends = 'loop.toml'\n"}, make=lambda d: os.symlink(d / "loop.toml", d / "loop.toml")
)
CORPUS["extends itself"] = Case({"bad.toml": "extends = 'bad.toml'\n"})
CORPUS["extends not a string"] = Case({"bad.toml": "extends = ['a.toml']\n"})
CORPUS["extends a cycle"] = Case({"bad.toml": "extends = 'b.toml'\n", "b.toml": "extends = 'bad.toml'\n"})
CORPUS["extends too deep"] = Case(
    {"bad.toml": "extends = 'f99.toml'\n", **{f"f{i}.toml": f"extends = 'f{i - 1}.toml'\n" for i in range(1, 100)}}
    | {"f0.toml": EXTENDS}
)
CORPUS["extends a malformed file"] = Case({"bad.toml": "extends = 'b.toml'\n", "b.toml": "[run\n"})


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 150, len(CORPUS)


@pytest.fixture(autouse=True)
def no_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """A corpus case must be refused before the model runs."""

    def valid(*args, **kwargs):
        raise AssertionError("this corpus case is valid: the model started running")

    monkeypatch.setattr("sim.model.Model.run", valid)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_scenario_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    case = CORPUS[name]
    for file, text in case.files.items():
        path = tmp_path / file
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    if case.make is not None:
        case.make(tmp_path)
    target = case.target if case.target.startswith("/") else str(tmp_path / case.target)
    for argv in (["check", target], ["run", target, "--out", str(tmp_path / "out"), "--no-plots"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 2, f"{argv[0]}: exit {code}: {err}"
        lines = err.splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), f"{argv[0]}: {err!r}"
        assert err.endswith("\n") and len(lines) == err.count("\n"), "one line per mistake"
        assert "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder or lock is left"
