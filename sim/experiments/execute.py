"""Executors: chunks of runs as batches, in this process, in a pool of worker processes, or on a Dask cluster.

A chunk (a fixed set of run ids, set by the sweep file's ``execution.chunk``, never by the
number of workers) is one task: ``run_task`` resolves each run's scenario with
``sim.space.with_values``, runs the chunk as batches on the model's run axis, and returns the
kept outputs. Tasks carry everything they need (scenario, values, seeds, outputs) and
``run_task`` touches no global state, so it is spawn-safe and gives the same numbers in any
process; with every run seeded by its own seed (``sim.random``), results do not depend on
the backend or the number of workers.

A run that fails is recorded with its error and the rest of the chunk completes: the chunk
is retried one run at a time to tell the failing runs from the others.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from sim.errors import InputError
from sim.experiments.spec import Outputs
from sim.model import RECORDED, Model
from sim.results import run_batch
from sim.scenario import Scenario
from sim.space import group_runs, with_values
from sim.stockflow import AgentEffects, replay

MAX_ATTEMPTS = 3
"""A chunk in flight when a worker process dies is redone; after this many deaths its runs are failures."""


@dataclass(frozen=True)
class Task:
    """One chunk of runs: what a worker needs and nothing else (picklable, no globals)."""

    chunk: int
    scenario: Scenario
    runs: tuple[int, ...]
    seeds: tuple[int, ...]
    values: tuple[dict[str, Any], ...]
    outputs: Outputs
    effects: dict[int, AgentEffects] | None = None
    """Stock-and-flow mode: the agents' effects recorded in a full run of the base scenario, by seed."""


@dataclass
class ChunkResult:
    chunk: int
    runs: tuple[int, ...]
    dataset: xr.Dataset | None
    """Kept outputs of the runs that finished (dims run x ...), None if every run failed."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    """{"run": id, "error": text} per failed run."""
    seconds: float = 0.0
    worker: str = ""


def _describe(error: BaseException) -> str:
    text = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
    return text.replace("\n", " ")


def record_effects(scenario: Scenario, seeds: Sequence[int]) -> dict[int, AgentEffects]:
    """One full run of the scenario per seed, its agents' and policies' effects on the stocks recorded."""
    effects = {}
    for seed in seeds:
        model = Model(scenario, [seed], record_effects=True)
        model.run()
        effects[seed] = model.effects()
    return effects


def _replay(task: Task, positions: Sequence[int]) -> xr.Dataset:
    """The stock-and-flow part alone with one seed's recorded effects, as a run_batch-like dataset."""
    names = sorted({*task.outputs.variables, *(s.variable for s in task.outputs.summaries)})
    seed = task.seeds[positions[0]]
    [(scenario, _, overrides)] = group_runs(task.scenario, [task.values[p] for p in positions], "run")
    times, values = replay(scenario, task.effects[seed], overrides, names)
    coords = {"time": ("time", times, {"units": "year"}), "region": list(scenario.regions.codes)}
    coords["destination"] = list(scenario.regions.codes)
    variables = {
        name: (("time", "run", *RECORDED[name][1]), values[name], {"units": RECORDED[name][0]}) for name in names
    }
    dataset = xr.Dataset(variables, coords=coords)
    return dataset.assign_coords(seed=("run", np.full(len(positions), seed, dtype=np.int32)))


def _run(task: Task, positions: Sequence[int]) -> tuple[xr.Dataset, list[dict[str, Any]]]:
    """Runs of the chunk as one batch (policy values and dates ride on the run axis).

    Runs that the state checks stopped (a negative or non-finite stock, NaN from then on) are
    returned as failures beside the dataset.
    """
    failures = []
    if task.effects is not None:
        dataset = _replay(task, positions)
    else:
        dataset = run_batch(task.scenario, [task.seeds[p] for p in positions], [task.values[p] for p in positions])
        for record in json.loads(dataset.attrs.get("failures", "[]")):
            failures.append({"run": task.runs[positions[record["run"]]], "error": record["error"]})
    kept = task.outputs.select(dataset, task.scenario.start)
    kept = kept.drop_vars([c for c in kept.coords if "run" in kept[c].dims and c != "seed"])
    return kept.assign_coords(run=[task.runs[p] for p in positions]).assign_attrs({}), failures


def run_task(task: Task) -> ChunkResult:
    """Run one chunk; failures are caught per run and returned, never raised."""
    started = time.perf_counter()
    failures: list[dict[str, Any]] = []
    valid = []
    for position, (run, values) in enumerate(zip(task.runs, task.values)):
        try:
            with_values(task.scenario, values, f"run {run}")
            valid.append(position)
        except Exception as error:  # noqa: BLE001 - a bad design point is that run's failure, not the sweep's
            failures.append({"run": run, "error": _describe(error)})
    batches: dict[int, list[int]] = {}
    for position in valid:  # a replay batch holds one seed's recorded effects; a full batch any seeds
        batches.setdefault(task.seeds[position] if task.effects is not None else 0, []).append(position)
    datasets = []
    for positions in batches.values():
        try:
            dataset, stopped = _run(task, positions)
            datasets.append(dataset)
            failures += stopped
        except Exception:  # noqa: BLE001 - find which runs of the batch fail, keep the others
            for position in positions:
                try:
                    dataset, stopped = _run(task, [position])
                    datasets.append(dataset)
                    failures += stopped
                except Exception as error:  # noqa: BLE001
                    failures.append({"run": task.runs[position], "error": _describe(error)})
    dataset = xr.concat(datasets, "run").sortby("run") if datasets else None
    worker = f"{socket.gethostname()}:{os.getpid()}"
    failures.sort(key=lambda failure: failure["run"])
    return ChunkResult(task.chunk, task.runs, dataset, failures, time.perf_counter() - started, worker)


