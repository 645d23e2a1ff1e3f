"""Inputs that used to hang, crash or slip through (issue 8, findings 4-7), each now a clean error.

Names that reach files, meaning the schema alone cannot see, input files that are not plain
files, and the Python API's arguments: each case is refused with an ``InputError`` naming the
file (or the function) and the key, before any run starts.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.cli import main
from sim.errors import InputError
from sim.runfolder import events_csv, verify_run_folder, write_run
from sim.scenario import MAX_EXTENDS, MAX_FILE_BYTES, load_scenario

ROOT = Path(__file__).resolve().parents[1]
HISTORICAL = ROOT / "scenarios" / "historical.toml"
EXTENDS = f"extends = '{HISTORICAL.as_posix()}'\n"


def refused(path: Path, key: str, *says: str) -> InputError:
    """Loading ``path`` fails with one line naming the file, the key and what was said."""
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    error = caught.value
    assert error.key == key, str(error)
    assert Path(error.path).name == path.name or key == "extends", str(error)
    for text in says:
        assert text in str(error), str(error)
    assert "\n" not in str(error)
    return error


def write(folder: Path, text: str, name: str = "bad.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- names that reach files ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ['"a,b"', '"a\\"b"', '"a\\tb"', '"a\\nb"', '"a b"', '"政策"', '".hidden"', '"-dash"', '"x' + "y" * 100 + '"'],
    ids=["comma", "quote", "tab", "newline", "space", "non-ASCII", "leading dot", "leading dash", "too long"],
)
def test_policy_names_are_limited_to_a_safe_pattern(tmp_path, name) -> None:
    path = write(
        tmp_path, EXTENDS + f'[policies.{name}]\nkind = "admission_control"\ndate = 2020-01-01\nstrength = 1\n'
    )
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in json.loads(name))
    error = refused(path, f"policies.{escaped}", "bad policy name", "events.csv")
    assert "letters, digits" in str(error)


def test_a_long_scenario_name_is_refused_at_load(tmp_path) -> None:
    """Finding 4: a 300-character name failed only when the run folder was created, after the run."""
    refused(write(tmp_path, EXTENDS + f'name = "{"n" * 300}"\n'), "name", "1 to 100 letters")
    long_stem = write(tmp_path, EXTENDS, name="s" * 150 + ".toml")
    refused(long_stem, "name", "cannot name a run folder")


def test_events_csv_quotes_what_needs_quoting() -> None:
    events = '2\tcatalogue_2014\tcatalogue in force\n14.5\tproject #1\tstarts, with 3 "teams"'
    rows = list(csv.reader(io.StringIO(events_csv(events, 2014))))
    assert rows == [
        ["month", "time", "policy", "action"],
        ["2", "2014.1667", "catalogue_2014", "catalogue in force"],
        ["14.5", "2015.2083", "project #1", 'starts, with 3 "teams"'],
    ]


# -- meaning --------------------------------------------------------------------------------------------
RAIL = '[policies.loop]\nkind = "rail"\ndate = 2025-01-01\nfrom = "xiongan"\nto = "xiongan"\nhours = 0.5\n'
MOVE = (
    '[policies.stay]\nkind = "institution_move"\nstart = 2020-01-01\ninstitution = "school"\ncount = 3\n'
    'from = ["bj_core", "xiongan"]\nto = "xiongan"\n'
)


@pytest.mark.parametrize(
    "text, key, says",
    [
        (RAIL, "policies.loop.to", "same region as from"),
        (MOVE, "policies.stay.to", "also in from"),
        ("[policies.market_dispersal]\ndestinations = []\n", "policies.market_dispersal.destinations", "empty list"),
        ("[policies.market_dispersal]\nregions = []\n", "policies.market_dispersal.regions", "empty list"),
        ("[policies.subcenter_first_batch]\nfrom = []\n", "policies.subcenter_first_batch.from", "empty list"),
        (
            '[policies.i]\nkind = "incentive"\nstart = 2020-01-01\nregion = "xiongan"\nutility = 1\nsectors = []\n',
            "policies.i.sectors",
            "empty list",
        ),
        ('[policies.xiongan_founded]\nstart = "٢٠١٧-٠٤"\n', "policies.xiongan_founded.start", "YYYY-MM"),
        ('[policies.xiongan_founded]\nstart = "2_017-04"\n', "policies.xiongan_founded.start", "YYYY-MM"),
        ('[policies.xiongan_founded]\nstart = "2017-0_4"\n', "policies.xiongan_founded.start", "YYYY-MM"),
        ('[policies.xiongan_founded]\nstart = "２０１７-04"\n', "policies.xiongan_founded.start", "YYYY-MM"),
        ('[policies.xiongan_founded]\nstart = " 2017-04"\n', "policies.xiongan_founded.start", "YYYY-MM"),
    ],
    ids=[
        "rail to itself",
        "institutions to their own region",
        "no destinations",
        "no regions",
        "no origins",
        "no sectors",
        "Arabic-Indic digits",
        "underscore in year",
        "underscore in month",
        "full-width digits",
        "padded date",
    ],
)
def test_semantic_errors_name_file_and_key(tmp_path, text, key, says) -> None:
    refused(write(tmp_path, EXTENDS + text), key, says)


def test_rail_to_itself_made_by_an_override_names_the_overriding_file(tmp_path) -> None:
    write(tmp_path, EXTENDS + RAIL.replace('to = "xiongan"', 'to = "bj_core"'), name="parent.toml")
    child = write(tmp_path, 'extends = "parent.toml"\n[policies.loop]\nto = "xiongan"\n', name="child.toml")
    refused(child, "policies.loop.to", "same region as from")


def test_a_plain_year_month_string_still_works(tmp_path) -> None:
    path = write(tmp_path, EXTENDS + '[policies.xiongan_founded]\nstart = "2017-04"\n')
    assert load_scenario(path).policies["xiongan_founded"]["start"] == pytest.approx(2017.25)


# -- input files ----------------------------------------------------------------------------------------
def within(seconds: float, function, *args):
    """Call ``function`` in a thread; fail (instead of hanging the suite) if it takes longer."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(function(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it blocks"
    return result[0]


