"""Output folders that are never half-written, and the run folder written with them.

A folder on disk is either absent, a complete run (everything its manifest lists, with those
bytes) or the previous complete run; never a mix. The primitives, for every writer (the run
folder here; a sweep or calibration folder that resumes in place from a journal):

- ``atomic_write(path, data)``: a file appears complete or not at all (a unique temporary
  sibling, fsync, rename), so concurrent writers never interleave and a crash leaves no
  half-written file under the real name;
- ``FolderLock(target)``: one writer per target folder at a time (``flock`` on a hidden
  sibling ``.NAME.lock``, released by the kernel if the process dies);
- ``StagedFolder(target, force)``: checks the target and takes its lock before any work,
  then collects the new content in a fresh hidden sibling (``.NAME.tmp-XXXXXXXX``) and
  ``publish()`` puts it in place in one rename: ``renameat2(RENAME_NOREPLACE)`` for a new
  folder, ``renameat2(RENAME_EXCHANGE)`` to replace an existing one (``--force``), then the
  old content (now at the temporary name) is deleted. Where ``renameat2`` is missing (not
  Linux, or a file system without it) the old folder is renamed aside before the new one is
  renamed in; a crash between those two renames leaves no folder at the target and the old
  one, complete, at ``.NAME.old-XXXXXXXX`` (docs/reliability.md).

The run folder holds results.nc, results.csv, scenario.toml, events.csv, plots/ and
manifest.json, written last, which lists every file with its SHA-256.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import hashlib
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sim.errors import InputError

MANIFEST = "manifest.json"
_TEMP_SUFFIX = ".tmp-"  # staging folders: .NAME.tmp-XXXXXXXX (8 characters from tempfile)
_SPARE_NAME_BYTES = 24  # room for the hidden prefix and temporary suffix around a folder name


# -- renameat2 through ctypes (Linux) --------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _load_renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc before 2.28, or another C library
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def rename2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2``: True when done; False where the system or file system does not support it.

    Raises OSError for real failures (EEXIST with RENAME_NOREPLACE, EACCES, ...).
    """
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


