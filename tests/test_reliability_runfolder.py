"""Run folders are never a mix: a crash, a kill or a concurrent run leaves the old complete run or the new one.

The crash tests fork the test process and kill the child (SIGKILL, so no cleanup runs) just
before its k-th file-system operation, for every k of writing a run over an existing one;
the parent then checks the folder. ``verify_run_folder`` is the judge: the manifest parses as
strict JSON, lists exactly the files present, and every file has the SHA-256 it records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import sim
import sim.runfolder as runfolder
from sim.cli import main
from sim.errors import InputError
from sim.runfolder import StagedFolder, atomic_write, verify_run_folder, write_run

ROOT = Path(__file__).resolve().parents[1]
HISTORICAL = ROOT / "scenarios" / "historical.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def short(folder: Path, end: int = 2015, name: str = "short") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f"extends = '{HISTORICAL.as_posix()}'\nname = '{name}'\n[run]\nend = {end}\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory):
    """Two different short runs (seed 1 and seed 2) of one scenario, in memory."""
    scenario = sim.load_scenario(short(tmp_path_factory.mktemp("scenario")))
    return scenario, sim.run(scenario, 1), sim.run(scenario, 2)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, the manifest's timings aside (they differ run to run)."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    if "manifest.json" in files:
        manifest = json.loads(files["manifest.json"])
        manifest.pop("wall_time_s")
        files["manifest.json"] = json.dumps(manifest).encode()
    return files


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def old_run(two_runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run folder with plots (seed 1): what a crash must not corrupt."""
    scenario, first, _ = two_runs
    folder = tmp_path_factory.mktemp("old") / "run"
    write_run(first, scenario, folder, 1, 0.5, plots=True)
    return folder


# -- the basic guarantees ---------------------------------------------------------------------------
def test_a_written_run_folder_verifies_and_leaves_nothing_beside_it(two_runs, tmp_path: Path) -> None:
    scenario, first, _ = two_runs
    target = write_run(first, scenario, tmp_path / "run", 1, 0.1, plots=False)
    manifest = verify_run_folder(target)
    assert manifest["seed"] == 1 and "plots" not in {p.name for p in target.iterdir()}
    assert leftovers(tmp_path) == [], "no lock, staging or partial file is left"
    assert oct(target.stat().st_mode & 0o777) == oct(0o777 & ~runfolder._umask()), "the usual folder mode, not 0700"


def test_verify_catches_a_mix(old_run: Path, tmp_path: Path) -> None:
    """The judge bites: an extra file, a missing file or changed bytes are each reported."""
    for spoil in ("extra", "missing", "changed"):
        folder = tmp_path / spoil
        shutil.copytree(old_run, folder)
        if spoil == "extra":
            (folder / "plots" / "stale.png").write_bytes(b"x")
        elif spoil == "missing":
            (folder / "events.csv").unlink()
        else:
            (folder / "results.csv").write_text("time,value\n", encoding="utf-8")
        with pytest.raises((AssertionError, FileNotFoundError)):
            verify_run_folder(folder)


def test_an_existing_folder_is_refused_without_force(two_runs, old_run: Path, tmp_path: Path) -> None:
    scenario, _, second = two_runs
    target = tmp_path / "run"
    shutil.copytree(old_run, target)
    before = snapshot(target)
    with pytest.raises(InputError, match="exists; pass --force"):
        write_run(second, scenario, target, 2, 0.1, plots=False)
    assert snapshot(target) == before and leftovers(tmp_path) == []


def test_force_replaces_the_whole_folder(two_runs, old_run: Path, tmp_path: Path) -> None:
    """A rerun without plots over a run with plots leaves no stale PNG beside the new manifest."""
    scenario, _, second = two_runs
    target = tmp_path / "run"
    shutil.copytree(old_run, target)
    write_run(second, scenario, target, 2, 0.1, plots=False, force=True)
    manifest = verify_run_folder(target)
    assert manifest["seed"] == 2 and not (target / "plots").exists()
    assert leftovers(tmp_path) == []