def test_a_fifo_is_refused_without_blocking(tmp_path, capsys) -> None:
    """Finding 6: a FIFO as the scenario blocked forever."""
    fifo = tmp_path / "story.toml"
    os.mkfifo(fifo)
    assert within(10, main, ["check", str(fifo)]) == 2
    assert "special file" in capsys.readouterr().err
    extends = write(tmp_path, 'extends = "story.toml"\n', name="child.toml")
    assert within(10, main, ["check", str(extends)]) == 2
    assert "extends: expected a TOML file, got 'story.toml' (not a file)" in capsys.readouterr().err


def test_dev_zero_is_refused(capsys) -> None:
    assert within(10, main, ["check", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert "special file" in err and len(err.splitlines()) == 1


def test_a_symlink_loop_is_a_clean_error(tmp_path, capsys) -> None:
    """Finding 6: a symlink loop as the scenario path was an internal error."""
    os.symlink(tmp_path / "b.toml", tmp_path / "a.toml")
    os.symlink(tmp_path / "a.toml", tmp_path / "b.toml")
    for path in (tmp_path / "a.toml", write(tmp_path, 'extends = "a.toml"\n', name="c.toml")):
        for command in ("check", "run"):
            assert main([command, str(path)]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and "internal error" not in err and len(err.splitlines()) == 1


def test_a_huge_file_is_refused(tmp_path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("# padding\n" * (MAX_FILE_BYTES // 10 + 1), encoding="utf-8")
    refused(path, "", "file too large")


def test_a_long_extends_chain_is_refused(tmp_path) -> None:
    """Finding 6: a chain of 1,200 files was a RecursionError."""
    write(tmp_path, EXTENDS, name="f0.toml")
    for i in range(1, 1200):
        write(tmp_path, f'extends = "f{i - 1}.toml"\n', name=f"f{i}.toml")
    with pytest.raises(InputError, match=f"extends chain too long: more than {MAX_EXTENDS} files"):
        load_scenario(tmp_path / "f1199.toml")
    # the longest chain that loads: f0 extends historical.toml, which extends calibration/fitted.toml
    assert load_scenario(tmp_path / f"f{MAX_EXTENDS - 3}.toml").name == f"f{MAX_EXTENDS - 3}"
    with pytest.raises(InputError, match="extends chain too long"):
        load_scenario(tmp_path / f"f{MAX_EXTENDS - 2}.toml")


def test_deeply_nested_toml_is_a_clean_error(tmp_path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(InputError):
        load_scenario(path)


# -- the Python API -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short(tmp_path_factory) -> sim.Scenario:
    path = tmp_path_factory.mktemp("api") / "short.toml"
    path.write_text(EXTENDS + "name = 'short'\n[run]\nend = 2015\n", encoding="utf-8")
    return sim.load_scenario(path)


@pytest.fixture
def no_model(monkeypatch) -> None:
    """Argument errors must come before any work: building a model fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the model was built before the arguments were checked")

    monkeypatch.setattr("sim.results.Model", forbidden)


BAD_SEEDS = [-1, 2**31, 1.5, "7", True, None.__class__, np.float64(3.0), 10**30]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=[repr(s) for s in BAD_SEEDS])
def test_run_refuses_bad_seeds(short, no_model, seed) -> None:
    with pytest.raises(InputError, match=r"sim\.run: seed: expected an integer from 0 to 2147483647"):
        sim.run(short, seed)


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=[repr(s) for s in BAD_SEEDS])
def test_run_batch_refuses_bad_seeds(short, no_model, seed) -> None:
    with pytest.raises(InputError, match=r"seeds\[1\]: expected an integer"):
        sim.run_batch(short, [1, seed])


@pytest.mark.parametrize(
    "seeds, says",
    [
        ([], "at least one seed"),
        ((s for s in [1, 2]), "a list of integer seeds"),
        ("12", "a list of integer seeds"),
        (7, "a list of integer seeds"),
        ({1, 2}, "a list of integer seeds"),
        ({1: 2}, "a list of integer seeds"),
    ],
    ids=["empty", "generator", "string", "int", "set", "dict"],
)
def test_run_batch_refuses_bad_seed_lists(short, no_model, seeds, says) -> None:
    with pytest.raises(InputError, match=says):
        sim.run_batch(short, seeds)


@pytest.mark.parametrize(
    "overrides, key, says",
    [
        ({"population.jobs_weight": 2.0}, "overrides", "a list of mappings"),
        ("population.jobs_weight", "overrides", "a list of mappings"),
        ([{}], "overrides", "one mapping per seed"),
        ([{}, 3], "overrides[1]", "a mapping"),
        ([{}, {"population.jobs_weight": "2"}], "run 1: population.jobs_weight", "a number"),
        ([{}, {"population.jobs_weight": True}], "run 1: population.jobs_weight", "a number"),
        ([{}, {"population.jobs_weight": None}], "run 1: population.jobs_weight", "a number"),
        ([{}, {"housing.max_build_rate": {"bj_core": 0.1}}], "run 1: housing.max_build_rate", "a number"),
        ([{}, {"housing.max_build_rate": [[0.1]]}], "run 1: housing.max_build_rate", "a number"),
        ([{}, {3: 1.0}], "overrides[1]", "'group.name' keys"),
    ],
    ids=["dict", "string", "too few", "not a mapping", "string value", "bool", "None", "table", "nested", "int key"],
)
def test_run_batch_refuses_bad_overrides(short, no_model, overrides, key, says) -> None:
    with pytest.raises(InputError) as caught:
        sim.run_batch(short, [1, 2], overrides)
    assert caught.value.key == key and says in str(caught.value)


def test_the_api_refuses_what_is_not_a_scenario(no_model) -> None:
    with pytest.raises(InputError, match="expected a sim.Scenario"):
        sim.run(str(HISTORICAL))
    with pytest.raises(InputError, match="progress: expected a function"):
        sim.run_batch(load_scenario(HISTORICAL), [1], progress=3)


def test_numpy_integers_are_seeds(short) -> None:
    batch = sim.run_batch(short, np.array([1, 2]), [{"population.jobs_weight": np.float64(2.5)}, {}])
    assert list(batch.seed.values) == [1, 2]


@pytest.fixture(scope="module")
def one_run(short):
    return sim.run(short, 1)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"wall_time": float("nan")}, "wall_time"),
        ({"wall_time": float("inf")}, "wall_time"),
        ({"wall_time": -1.0}, "wall_time"),
        ({"wall_time": "1"}, "wall_time"),
        ({"seed": -3}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"dataset": {}}, "dataset"),
        ({"scenario": "historical.toml"}, "scenario"),
        ({"figures": ["population_by_regions"]}, "figures"),
        ({"figures": "population_by_region"}, "figures"),
    ],
    ids=[
        "nan time",
        "inf time",
        "negative time",
        "str time",
        "negative seed",
        "float seed",
        "dict",
        "path",
        "unknown figure",
        "figure name, not a list",
    ],
)
def test_write_run_checks_its_arguments_before_writing(short, one_run, tmp_path, change, key) -> None:
    """Finding 7: write_run wrote NaN into manifest.json (not strict JSON)."""
    arguments = {"dataset": one_run, "scenario": short, "seed": 1, "wall_time": 1.0, **change}
    with pytest.raises(InputError) as caught:
        write_run(folder=tmp_path / "out", plots=False, **arguments)
    assert caught.value.key == key
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_write_run_refuses_a_batch(short, tmp_path) -> None:
    batch = sim.run_batch(short, [1, 2])
    with pytest.raises(InputError, match="a batch with a run dimension"):
        write_run(batch, short, tmp_path / "out", 1, 1.0, plots=False)


def test_the_manifest_is_strict_json(short, one_run, tmp_path) -> None:
    folder = write_run(one_run, short, tmp_path / "out", 1, 1.0, plots=False)
    manifest = verify_run_folder(folder)  # parses with NaN and Infinity refused
    assert manifest["wall_time_s"]["run"] == 1.0
