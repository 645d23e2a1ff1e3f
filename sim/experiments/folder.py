"""The sweep folder, written as runs finish and resumable after any interruption.

    OUT/sweep.toml        the sweep file as given
    OUT/design.csv        run id, design point, replication, seed and every varied value
    OUT/chunks/*.nc       kept outputs of each finished chunk (NetCDF 3, written atomically)
    OUT/journal.jsonl     one line per finished chunk: runs, failures, seconds, worker
    OUT/results.nc        every chunk joined along ``run``, its coordinates the design values
    OUT/failures.csv      run id, every varied value, error
    OUT/manifest.json     versions, hashes, backend, timings, failures (written last)

Why per-chunk files joined at the end: NetCDF 3 (our format: scipy writes it, no C library)
cannot append along a dimension, and an HDF5 or zarr store that is appended to in place
can be left half-written by a SIGKILL. A chunk file is complete or absent (written under a
temporary name, then renamed), and the journal line is appended after the rename, so a
resumed sweep trusts exactly the chunks that finished. Memory during the sweep holds a
bounded number of chunks; the final join holds the kept outputs only (runs x kept values),
which ``[outputs]`` keeps small.

Resume: the same command again reads the journal and runs only the chunks missing from it.
The design is a function of the sweep file, so the chunks redone are the same runs with the
same seeds, and the joined result equals an uninterrupted sweep's.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from sim.errors import InputError
from sim.experiments.designs import Design, csv_value
from sim.experiments.execute import ChunkResult, Task, record_effects, run_dask, run_processes, run_serial
from sim.experiments.spec import BACKENDS, Sweep, load_sweep
from sim.runfolder import FolderLock, atomic_write
from sim.scenario import decimal_year


@dataclass(frozen=True)
class RunTable:
    """Every run of a sweep: design point x replication, with its seed (common random numbers)."""

    design: Design
    seeds: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.design.points) * len(self.seeds)

    def point(self, run: int) -> int:
        return run // len(self.seeds)

    def seed(self, run: int) -> int:
        return self.seeds[run % len(self.seeds)]

    def values(self, run: int) -> dict[str, Any]:
        return self.design.points[self.point(run)]


def _model_value(value: Any) -> Any:
    """A design value as a coordinate holds it: dates as decimal years."""
    return decimal_year(value, Path("design"), "") if isinstance(value, dt.date) else value


def _journal(folder: Path, sweep_hash: str) -> dict[int, dict[str, Any]]:
    """Finished chunks by number; a journal from another sweep is an error, a torn last line is ignored."""
    path = folder / "journal.jsonl"
    if not path.exists():
        return {}
    done: dict[int, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line being written when the process was killed
        if entry.get("sweep_hash") != sweep_hash:
            raise InputError(
                folder,
                "",
                "holds a different sweep (the sweep file or its base scenario changed since it was started); "
                "use another --out, or delete the folder to start again",
            )
        if (folder / entry["file"]).exists() or entry["file"] == "":
            done[entry["chunk"]] = entry
    return done


def _append(path: Path, entry: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _write_design(folder: Path, table: RunTable) -> None:
    names = table.design.names

    def write(path: Path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["run", "point", "replication", "seed", *names])
            for run in range(table.size):
                values = table.values(run)
                point, replication = table.point(run), run % len(table.seeds)
                writer.writerow([run, point, replication, table.seed(run), *(csv_value(values[n]) for n in names)])

    atomic_write(folder / "design.csv", write)


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("beijing-relocation-sim", "numpy", "scipy", "xarray", "SALib", "dask", "distributed", "tqdm"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def join(folder: Path, sweep: Sweep, table: RunTable, done: dict[int, dict[str, Any]]) -> xr.Dataset:
    """Every finished chunk along ``run`` (failed runs as NaN), labeled by the design values and seeds."""
    parts = [xr.load_dataset(folder / done[c]["file"], engine="scipy") for c in sorted(done) if done[c]["file"]]
    runs = np.arange(table.size)
    if parts:
        dataset = xr.concat(parts, "run").reindex(run=runs)
    else:
        dataset = xr.Dataset(coords={"run": runs})
    coords: dict[str, Any] = {
        "seed": ("run", np.array([table.seed(r) for r in runs], dtype=np.int32)),
        "point": ("run", np.array([table.point(r) for r in runs], dtype=np.int32)),
    }
    for parameter in sweep.parameters:
        column = np.array([_model_value(table.values(r)[parameter.address]) for r in runs])
        units = "year (decimal)" if parameter.type == "date" else ""
        coords[parameter.address] = ("run", column, {"role": parameter.role, "units": units})
    dataset = dataset.assign_coords(coords)
    dataset.attrs = {
        "sweep": sweep.name,
        "scenario": sweep.scenario.name,
        "config_hash": sweep.scenario.config_hash,
        "sweep_hash": sweep.sweep_hash,
        "design": sweep.method,
        "replications": sweep.replications,
    }
    return dataset


@dataclass(frozen=True)
class SweepResult:
    folder: Path
    runs: int
    failures: list[dict[str, Any]]
    seconds: float

    def dataset(self) -> xr.Dataset:
        return xr.load_dataset(self.folder / "results.nc", engine="scipy")


def _bar(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="run", dynamic_ncols=True, file=sys.stderr)


def sweep(
    source: str | Path | Sweep,
    out: str | Path | None = None,
    *,
    backend: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    bar: bool = False,
    analysis: bool = True,
) -> SweepResult:
    """Run (or resume) a sweep and write its folder; ``progress(done_runs, total_runs)`` after each chunk.

    ``backend``, ``workers`` and ``scheduler`` override the sweep file's ``[execution]``;
    they do not change the results (chunks are fixed by the file), so a sweep may be resumed
    with another backend.
    """
    spec = source if isinstance(source, Sweep) else load_sweep(source)
    backend = backend or spec.backend
    if backend not in BACKENDS:
        raise InputError("--backend", backend, f"expected one of {', '.join(BACKENDS)}")
    workers = workers or spec.workers
    scheduler = scheduler or spec.scheduler
    folder = Path(out) if out is not None else Path("sweeps") / spec.name
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise InputError(parent, "--out", "exists and is not a directory; expected a sweep folder")
    try:
        (folder / "chunks").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(folder, "--out", f"cannot create the sweep folder: {error.strerror or error}") from None
    started = time.perf_counter()
    with FolderLock(folder, "--out"):
        done = _journal(folder, spec.sweep_hash)
        table = RunTable(spec.design(), tuple(spec.seeds()))
        atomic_write(folder / "sweep.toml", lambda p: p.write_text(spec.text))
        _write_design(folder, table)
        chunks = range(0, table.size, spec.chunk)
        tasks = [
            Task(
                chunk=c // spec.chunk,
                scenario=spec.scenario,
                runs=tuple(range(c, min(c + spec.chunk, table.size))),
                seeds=tuple(table.seed(r) for r in range(c, min(c + spec.chunk, table.size))),
                values=tuple(table.values(r) for r in range(c, min(c + spec.chunk, table.size))),
                outputs=spec.outputs,
            )
            for c in chunks
            if c // spec.chunk not in done
        ]
        if spec.mode == "stock-flow" and tasks:
            effects = record_effects(spec.scenario, spec.seeds())
            tasks = [replace(task, effects=effects) for task in tasks]
        finished = sum(len(entry["runs"]) for entry in done.values())
        meter = _bar(table.size, finished, bar)

        def record(result: ChunkResult) -> None:
            nonlocal finished
            name = ""
            if result.dataset is not None:
                name = f"chunks/chunk-{result.chunk:06d}.nc"
                atomic_write(
                    folder / name,
                    lambda p: result.dataset.to_netcdf(p, engine="scipy", format="NETCDF3_64BIT"),
                )
            entry = {
                "sweep_hash": spec.sweep_hash,
                "chunk": result.chunk,
                "runs": list(result.runs),
                "file": name,
                "failures": result.failures,
                "seconds": round(result.seconds, 4),
                "worker": result.worker,
            }
            _append(folder / "journal.jsonl", entry)
            done[result.chunk] = entry
            finished += len(result.runs)
            if meter is not None:
                meter.update(len(result.runs))
                if result.failures:
                    meter.set_postfix(failed=sum(len(e["failures"]) for e in done.values()))
            if progress is not None:
                progress(finished, table.size)

        try:
            if backend == "serial":
                run_serial(tasks, record)
            elif backend == "processes":
                run_processes(tasks, workers, record)
            else:
                run_dask(tasks, workers, scheduler, record)
        finally:
            if meter is not None:
                meter.close()
        dataset = join(folder, spec, table, done)
        atomic_write(folder / "results.nc", lambda p: dataset.to_netcdf(p, engine="scipy", format="NETCDF3_64BIT"))
        failures = sorted((f for e in done.values() for f in e["failures"]), key=lambda f: f["run"])
        _write_failures(folder, table, failures)
        figures = []
        if analysis:
            from sim.experiments.sensitivity import analyze

            figures = analyze(folder, spec, dataset, table.design)
        elapsed = time.perf_counter() - started
        compute = sum(e["seconds"] for e in done.values())
        manifest = {
            "sweep": spec.name,
            "sweep_file": str(spec.path),
            "sweep_hash": spec.sweep_hash,
            "scenario": spec.scenario.name,
            "scenario_file": str(spec.scenario.path),
            "config_hash": spec.scenario.config_hash,
            "design": {"method": spec.method, "points": len(table.design.points), "seed": spec.seed},
            "replications": {"count": spec.replications, "seeds": list(spec.seeds())},
            "runs": table.size,
            "chunks": len(chunks),
            "chunk_size": spec.chunk,
            "backend": {"name": backend, "workers": workers, "scheduler": scheduler},
            "mode": spec.mode,
            "versions": _versions(),
            "timings_s": {
                "this_invocation": round(elapsed, 3),
                "compute_all_chunks": round(compute, 3),
                "runs_per_second_this_invocation": round(len(tasks) and sum(len(t.runs) for t in tasks) / elapsed, 3),
            },
            "failures": len(failures),
            "files": ["sweep.toml", "design.csv", "results.nc", "failures.csv", "journal.jsonl", *figures],
        }
        atomic_write(folder / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    return SweepResult(folder, table.size, failures, elapsed)


def _write_failures(folder: Path, table: RunTable, failures: list[dict[str, Any]]) -> None:
    names = table.design.names

    def write(path: Path) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["run", "seed", *names, "error"])
            for failure in failures:
                run = failure["run"]
                values = table.values(run)
                writer.writerow([run, table.seed(run), *(csv_value(values[n]) for n in names), failure["error"]])

    atomic_write(folder / "failures.csv", write)