def test_force_without_renameat2_also_replaces_whole(two_runs, old_run, tmp_path, monkeypatch) -> None:
    """The fallback (rename aside, rename in) where renameat2 is missing gives the same end state."""
    monkeypatch.setattr(runfolder, "_renameat2", None)
    scenario, _, second = two_runs
    target = tmp_path / "run"
    shutil.copytree(old_run, target)
    write_run(second, scenario, target, 2, 0.1, plots=False, force=True)
    assert verify_run_folder(target)["seed"] == 2 and leftovers(tmp_path) == []


def test_an_empty_existing_folder_is_used_without_force(two_runs, tmp_path: Path) -> None:
    scenario, first, _ = two_runs
    (tmp_path / "run").mkdir()
    write_run(first, scenario, tmp_path / "run", 1, 0.1, plots=False)
    assert verify_run_folder(tmp_path / "run")["seed"] == 1


# -- crashes at every step ----------------------------------------------------------------------------
OPERATIONS = (
    (os, "replace"),
    (os, "rename"),
    (os, "mkdir"),
    (os, "fsync"),
    (os, "chmod"),
    (os, "unlink"),
    (shutil, "rmtree"),
    (runfolder, "rename2"),
)


def instrument(monkeypatch: pytest.MonkeyPatch, at: int | None, action: Callable[[], None]) -> list[str]:
    """Count the file-system operations of a write; call ``action`` just before operation number ``at``."""
    calls: list[str] = []
    for owner, name in OPERATIONS:
        original = getattr(owner, name)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            if at is not None and len(calls) == at:
                action()
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)
    return calls