# -- files ----------------------------------------------------------------------------------------
def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system can open a directory)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], None]) -> Path:
    """Write a file so that it appears under ``path`` complete or not at all.

    ``data`` is the content (str as UTF-8) or a function that writes a given path. The file is
    written to a unique temporary sibling, flushed to disk and renamed over ``path``, so a
    crash leaves at most a hidden ``.NAME.XXXX.partial`` and concurrent writers never mix bytes.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    partial = Path(name)
    try:
        if callable(data):
            os.close(handle)
            data(partial)
        else:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
        with open(partial, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual mode
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the lock -------------------------------------------------------------------------------------
class FolderLock:
    """An exclusive, non-blocking lock on a target folder (held by this process until released).

    The lock is ``flock`` on ``.NAME.lock`` beside the folder: the kernel drops it when the
    process dies, so a killed run never leaves the folder locked. The file is removed on
    release; a waiter that locked a file already removed retries on the new one.
    """

    def __init__(self, target: str | Path, key: str = "--out") -> None:
        self.target, self.key = Path(target), key
        self.path = self.target.with_name(f".{self.target.name}.lock")
        self._handle: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        while True:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(handle, 64).decode("ascii", "replace").strip() or "?"
                os.close(handle)
                raise InputError(
                    self.target, self.key, f"another run (process {holder}) is writing this folder; try again later"
                ) from None
            try:
                same = os.fstat(handle).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(handle, 0)
                os.write(handle, f"{os.getpid()}\n".encode())
                self._handle = handle
                return self
            os.close(handle)  # the holder removed this file as we locked it: lock the new one

    def release(self) -> None:
        if self._handle is not None:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass  # a lock file left behind is harmless: the next writer locks it again
            os.close(self._handle)
            self._handle = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_quietly(folder: Path) -> None:
    """Delete an old run after the new one is in place; what fails here, the next writer removes."""
    try:
        shutil.rmtree(folder)
    except OSError:
        pass


# -- the staged folder ----------------------------------------------------------------------------
def _name_max(folder: Path) -> int:
    for parent in (folder, *folder.parents):
        if parent.is_dir():
            try:
                return os.pathconf(parent, "PC_NAME_MAX")
            except (OSError, ValueError, AttributeError):
                break
    return 255


def check_target(
    target: str | Path, force: bool = False, protect: Iterable[str | Path] = (), key: str = "--out"
) -> Path:
    """Check an output folder before any work; return it as an absolute path.

    Refused: a path whose parent is a file, a target that is a file or a symbolic link, a
    name too long for the file system, an existing non-empty folder unless ``force``, with
    ``force`` a folder that is not a run folder (no manifest.json), and any folder that
    holds one of the ``protect`` files (the inputs of the run).
    """
    target = Path(os.path.abspath(target))
    if not target.name or target == target.parent:
        raise InputError(target, key, "expected a folder to create, not the root of the file system")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(parent, key, "exists and is not a directory; expected a run folder")
    limit = _name_max(target.parent)
    if len(os.fsencode(target.name)) + _SPARE_NAME_BYTES > limit:
        raise InputError(
            target, key, f"folder name too long: at most {limit - _SPARE_NAME_BYTES} bytes on this file system"
        )
    for item in protect:
        source = Path(item).resolve()
        if source == target.resolve() or target.resolve() in source.parents:
            raise InputError(target, key, f"holds the input file {source.name}; choose another output folder")
    if target.is_symlink():
        raise InputError(target, key, "is a symbolic link; expected a run folder or a new folder name")
    if target.exists():
        if not target.is_dir():
            raise InputError(target, key, "exists and is not a directory; expected a run folder")
        if any(target.iterdir()):
            if not force:
                raise InputError(target, key, "exists; pass --force to replace the whole folder")
            if not (target / MANIFEST).is_file():
                raise InputError(
                    target, key, f"exists and is not a run folder (no {MANIFEST}); --force replaces only run folders"
                )
    return target


class StagedFolder:
    """A folder written beside its target and put in place whole (``publish``) or not at all.

    Construction checks the target (``check_target``), creates missing parents, takes the
    target's lock, removes temporary folders that killed writers left for this target and
    creates the fresh staging folder ``path``: an unwritable, full or invalid location fails
    here, before any computing. ``discard()`` (or leaving a ``with`` block by an exception)
    deletes the staging folder and leaves the target as it was.
    """

    def __init__(
        self, target: str | Path, force: bool = False, protect: Iterable[str | Path] = (), key: str = "--out"
    ) -> None:
        self.target, self.force, self.key = check_target(target, force, protect, key), force, key
        self.published = False
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.lock = FolderLock(self.target, key).acquire()
        except OSError as error:
            raise InputError(self.target.parent, key, f"cannot write here: {error.strerror or error}") from None
        self.path: Path | None = None  # the staging folder, once made
        try:
            check_target(self.target, force, protect, key)  # again under the lock: another run may have finished
            self._remove_leftovers()
            self.path = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}{_TEMP_SUFFIX}"))
            os.chmod(self.path, 0o777 & ~_umask())  # mkdtemp makes 0700; the run folder gets the usual mode
        except OSError as error:
            self.discard()
            raise InputError(self.target.parent, key, f"cannot write here: {error.strerror or error}") from None
        except BaseException:
            self.discard()
            raise

    def _remove_leftovers(self) -> None:
        """Staging and set-aside folders of this target that a killed writer left (we hold the lock)."""
        prefixes = (f".{self.target.name}{_TEMP_SUFFIX}", f".{self.target.name}.old-")
        for entry in self.target.parent.iterdir():
            for prefix in prefixes:
                rest = entry.name[len(prefix) :]
                if entry.name.startswith(prefix) and len(rest) == 8 and "." not in rest and entry.is_dir():
                    if prefix.endswith(".old-") and not self.target.exists():
                        continue  # the only copy of a run whose replacement was interrupted: keep it
                    shutil.rmtree(entry, ignore_errors=True)

    def publish(self) -> Path:
        """Put the staged folder in place (the manifest must already be in it) and release the lock."""
        assert self.path is not None, "publish() of a folder that was never staged"
        try:
            _fsync_folder(self.path)
            if self.target.exists() and not (self.force or not any(self.target.iterdir())):
                raise InputError(self.target, self.key, "exists; pass --force to replace the whole folder")
            if not self.target.exists():
                if not rename2(self.path, self.target, _RENAME_NOREPLACE):
                    os.rename(self.path, self.target)  # under our lock, nobody else creates the target
                old = self.target
                self.published = True
            elif rename2(self.path, self.target, _RENAME_EXCHANGE):
                self.published = True
                old = self.path  # the old content, now at the temporary name
            else:
                old = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}.old-"))
                os.rename(self.target, old / "run")
                os.rename(self.path, self.target)
                self.published = True
            if self.target != old:
                _remove_quietly(old)
            _fsync_folder(self.target.parent)
        finally:
            self.lock.release()
        return self.target

    def discard(self) -> None:
        """Delete the staging folder unless published; release the lock (either way)."""
        if not self.published and self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        self.lock.release()

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        if kind is not None:
            self.discard()


# -- the run folder -------------------------------------------------------------------------------
def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _toml_ready(value: Any) -> Any:
    """The resolved scenario as TOML can hold it (no None, no numpy scalars)."""
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_netcdf(dataset: xr.Dataset, path: Path) -> None:
    """NetCDF 3 via scipy: no extra C library, and byte-identical for identical results."""
    atomic_write(path, lambda p: dataset.to_netcdf(p, engine="scipy", format="NETCDF3_64BIT"))


def events_csv(events: str, start: int) -> str:
    """The event log as CSV through the csv module (a name may hold any character)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["month", "time", "policy", "action"])
    for line in events.splitlines():
        month, name, action = line.split("\t", 2)
        writer.writerow([f"{float(month):g}", f"{start + float(month) / 12:.4f}", name, action])
    return buffer.getvalue()


