"""Sweep files: a base scenario, the uncertainties and levers that vary, the design, what to keep, where to run.

Validated completely at load time like scenario files: every error is one line naming the
file, the key and what was expected (``InputError``, exit 2). Values of the varied addresses
are checked by the scenario validator itself (``sim.space.with_values``), so a range that a
scenario file would refuse is refused here with the same words.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from sim.errors import InputError
from sim.experiments.designs import DESIGNS, DISTRIBUTIONS, Design, Distribution, sample
from sim.model import RECORDED
from sim.scenario import FIRST_YEAR, LAST_YEAR, MAX_SEED, Scenario, _is_number, decimal_year, load_scenario, suggest
from sim.sectors import JOB_SECTORS
from sim.space import Address, addresses, derive, unknown_address, with_values
from sim.stockflow import STOCK_FLOW_OUTPUTS

TOP_KEYS = ("name", "description", "scenario", "run", "uncertainties", "levers", "design", "replications")
TOP_KEYS += ("outputs", "execution", "analysis")
BACKENDS = ("serial", "processes", "dask")
MODES = ("full", "stock-flow")
TIMES = ("all", "yearly")
DISTRIBUTION_KEYS = ("distribution", "low", "high", "mode", "mean", "sd", "levels")


@dataclass(frozen=True)
class Summary:
    """A reduced output: ``variable`` summed over ``regions`` / ``sectors``, at ``time`` (or over the kept times)."""

    name: str
    variable: str
    regions: tuple[str, ...] | None = None
    sectors: tuple[str, ...] | None = None
    time: float | None = None


@dataclass(frozen=True)
class Outputs:
    """What a sweep keeps of each run: variables (optionally some regions / sectors), times and summaries."""

    variables: tuple[str, ...]
    regions: tuple[str, ...] | None
    sectors: tuple[str, ...] | None
    times: str | tuple[float, ...]
    summaries: tuple[Summary, ...]

    def select(self, dataset: xr.Dataset, start: int) -> xr.Dataset:
        """The kept part of a run_batch dataset (dims time x run x ...), computed in the worker."""
        kept = {}
        for summary in self.summaries:
            array = dataset[summary.variable]
            if summary.regions is not None:
                array = array.sel(region=list(summary.regions)).sum("region", skipna=False)
            if summary.sectors is not None:
                array = array.sel(sector=list(summary.sectors)).sum("sector", skipna=False)
            if summary.time is not None:
                array = array.isel(time=_month(summary.time, start)).drop_vars("time")
            else:
                array = self._times(array, start)
            kept[summary.name] = array.assign_attrs(dataset[summary.variable].attrs)
        for name in self.variables:
            array = dataset[name]
            if self.regions is not None and "region" in array.dims:
                array = array.sel(region=list(self.regions))
            if self.sectors is not None and "sector" in array.dims:
                array = array.sel(sector=list(self.sectors))
            kept[name] = self._times(array, start)
        selected = xr.Dataset(kept)
        unused = [c for c in selected.coords if c not in selected.dims and c not in dataset["seed"].coords]
        return selected.drop_vars([c for c in unused if c in ("institution",)], errors="ignore")

    def _times(self, array: xr.DataArray, start: int) -> xr.DataArray:
        if self.times == "all":
            return array
        if self.times == "yearly":
            return array.isel(time=slice(None, None, 12))
        return array.isel(time=[_month(t, start) for t in self.times])


def _month(year: float, start: int) -> int:
    return int(round((year - start) * 12))


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file."""

    path: Path
    name: str
    description: str
    scenario: Scenario
    parameters: tuple[Distribution, ...]
    method: str
    samples: int
    seed: int
    points: int
    second_order: bool
    levels: int
    replications: int
    replication_seed: int
    outputs: Outputs
    backend: str
    mode: str
    """'full' (the coupled model) or 'stock-flow' (the agents' effects replayed from one full run per seed)."""
    workers: int
    chunk: int
    scheduler: str | None
    analysis: tuple[str, ...]
    text: str

    @property
    def sweep_hash(self) -> str:
        """Identifies what the sweep computes: the file's text and the resolved base scenario."""
        return hashlib.sha256((self.text + self.scenario.config_hash).encode()).hexdigest()[:16]

    def design(self) -> Design:
        return sample(
            self.method,
            list(self.parameters),
            self.samples,
            self.seed,
            self.points,
            self.second_order,
            self.levels,
        )

    def seeds(self) -> list[int]:
        """The replication seeds, shared by every design point (common random numbers)."""
        return [self.replication_seed + r for r in range(self.replications)]


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> None:
        raise InputError(self.path, key, message)

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {value!r}")
        return value

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def string(self, value: Any, key: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(key, f"unknown value {value!r}; {suggest(value, choices)}")
        return value

    def keys(self, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                self.fail(f"{key}.{name}" if key else name, f"unknown key; {suggest(name, allowed)}")

    def strings(self, value: Any, key: str, choices: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.fail(key, f"expected a non-empty list of names, got {value!r}")
        return tuple(self.string(item, key, choices) for item in value)


def _year(checker: _Checker, value: Any, key: str, scenario: Scenario) -> float:
    """A time to keep: a year (1 January) or a date, inside the run."""
    if _is_number(value):
        year = float(value)
    elif isinstance(value, dt.date | str):
        year = decimal_year(value, checker.path, key)
    else:
        checker.fail(key, f"expected a year or a date, got {value!r}")
    if not scenario.start <= year <= scenario.end:
        checker.fail(key, f"time {value} is outside the run: expected {scenario.start} to {scenario.end}")
    return year


def _regions(checker: _Checker, value: Any, key: str, scenario: Scenario) -> tuple[str, ...]:
    """Region codes; ``beijing`` stands for Beijing's regions."""
    codes = scenario.regions.codes
    names = checker.strings(value, key, (*codes, "beijing"))
    beijing = [c for c, b in zip(codes, scenario.regions.beijing) if b]
    return tuple(dict.fromkeys(c for name in names for c in (beijing if name == "beijing" else [name])))


def _outputs(checker: _Checker, table: Any, scenario: Scenario) -> Outputs:
    table = checker.table(table, "outputs")
    checker.keys(table, "outputs", ("variables", "regions", "sectors", "times", "summaries"))
    variables = checker.strings(table.get("variables", ["population"]), "outputs.variables", tuple(RECORDED))
    regions = _regions(checker, table["regions"], "outputs.regions", scenario) if "regions" in table else None
    sectors = checker.strings(table["sectors"], "outputs.sectors", JOB_SECTORS) if "sectors" in table else None
    times: str | tuple[float, ...] = table.get("times", "yearly")
    if isinstance(times, list):
        times = tuple(_year(checker, t, f"outputs.times[{i}]", scenario) for i, t in enumerate(times))
    elif not isinstance(times, str) or times not in TIMES:
        checker.fail("outputs.times", f"expected 'all', 'yearly' or a list of years, got {times!r}")
    summaries = []
    for name, spec in checker.table(table.get("summaries", {}), "outputs.summaries").items():
        key = f"outputs.summaries.{name}"
        spec = checker.table(spec, key)
        checker.keys(spec, key, ("variable", "regions", "sectors", "time"))
        if "variable" not in spec:
            checker.fail(f"{key}.variable", "missing; expected the name of a recorded output")
        variable = checker.string(spec["variable"], f"{key}.variable", tuple(RECORDED))
        if name in variables or name in RECORDED:
            checker.fail(key, f"a summary cannot share the name of an output ({name!r})")
        dims = RECORDED[variable][1]
        for dim in ("regions", "sectors"):
            if dim in spec and dim[:-1] not in dims:
                checker.fail(f"{key}.{dim}", f"{variable} has no {dim[:-1]} dimension (its dimensions: {dims})")
        summaries.append(
            Summary(
                name,
                variable,
                _regions(checker, spec["regions"], f"{key}.regions", scenario) if "regions" in spec else None,
                checker.strings(spec["sectors"], f"{key}.sectors", JOB_SECTORS) if "sectors" in spec else None,
                _year(checker, spec["time"], f"{key}.time", scenario) if "time" in spec else None,
            )
        )
    return Outputs(variables, regions, sectors, times, tuple(summaries))


def _distribution(checker: _Checker, role: str, key: str, address: Address, spec: Any, scenario: Scenario):
    """One varied address; bounds and levels are checked by setting them on the scenario, like a file would."""
    spec = checker.table(spec, key)
    checker.keys(spec, key, DISTRIBUTION_KEYS)
    kind = spec.get("distribution")
    if kind is None:
        implied = {"levels": "levels", "mean": "normal", "mode": "triangular"}
        kind = next((implied[k] for k in implied if k in spec), "uniform")
    kind = checker.string(kind, f"{key}.distribution", DISTRIBUTIONS)
    if address.type == "bool" and kind != "levels":
        checker.fail(f"{key}.levels", "a true/false value is varied by levels, e.g. levels = [true, false]")

    def settable(value: Any, where: str) -> Any:
        """The value as the scenario validator accepts it, reported under this sweep key."""
        try:
            with_values(scenario, {address.name: value}, str(checker.path))
        except InputError as error:
            raise InputError(checker.path, where, error.message) from None
        return value

    def number(name: str) -> float:
        where = f"{key}.{name}"
        if name not in spec:
            checker.fail(where, f"missing; a {kind} distribution needs {name}")
        value = settable(spec[name], where)
        if address.type == "date":
            return float(value) if _is_number(value) else decimal_year(value, checker.path, where)
        return float(value)

    if kind == "levels":
        levels = spec.get("levels")
        if not isinstance(levels, list) or not levels:
            checker.fail(f"{key}.levels", f"expected a non-empty list of values, got {levels!r}")
        levels = tuple(settable(v, f"{key}.levels[{i}]") for i, v in enumerate(levels))
        return Distribution(address.name, role, kind, address.type, levels=levels)
    unused = {"uniform": ("mode", "mean", "sd"), "triangular": ("mean", "sd"), "normal": ("mode",)}[kind]
    for name in (*unused, "levels"):
        if name in spec:
            checker.fail(f"{key}.{name}", f"not used by a {kind} distribution")
    if kind == "normal":
        mean = number("mean")
        if not _is_number(spec.get("sd")) or not spec["sd"] > 0:
            checker.fail(f"{key}.sd", f"expected a positive number, got {spec.get('sd')!r}")
        low = number("low") if "low" in spec else FIRST_YEAR if address.type == "date" else address.low
        high = number("high") if "high" in spec else LAST_YEAR + 0.999 if address.type == "date" else address.high
        return Distribution(address.name, role, kind, address.type, low, high, mean=mean, sd=float(spec["sd"]))
    low, high = number("low"), number("high")
    if not low < high:
        checker.fail(f"{key}.high", f"expected high above low, got low {spec['low']} and high {spec['high']}")
    if address.type == "integer" and kind != "uniform":
        checker.fail(f"{key}.distribution", "an integer is varied by a uniform distribution or by levels")
    mode = number("mode") if kind == "triangular" else math.nan
    if kind == "triangular" and not low <= mode <= high:
        checker.fail(f"{key}.mode", f"expected mode between low and high, got {spec['mode']}")
    return Distribution(address.name, role, kind, address.type, low, high, mode=mode)


def _check_stock_flow(
    checker: _Checker, parameters: list[Distribution], space: dict[str, Address], outputs: Outputs
) -> None:
    """The stock-and-flow mode varies only what the replayed part reads, and keeps only what it computes."""
    for parameter in parameters:
        if space[parameter.address].part != "stock-flow":
            section = "uncertainties" if parameter.role == "uncertainty" else "levers"
            checker.fail(
                f"{section}.{parameter.address}",
                'execution.mode = "stock-flow" replays the agents and policies of one full run: it can vary '
                'population, housing and services parameters only (use mode = "full")',
            )
    for name in (*outputs.variables, *(s.variable for s in outputs.summaries)):
        if name not in STOCK_FLOW_OUTPUTS:
            checker.fail(
                "outputs",
                f"{name!r} is not an output of the stock-and-flow part ({', '.join(STOCK_FLOW_OUTPUTS)}); "
                'use mode = "full"',
            )


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (the base scenario is loaded and validated too)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError(path, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, "", f"cannot read the file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(path, "", f"TOML syntax error: {error}") from None
    checker = _Checker(path)
    checker.keys(document, "", TOP_KEYS)
    if "scenario" not in document:
        checker.fail("scenario", "missing; expected the base scenario file (relative to this file)")
    base_file = path.parent / checker.string(document["scenario"], "scenario")
    if not base_file.is_file():
        checker.fail("scenario", f"file {document['scenario']!r} not found (looked in {path.parent})")
    scenario = load_scenario(base_file)
    if "run" in document:
        run = checker.table(document["run"], "run")
        checker.keys(run, "run", ("start", "end", "method"))
        scenario = derive(scenario, {"run": run}, str(path))

    space = addresses(scenario)
    parameters: list[Distribution] = []
    for section, role in (("uncertainties", "uncertainty"), ("levers", "lever")):
        for name, spec in checker.table(document.get(section, {}), section).items():
            key = f"{section}.{name}"
            if name not in space:
                checker.fail(key, unknown_address(name, space, scenario))
            if any(p.address == name for p in parameters):
                checker.fail(key, "varied twice (as an uncertainty and as a lever)")
            parameters.append(_distribution(checker, role, key, space[name], spec, scenario))
    if not parameters:
        checker.fail("uncertainties", "nothing varies: give at least one [uncertainties.ADDRESS] or [levers.ADDRESS]")

    design = checker.table(document.get("design", {}), "design")
    checker.keys(design, "design", ("method", "samples", "seed", "points", "second_order", "levels"))
    method = checker.string(design.get("method", "lhs"), "design.method", DESIGNS)
    samples = checker.integer(design.get("samples", 16), "design.samples", 1, 10_000_000)
    seed = checker.integer(design.get("seed", 0), "design.seed", 0, MAX_SEED)
    points = checker.integer(design.get("points", 3), "design.points", 2, 1000)
    levels = checker.integer(design.get("levels", 4), "design.levels", 2, 100)
    second_order = design.get("second_order", False)
    if not isinstance(second_order, bool):
        checker.fail("design.second_order", f"expected true or false, got {second_order!r}")
    if method == "sobol" and samples & (samples - 1):
        checker.fail("design.samples", f"a Sobol sequence is balanced for powers of two; got {samples}")

    replications = checker.table(document.get("replications", {}), "replications")
    checker.keys(replications, "replications", ("count", "seed"))
    count = checker.integer(replications.get("count", 1), "replications.count", 1, 100_000)
    replication_seed = checker.integer(replications.get("seed", scenario.seed), "replications.seed", 0, MAX_SEED)
    if replication_seed + count - 1 > MAX_SEED:
        checker.fail("replications.seed", f"seed + count - 1 exceeds {MAX_SEED}")

    outputs = _outputs(checker, document.get("outputs", {}), scenario)
    execution = checker.table(document.get("execution", {}), "execution")
    checker.keys(execution, "execution", ("backend", "mode", "workers", "chunk", "scheduler"))
    backend = checker.string(execution.get("backend", "processes"), "execution.backend", BACKENDS)
    mode = checker.string(execution.get("mode", "full"), "execution.mode", MODES)
    if mode == "stock-flow":
        _check_stock_flow(checker, parameters, space, outputs)
    workers = checker.integer(execution.get("workers", 2), "execution.workers", 1, 4096)
    chunk = checker.integer(execution.get("chunk", 8), "execution.chunk", 1, 100_000)
    scheduler = execution.get("scheduler")
    if scheduler is not None:
        checker.string(scheduler, "execution.scheduler")

    analysis = checker.table(document.get("analysis", {}), "analysis")
    checker.keys(analysis, "analysis", ("outputs",))
    kept = tuple(s.name for s in outputs.summaries) + outputs.variables
    targets = checker.strings(analysis["outputs"], "analysis.outputs", kept) if "outputs" in analysis else ()
    name = document.get("name", path.stem)
    checker.string(name, "name")
    return Sweep(
        path=path,
        name=name,
        description=checker.string(document.get("description", ""), "description"),
        scenario=scenario,
        parameters=tuple(parameters),
        method=method,
        samples=samples,
        seed=seed,
        points=points,
        second_order=second_order,
        levels=levels,
        replications=count,
        replication_seed=replication_seed,
        outputs=outputs,
        backend=backend,
        mode=mode,
        workers=workers,
        chunk=chunk,
        scheduler=scheduler,
        analysis=targets or tuple(s.name for s in outputs.summaries),
        text=text,
    )