def crash_at(step: int | None, write: Callable[[], None]) -> int:
    """Run ``write`` in a forked child killed by SIGKILL before its ``step``-th operation; its wait status."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest cleanup, no finally blocks run after the kill
        try:
            patcher = pytest.MonkeyPatch()
            instrument(patcher, step, lambda: os.kill(os.getpid(), signal.SIGKILL))
            write()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status


@pytest.mark.parametrize(
    "fallback", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["renameat2", "rename-aside"]
)
def test_sigkill_at_every_step_of_writing_over_a_run_leaves_old_or_new(
    two_runs, old_run, tmp_path, monkeypatch, fallback
) -> None:
    scenario, _, second = two_runs
    if fallback:
        monkeypatch.setattr(runfolder, "_renameat2", None)
    target = tmp_path / "run"
    old = snapshot(old_run)

    def write() -> None:
        write_run(second, scenario, target, 2, 0.1, plots=False, force=True)

    shutil.copytree(old_run, target)
    count = pytest.MonkeyPatch()
    calls = instrument(count, None, lambda: None)
    write()
    count.undo()
    new = snapshot(target)
    steps = len(calls)
    assert steps > 15, "the write is made of many steps; each one is a crash point"
    outcomes = []
    for step in range(1, steps + 1):
        shutil.rmtree(target, ignore_errors=True)
        for entry in tmp_path.iterdir():
            if entry.name.startswith(".") and entry.is_dir():
                shutil.rmtree(entry)
        shutil.copytree(old_run, target)
        status = crash_at(step, write)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"step {step} was not reached"
        if not target.exists():
            # only the fallback has a gap: the old run is then kept whole beside the target
            assert fallback, f"step {step}: the target vanished"
            (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith(".run.old-")]
            assert snapshot(aside / "run") == old
            outcomes.append("old, set aside")
            continue
        state = snapshot(target)
        assert state in (old, new), f"step {step} ({calls[step - 1]}): the folder is a mix of two runs"
        verify_run_folder(target)
        outcomes.append("old" if state == old else "new")
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    # the next run cleans what the killed writers left and succeeds
    write_run(second, scenario, target, 2, 0.1, plots=False, force=True)
    assert snapshot(target) == new and leftovers(tmp_path) == [] or fallback


def test_an_exception_at_every_step_leaves_the_old_run_and_no_debris(two_runs, old_run, tmp_path, monkeypatch) -> None:
    """A failure that Python sees (disk full, permission) cleans up after itself."""
    scenario, _, second = two_runs
    target = tmp_path / "run"
    shutil.copytree(old_run, target)
    old = snapshot(target)
    count = pytest.MonkeyPatch()
    calls = instrument(count, None, lambda: None)
    write_run(second, scenario, tmp_path / "probe", 2, 0.1, plots=False)
    count.undo()
    new = snapshot(tmp_path / "probe")
    shutil.rmtree(tmp_path / "probe")

    def fail() -> None:
        raise OSError(28, "No space left on device")

    failed = 0
    for step in range(1, len(calls) + 1):
        with pytest.MonkeyPatch().context() as patcher:
            instrument(patcher, step, fail)
            try:
                write_run(second, scenario, target, 2, 0.1, plots=False, force=True)
            except (OSError, InputError):  # InputError: the staging folder could not be made
                failed += 1
                assert snapshot(target) == old, f"step {step} ({calls[step - 1]}) changed the old run"
                assert leftovers(tmp_path) == [], f"step {step} ({calls[step - 1]}) left {leftovers(tmp_path)}"
                continue
        # no error: the failure came after the new folder was in place (cleaning up is best effort)
        assert snapshot(target) == new, f"step {step} ({calls[step - 1]}): no error, yet not the new run"
        shutil.rmtree(target)
        shutil.copytree(old_run, target)
        for entry in tmp_path.iterdir():
            if entry.name.startswith("."):
                shutil.rmtree(entry)
    assert failed > 10


# -- the command line ---------------------------------------------------------------------------------
def test_cli_refuses_an_existing_folder_then_force_replaces_it(tmp_path: Path, capsys) -> None:
    scenario = short(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--seed", "1"]) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert main(["run", str(scenario), "--out", str(out), "--seed", "2", "--no-plots"]) == 2
    assert "--force" in capsys.readouterr().err and snapshot(out) == before
    assert main(["run", str(scenario), "--out", str(out), "--seed", "2", "--no-plots", "--force"]) == 0
    assert verify_run_folder(out)["seed"] == 2 and not (out / "plots").exists()


def test_the_readme_command_works_twice(tmp_path: Path, monkeypatch) -> None:
    """``python -m sim run scenarios/*.toml --force`` (README) run twice: each folder replaced whole."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m sim run scenarios/*.toml --force" in readme
    (tmp_path / "scenarios").mkdir()
    short(tmp_path / "scenarios", name="a")
    short(tmp_path / "scenarios", name="b")
    monkeypatch.chdir(tmp_path)
    for seed in ("1", "2"):
        assert main(["run", "scenarios/a.toml", "scenarios/b.toml", "--force", "--no-plots", "--seed", seed]) == 0
    for name in ("a", "b"):
        assert verify_run_folder(tmp_path / "runs" / name)["seed"] == 2
    assert leftovers(tmp_path / "runs") == []


def test_two_scenarios_of_one_name_cannot_share_a_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    first = short(tmp_path)
    (tmp_path / "copy").mkdir()
    second = short(tmp_path / "copy")
    refuse_running(monkeypatch)
    assert main(["run", str(first), str(second), "--out", str(tmp_path / "runs")]) == 2
    assert "same name" in capsys.readouterr().err and not (tmp_path / "runs").exists()


def test_force_never_replaces_a_folder_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    scenario = short(tmp_path)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("mine", encoding="utf-8")
    assert main(["run", str(scenario), "--out", str(notes), "--force"]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert (notes / "thesis.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_out_holding_the_input_scenario_is_refused(tmp_path: Path, capsys, force) -> None:
    """--out at the folder of the scenario (or of a file it extends) never overwrites the user's file."""
    folder = tmp_path / "story"
    folder.mkdir()
    base = short(folder, name="base")
    story = tmp_path / "story.toml"
    story.write_text("extends = 'story/base.toml'\nname = 'story'\n", encoding="utf-8")
    (folder / "manifest.json").write_text("{}", encoding="utf-8")  # even if it looks like a run folder
    before = base.read_bytes()
    assert main(["run", str(story), "--out", str(folder), *force]) == 2
    err = capsys.readouterr().err
    assert "holds the input file base.toml" in err and "Traceback" not in err
    assert base.read_bytes() == before


def refuse_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any model run fail loudly: these errors must come before the run."""

    def no_run(*args, **kwargs):
        raise AssertionError("the run started before the output folder was checked")

    monkeypatch.setattr("sim.results.run", no_run)


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda tmp: tmp / ("x" * 240), "folder name too long"),
        (lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "not a directory"),
        (lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "run", "not a directory"),
        (lambda tmp: os.symlink(tmp / "elsewhere", tmp / "link") or tmp / "link", "symbolic link"),
    ],
    ids=["name too long", "out is a file", "parent is a file", "out is a symlink"],
)
def test_bad_output_locations_fail_before_the_run(tmp_path, monkeypatch, capsys, make, says) -> None:
    scenario = short(tmp_path)
    out = make(tmp_path)
    refuse_running(monkeypatch)
    assert main(["run", str(scenario), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.splitlines()) == 1


def test_unwritable_output_fails_before_the_run(tmp_path, monkeypatch, capsys) -> None:
    scenario = short(tmp_path)
    refuse_running(monkeypatch)
    if os.geteuid() != 0:  # root writes anywhere: simulate the refusal instead
        (tmp_path / "ro").mkdir(mode=0o555)
    else:

        def refused(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("tempfile.mkdtemp", refused)
    assert main(["run", str(scenario), "--out", str(tmp_path / "ro" / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot write here: Permission denied" in err and len(err.splitlines()) == 1


def test_a_failing_run_leaves_no_folder(tmp_path, monkeypatch, capsys) -> None:
    scenario = short(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("sim.results.run", broken)
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


# -- concurrency --------------------------------------------------------------------------------------
def test_the_lock_refuses_a_second_writer(tmp_path: Path) -> None:
    first = StagedFolder(tmp_path / "run")
    with pytest.raises(InputError, match=f"another run \\(process {os.getpid()}\\) is writing"):
        StagedFolder(tmp_path / "run")
    first.discard()
    StagedFolder(tmp_path / "run").discard()  # released: the next writer gets it
    assert leftovers(tmp_path) == []


def test_concurrent_atomic_writes_never_mix(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    contents = [(f"{i}," * 20000 + "\n").encode() for i in range(4)]

    def writer(data: bytes) -> None:
        for _ in range(20):
            atomic_write(path, data)

    threads = [threading.Thread(target=writer, args=(data,)) for data in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_bytes() in contents and leftovers(tmp_path) == []


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_two_concurrent_runs_into_one_folder(tmp_path: Path, force) -> None:
    """One complete, consistent folder; the other run either replaced it whole or failed cleanly."""
    scenario = short(tmp_path)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "sim", "run", str(scenario), "--out", "out", "--seed", str(seed), "--no-plots"]
            + force,
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]) if force else codes == [0, 2], results
    for code, err in results:
        assert "Traceback" not in err and "internal error" not in err
        if code == 2:
            assert ("another run" in err or "exists" in err) and len(err.splitlines()) == 1, err
    assert verify_run_folder(tmp_path / "out")["seed"] in (1, 2)
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_sigkill_of_a_real_run_over_an_existing_one(tmp_path: Path) -> None:
    """``python -m sim run --force`` killed at a few moments: the old run or the new, complete."""
    scenario = short(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out), "--seed", "1"]) == 0
    old = snapshot(out)
    seen = set()
    for delay in (0.5, 1.5, 60):
        run = subprocess.Popen(
            [sys.executable, "-m", "sim", "run", str(scenario), "--out", str(out), "--seed", "2", "--force"],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            run.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            run.send_signal(signal.SIGKILL)
            run.wait()
        manifest = verify_run_folder(out)
        seen.add("old" if snapshot(out) == old else "new")
        assert manifest["seed"] == (1 if snapshot(out) == old else 2)
        if "new" in seen:
            break
        time.sleep(0.05)
    assert "new" in seen, "the run that was left alone completed"