def _check_write_args(dataset: Any, scenario: Any, seed: Any, wall_time: Any, figures: Any) -> None:
    from sim.plots import ALL_FIGURES
    from sim.scenario import Scenario, check_seed

    if figures is not None and (
        isinstance(figures, str) or not isinstance(figures, Sequence) or not set(figures) <= set(ALL_FIGURES)
    ):
        raise InputError(
            "write_run", "figures", f"expected a list of figure names from {', '.join(ALL_FIGURES)}, got {figures!r}"
        )

    if not isinstance(dataset, xr.Dataset):
        raise InputError(
            "write_run", "dataset", f"expected the xarray.Dataset of sim.run, got {type(dataset).__name__}"
        )
    if "run" in dataset.dims:
        raise InputError("write_run", "dataset", "expected one run (sim.run), got a batch with a run dimension")
    if not isinstance(scenario, Scenario):
        raise InputError("write_run", "scenario", f"expected a sim.Scenario, got {type(scenario).__name__}")
    check_seed(seed, "write_run", "seed")
    ok = isinstance(wall_time, int | float) and not isinstance(wall_time, bool) and math.isfinite(wall_time)
    if not ok or wall_time < 0:
        raise InputError("write_run", "wall_time", f"expected a finite number of seconds >= 0, got {wall_time!r}")


def write_run(
    dataset: xr.Dataset,
    scenario: Any,
    folder: str | Path | StagedFolder,
    seed: int,
    wall_time: float,
    plots: bool = True,
    force: bool = False,
    figure_formats: tuple[str, ...] = ("png",),
    figures: Sequence[str] | None = None,
) -> Path:
    """Write a complete run folder and return its path.

    ``folder`` is the target path (checked and locked now; ``force`` replaces an existing run
    folder whole) or a ``StagedFolder`` prepared before the run. The folder appears only
    when every file, the manifest last, is written. With ``plots``, the ``figures`` named
    (``sim.plots``; by default ``RUN_FIGURES``, the two to open first) are written in ``figure_formats``.
    """
    from sim import __version__
    from sim.results import write_tidy_csv

    _check_write_args(dataset, scenario, seed, wall_time, figures)
    staged = folder if isinstance(folder, StagedFolder) else StagedFolder(folder, force, key="folder")
    with staged:
        root = staged.path
        events = dataset.attrs.get("events", "")
        stored = dataset.copy()
        stored.attrs.pop("events", None)
        write_netcdf(stored, root / "results.nc")
        atomic_write(root / "results.csv", lambda p: write_tidy_csv(stored, p))
        import tomli_w

        atomic_write(root / "scenario.toml", tomli_w.dumps(_toml_ready(scenario.document)))
        atomic_write(root / "events.csv", events_csv(events, scenario.start))
        started = time.perf_counter()
        drawn: list[str] = []
        if plots:
            from sim.plots import RUN_FIGURES, save_all

            (root / "plots").mkdir()
            names = RUN_FIGURES if figures is None else figures
            drawn = [
                str(p.relative_to(root).as_posix()) for p in save_all(stored, root / "plots", figure_formats, names)
            ]
        files = ["results.nc", "results.csv", "scenario.toml", "events.csv", *drawn]
        manifest = {
            "scenario": scenario.name,
            "scenario_file": str(scenario.path),
            "config_hash": scenario.config_hash,
            "seed": int(seed),
            "package_version": __version__,
            "git_commit": _git_commit(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "xarray": xr.__version__,
            "wall_time_s": {"run": round(float(wall_time), 3), "plots": round(time.perf_counter() - started, 3)},
            "files": files,
            "sha256": {name: sha256(root / name) for name in files},
        }
        atomic_write(root / MANIFEST, json.dumps(manifest, indent=2, allow_nan=False) + "\n")
        return staged.publish()


def verify_run_folder(folder: str | Path) -> dict[str, Any]:
    """The manifest of a complete, consistent run folder; AssertionError naming what is wrong.

    Complete and consistent: the manifest parses as strict JSON, lists exactly the files
    present (no more, no fewer) and each has the SHA-256 the manifest records.
    """
    folder = Path(folder)
    text = (folder / MANIFEST).read_text(encoding="utf-8")
    manifest = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    if present != set(manifest["files"]):
        raise AssertionError(f"{folder}: files {sorted(present ^ set(manifest['files']))} differ from the manifest")
    for name, digest in manifest["sha256"].items():
        if sha256(folder / name) != digest:
            raise AssertionError(f"{folder}: {name} does not match its SHA-256 in the manifest")
    return manifest


__all__ = [
    "MANIFEST",
    "FolderLock",
    "StagedFolder",
    "atomic_write",
    "check_target",
    "events_csv",
    "sha256",
    "verify_run_folder",
    "write_netcdf",
    "write_run",
]