def _lost(task: Task, why: str) -> ChunkResult:
    return ChunkResult(task.chunk, task.runs, None, [{"run": run, "error": why} for run in task.runs])


def run_serial(tasks: Iterable[Task], on_result: Callable[[ChunkResult], None]) -> None:
    for task in tasks:
        on_result(run_task(task))


def run_processes(tasks: Iterable[Task], workers: int, on_result: Callable[[ChunkResult], None]) -> None:
    """A pool of spawned worker processes; a pool broken by a dying worker is replaced and its chunks redone."""
    import multiprocessing

    pending = deque(tasks)
    attempts: Counter[int] = Counter()
    context = multiprocessing.get_context("spawn")  # no fork: workers start clean, as on a cluster
    while pending:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        in_flight: dict[Any, Task] = {}
        broken: list[Task] = []
        pool_broken = False
        try:
            while (pending or in_flight) and not pool_broken:
                while pending and len(in_flight) < 2 * workers:  # bounded: memory stays flat
                    task = pending.popleft()
                    try:
                        in_flight[pool.submit(run_task, task)] = task
                    except BrokenProcessPool:  # a worker died since the last results came in
                        pending.appendleft(task)
                        pool_broken = True
                        break
                if pool_broken:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken.append(task)
                        pool_broken = True
                        continue
                    on_result(result)
            broken += list(in_flight.values())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True, cancel_futures=True)
        for task in sorted(broken, key=lambda t: t.chunk, reverse=True):
            attempts[task.chunk] += 1
            if attempts[task.chunk] >= MAX_ATTEMPTS:
                on_result(_lost(task, f"worker process died {MAX_ATTEMPTS} times while running this chunk"))
            else:
                pending.appendleft(task)


def run_dask(
    tasks: Iterable[Task], workers: int, scheduler: str | None, on_result: Callable[[ChunkResult], None]
) -> None:
    """Chunks as tasks on a Dask cluster: ``scheduler`` is its address, or None / 'local' for a LocalCluster."""
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler in (None, "local"):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        queue = deque(tasks)
        limit = 2 * max(workers, len(client.scheduler_info().get("workers", {})))
        futures = as_completed()
        index: dict[str, Task] = {}
        for _ in range(min(limit, len(queue))):
            task = queue.popleft()
            future = client.submit(run_task, task, pure=False)
            index[future.key] = task
            futures.add(future)
        for future in futures:
            task = index.pop(future.key)
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
                result = _lost(task, f"dask: {_describe(error)}")
            future.release()
            on_result(result)
            if queue:
                task = queue.popleft()
                future = client.submit(run_task, task, pure=False)
                index[future.key] = task
                futures.add(future)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def evaluate(
    scenario: Scenario,
    values: Sequence[dict[str, Any]],
    seeds: Sequence[int],
    outputs: Outputs | Sequence[str] = ("population",),
    *,
    backend: str = "processes",
    workers: int = 2,
    chunk: int = 8,
    mode: str = "full",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[xr.Dataset, list[dict[str, Any]]]:
    """Many runs (``values[i]`` with ``seeds[i]``) on an executor, in memory: for calibration and search loops.

    Returns the kept outputs along ``run`` (failed runs NaN) and the failures; no folder, no
    resume (``sweep`` is the durable path). ``mode="stock-flow"`` replays one full run per seed.
    """
    if len(values) != len(seeds):
        raise ValueError("give one seed per parameter set")
    if not isinstance(outputs, Outputs):
        outputs = Outputs(tuple(outputs), None, None, "all", ())
    effects = record_effects(scenario, sorted(set(seeds))) if mode == "stock-flow" else None
    tasks = [
        Task(
            c // chunk,
            scenario,
            tuple(range(c, min(c + chunk, len(values)))),
            tuple(seeds[c : c + chunk]),
            tuple(values[c : c + chunk]),
            outputs,
            effects,
        )
        for c in range(0, len(values), chunk)
    ]
    parts: list[xr.Dataset] = []
    failures: list[dict[str, Any]] = []
    done = 0

    def collect(result: ChunkResult) -> None:
        nonlocal done
        if result.dataset is not None:
            parts.append(result.dataset)
        failures.extend(result.failures)
        done += len(result.runs)
        if progress is not None:
            progress(done, len(values))

    if backend == "serial":
        run_serial(tasks, collect)
    elif backend == "processes":
        run_processes(tasks, workers, collect)
    else:
        run_dask(tasks, workers, None, collect)
    runs = np.arange(len(values))
    dataset = xr.concat(parts, "run").sortby("run").reindex(run=runs) if parts else xr.Dataset(coords={"run": runs})
    return dataset.assign_coords(seed=("run", np.asarray(seeds, dtype=np.int32))), sorted(
        failures, key=lambda f: f["run"]
    )
