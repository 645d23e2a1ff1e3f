"""Scenario files: TOML with ``extends`` and overrides, validated completely at load time.

A scenario names its run settings (``[run]``), overrides model parameters by group
(``[population]``, ``[firms]``, ...; the defaults and their sources are in
``sim/data/parameters.toml``) and lists dated policies by name (``[policies.NAME]``,
fields in ``sim.policies``). A file that ``extends`` another is merged over it key by
key, so a policy story states only what it changes. Every error names the file, the
key path and what was expected.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError, InputErrors
from sim.policies import POLICY_KINDS, Field
from sim.regions import Regions, load_regions
from sim.sectors import FIRM_SECTORS, INSTITUTION_KINDS

FIRST_YEAR, LAST_YEAR = 2014, 2050
METHODS = ("euler", "rk4")
MAX_SEED = 2**31 - 1  # results.nc is NetCDF 3, whose largest integer is int32
RUN_DEFAULTS: dict[str, Any] = {"start": 2014, "end": 2035, "seed": 0, "method": "rk4"}
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", re.ASCII)  # scenario names become folder names
MAX_NAME = 100  # characters of a scenario or policy name (a folder name; a column of events.csv)
MAX_FILE_BYTES = 1_000_000  # a scenario file is a few kilobytes; anything this large is not one
MAX_EXTENDS = 32  # files in one extends chain
NAME_EXPECTED = f"1 to {MAX_NAME} letters, digits, '_', '.' or '-' (not starting with '.' or '-')"
TOP_KEYS = ("extends", "name", "description", "run", "policies")


def _load_parameter_table() -> dict[str, dict[str, dict[str, Any]]]:
    with (resources.files("sim") / "data" / "parameters.toml").open("rb") as handle:
        return tomllib.load(handle)


PARAMETERS: dict[str, dict[str, dict[str, Any]]] = _load_parameter_table()
"""Group -> name -> {value, unit, range, dims, status, source, doc}: the model's free numbers."""


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    expected = f"expected one of {', '.join(sorted(choices))}"
    return f"did you mean {close[0]!r}? ({expected})" if close else expected


def check_seed(value: Any, path: Path | str, key: str) -> int:
    """A seed as files and the API accept it: an integer (not a bool) from 0 to MAX_SEED."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or not 0 <= value <= MAX_SEED:
        raise InputError(path, key, f"expected an integer from 0 to {MAX_SEED}, got {value!r}")
    return int(value)


def valid_name(value: str) -> bool:
    """A name that may become a folder name or a CSV cell as it is."""
    return len(value) <= MAX_NAME and NAME_PATTERN.fullmatch(value) is not None


DATE_EXPECTED = 'expected a TOML date like 2019-01-15 (unquoted) or a "YYYY-MM" string like "2019-01"'


def decimal_year(value: Any, path: Path, key: str) -> float:
    """A TOML date (2019-01-01) or a "YYYY-MM" string as decimal years (2019.0 = 1 Jan 2019)."""
    if isinstance(value, str):
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{1,2}", value):  # ASCII digits only: int() takes '٢' and '_'
                raise ValueError(value)
            year, month = (int(part) for part in value.split("-"))
            value = dt.date(year, month, 1)
        except ValueError:
            raise InputError(path, key, f"{DATE_EXPECTED}, got {value!r}") from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        shown = value.isoformat() if isinstance(value, dt.datetime | dt.time) else repr(value)
        raise InputError(path, key, f"{DATE_EXPECTED}, got {shown}")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InputError(path, key, f"date {value} is out of range: expected {FIRST_YEAR}-01 to {LAST_YEAR}-12")
    days_in_month = ((value.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)).day
    return value.year + (value.month - 1 + (value.day - 1) / days_in_month) / 12


class FrozenDict(dict):
    """A dict that refuses changes: a scenario's tables, so a run cannot alter the inputs it records.

    A ``dict`` subclass (not ``MappingProxyType``) so that JSON, TOML writers and ``isinstance``
    checks see a plain table; ``dict(frozen)`` is a mutable copy.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a Scenario is immutable; derive a changed one with sim.space.with_values")

    __setitem__ = __delitem__ = __ior__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """A read-only deep copy: tables become FrozenDicts, lists tuples, arrays read-only copies."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        array = value.copy()
        array.setflags(write=False)
        return array
    return value


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: run settings, resolved parameters and enabled policies.

    Immutable all the way down (tables, lists and arrays), so a scenario always describes the
    runs made from it; ``sim.space.with_values`` derives a changed, re-validated copy.
    """

    name: str
    path: Path
    description: str
    start: int
    end: int
    seed: int
    method: str
    parameters: dict[str, Any]
    """'group.name' -> float, or array along regions / firm sectors."""
    policies: dict[str, dict[str, Any]]
    """Policy name -> fields with defaults filled in, dates as decimal years."""
    document: dict[str, Any] = field(repr=False)
    """The merged scenario as TOML data (``extends`` resolved): what ``scenario.toml`` holds."""
    regions: Regions = field(repr=False, default_factory=load_regions)

    def __post_init__(self) -> None:
        for name in ("parameters", "policies", "document"):
            object.__setattr__(self, name, freeze(getattr(self, name)))

    def __repr__(self) -> str:
        """One line in the terminal; the parameter arrays are in ``parameters``."""
        return (
            f"Scenario({self.name!r}, {self.start}-{self.end}, seed {self.seed}, {self.method}, "
            f"{len(self.policies)} policies, {len(self.parameters)} parameters, from {self.path.name!r})"
        )

    def _repr_html_(self) -> str:
        """Notebooks: settings, description and the policies in time order."""
        from sim.outputs.describe import scenario_html

        return scenario_html(self)

    @property
    def config_hash(self) -> str:
        """A short hash of the resolved scenario: equal hashes mean equal inputs."""
        text = json.dumps(self.document, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read(path: Path) -> dict[str, Any]:
    """A TOML file: regular files only (a FIFO or a device would block or never end), at most MAX_FILE_BYTES."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise InputError(path, "", "file not found") from None
    except IsADirectoryError:
        raise InputError(path, "", "expected a TOML file, got a directory") from None
    except OSError as error:
        raise InputError(path, "", f"cannot read the file: {error.strerror or error}") from None
    try:
        info = os.fstat(handle)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(path, "", "expected a TOML file, got a directory")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, "", "expected a TOML file, got a special file (a pipe, device or socket)")
        with os.fdopen(os.dup(handle), "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise InputError(path, "", f"cannot read the file: {error.strerror or error}") from None
    finally:
        os.close(handle)
    if len(data) > MAX_FILE_BYTES:
        raise InputError(path, "", f"file too large for a scenario (more than {MAX_FILE_BYTES:,} bytes)")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise InputError(path, "", f"TOML syntax error: not UTF-8 text (byte {error.start})") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(path, "", f"TOML syntax error: {error}") from None
    except RecursionError:
        raise InputError(path, "", "TOML syntax error: nested too deeply") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _Validator:
    """Checks one file's document against the schema; remembers which file set each policy field.

    Files are checked base first. A policy table without ``kind`` overrides the policy of that
    name inherited from the files before it, and its fields are checked against the inherited
    kind here, so an error names the file that wrote the bad value.
    """

    def __init__(self, regions: Regions) -> None:
        self.regions = regions
        self.defined_in: dict[str, Path] = {}
        """Policy name -> the last file that gave its ``kind``."""
        self.set_in: dict[tuple[str, str], tuple[int, Path]] = {}
        """(policy name, field) -> (position in the extends chain, file) of the last file that set it."""
        self.files = 0
        self.errors: list[InputError] = []
        """Mistakes found so far in the file being checked, raised together by ``raise_gathered``."""

    @contextlib.contextmanager
    def gathering(self) -> Iterator[None]:
        """Check one independent part (a key, a parameter, a policy field); keep going past its mistake."""
        try:
            yield
        except InputError as error:
            self.errors.append(error)

    def raise_gathered(self) -> None:
        """Stop with every mistake gathered so far (one: itself; several: ``InputErrors``)."""
        errors = [one for error in self.errors for one in getattr(error, "errors", [error])]
        self.errors = []
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise InputErrors(errors)

    def check_file(self, path: Path, doc: dict[str, Any], inherited: dict[str, Any] | None = None) -> None:
        """Check one file of the chain; ``inherited`` is the merged ``policies`` table of the files before it."""
        inherited = inherited or {}
        self.files += 1
        for key, value in doc.items():
            with self.gathering():
                self._check_key(path, key, value, inherited)
        self.raise_gathered()  # a mistake here would make the files after it report its consequences

    def _check_key(self, path: Path, key: str, value: Any, inherited: dict[str, Any]) -> None:
        if key in PARAMETERS:
            self._check_group(path, key, value)
        elif key == "run":
            self._check_run(path, value)
        elif key == "policies":
            self._check_table(path, key, value)
            for name, policy in value.items():
                with self.gathering():
                    if not valid_name(name):
                        raise InputError(
                            path,
                            f"policies.{name}",
                            f"bad policy name: expected {NAME_EXPECTED} (it is written to events.csv)",
                        )
                    self._check_override(path, name, policy, inherited)
        elif key in ("extends", "name", "description"):
            self._expect(isinstance(value, str), path, key, "a string", value)
            if key == "name" and not valid_name(value):
                raise InputError(path, key, f"expected {NAME_EXPECTED} (it names the run folder), got {value!r}")
        else:
            raise InputError(path, key, f"unknown key; {suggest(key, [*TOP_KEYS, *PARAMETERS])}")

    def _expect(self, ok: bool, path: Path, key: str, expected: str, value: Any) -> None:
        if not ok:
            raise InputError(path, key, f"expected {expected}, got {value!r}")

    def _check_table(self, path: Path, key: str, value: Any) -> None:
        self._expect(isinstance(value, dict), path, key, "a table", value)

    def _number(self, path: Path, key: str, value: Any, low: float | None, high: float | None) -> float:
        self._expect(_is_number(value), path, key, "a number", value)
        self._expect(math.isfinite(value), path, key, "a finite number", value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(path, key, f"value {value} is out of range: expected {low} to {high}")
        return float(value)

    def _check_run(self, path: Path, run: Any) -> None:
        self._check_table(path, "run", run)
        for key, value in run.items():
            with self.gathering():
                self._check_run_key(path, key, value)

    def _check_run_key(self, path: Path, key: str, value: Any) -> None:
        where = f"run.{key}"
        if key in ("start", "end"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            self._expect(ok, path, where, f"a year between {FIRST_YEAR} and {LAST_YEAR}", value)
            if not FIRST_YEAR <= value <= LAST_YEAR:
                raise InputError(path, where, f"year {value} is out of range: expected {FIRST_YEAR} to {LAST_YEAR}")
        elif key == "seed":
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED
            self._expect(ok, path, where, f"an integer from 0 to {MAX_SEED}", value)
        elif key == "method":
            if value not in METHODS:
                raise InputError(path, where, f"unknown method {value!r}; {suggest(str(value), METHODS)}")
        else:
            raise InputError(path, where, f"unknown key; {suggest(key, tuple(RUN_DEFAULTS))}")

    def _labels(self, dims: str) -> tuple[str, ...]:
        return self.regions.codes if dims == "region" else FIRM_SECTORS

    def _check_group(self, path: Path, group: str, table: Any) -> None:
        self._check_table(path, group, table)
        for name, value in table.items():
            with self.gathering():
                self._check_parameter(path, group, name, value)

    def _check_parameter(self, path: Path, group: str, name: str, value: Any) -> None:
        key = f"{group}.{name}"
        if name not in PARAMETERS[group]:
            raise InputError(path, key, f"unknown parameter; {suggest(name, tuple(PARAMETERS[group]))}")
        spec = PARAMETERS[group][name]
        low, high = spec["range"]
        if spec["dims"] and isinstance(value, dict):
            labels = self._labels(spec["dims"])
            for label, item in value.items():
                if label not in labels:
                    raise InputError(path, f"{key}.{label}", f"unknown {spec['dims']}; {suggest(label, labels)}")
                self._number(path, f"{key}.{label}", item, low, high)
        else:
            kind = f"a number or a table keyed by {spec['dims']}" if spec["dims"] else "a number"
            if not _is_number(value):
                raise InputError(path, key, f"expected {kind}, got {value!r}")
            self._number(path, key, value, low, high)

    def _check_override(self, path: Path, name: str, policy: Any, inherited: dict[str, Any]) -> None:
        """One ``[policies.NAME]`` table of one file: a new policy, or an override of an inherited one."""
        key = f"policies.{name}"
        self._check_table(path, key, policy)
        parent = inherited.get(name)
        kind = policy.get("kind")
        if parent is None and kind is None:
            close = difflib.get_close_matches(name, list(inherited), n=1)
            hint = f"did you mean the inherited policy {close[0]!r}? or " if close else ""
            raise InputError(
                path,
                f"{key}.kind",
                f"missing: no policy {name!r} is inherited to override; {hint}"
                f"give a kind (one of {', '.join(POLICY_KINDS)})",
            )
        if parent is not None and kind is not None and kind != parent.get("kind"):
            raise InputError(
                path,
                f"{key}.kind",
                f"the inherited policy {name!r} is of kind {parent.get('kind')!r} "
                f"(from {self.defined_in[name].name}); an override cannot change its kind to {kind!r} "
                "(give the new policy another name, and disable the old one with enabled = false)",
            )
        self._check_policy(path, key, policy, partial=True, kind=parent["kind"] if kind is None else None)
        if kind is not None:
            self.defined_in[name] = path
        for field_name in policy:
            self.set_in[name, field_name] = (self.files, path)

    def _check_policy(self, path: Path, key: str, policy: Any, partial: bool, kind: str | None = None) -> None:
        self._check_table(path, key, policy)
        kind = policy.get("kind", kind)
        if kind is None:
            raise InputError(path, f"{key}.kind", f"missing; expected one of {', '.join(POLICY_KINDS)}")
        if not isinstance(kind, str) or kind not in POLICY_KINDS:
            raise InputError(
                path, f"{key}.kind", f"unknown policy kind {kind!r}; {suggest(str(kind), tuple(POLICY_KINDS))}"
            )
        fields = POLICY_KINDS[kind]
        for name, value in policy.items():
            with self.gathering():
                self._check_field(path, key, kind, name, value)
        if not partial:
            for name, spec in fields.items():
                if spec.required and name not in policy:
                    self.errors.append(InputError(path, f"{key}.{name}", f"missing; expected {spec.doc} ({spec.type})"))

    def _check_field(self, path: Path, key: str, kind: str, name: str, value: Any) -> None:
        fields = POLICY_KINDS[kind]
        where = f"{key}.{name}"
        if name == "kind":
            return
        if name == "enabled":
            self._expect(isinstance(value, bool), path, where, "true or false", value)
        elif name not in fields:
            article = "an" if kind[0] in "aeiou" else "a"
            raise InputError(
                path, where, f"unknown field for {article} {kind} policy; {suggest(name, (*fields, 'enabled'))}"
            )
        else:
            self._value(path, where, fields[name], value)

    def _value(self, path: Path, key: str, spec: Field, value: Any) -> Any:
        """Check one policy field and return it in model form (dates as decimal years)."""
        regions = self.regions.codes
        if spec.type == "date":
            return decimal_year(value, path, key)
        if spec.type in ("number", "integer"):
            if spec.type == "integer":
                self._expect(isinstance(value, int) and not isinstance(value, bool), path, key, "an integer", value)
            number = self._number(path, key, value, spec.low, spec.high)
            return int(value) if spec.type == "integer" else number
        if spec.type == "bool":
            self._expect(isinstance(value, bool), path, key, "true or false", value)
            return value
        choices = {
            "region": regions,
            "regions": regions,
            "sector": FIRM_SECTORS,
            "sectors": FIRM_SECTORS,
            "kind": INSTITUTION_KINDS,
            "sector_table": FIRM_SECTORS,
        }[spec.type]
        if spec.type == "sector_table":
            self._check_table(path, key, value)
            for label, item in value.items():
                if label not in choices:
                    raise InputError(path, f"{key}.{label}", f"unknown sector; {suggest(label, choices)}")
                self._number(path, f"{key}.{label}", item, spec.low, spec.high)
            return {label: float(value.get(label, 0.0)) for label in choices}
        items = value if spec.type in ("regions", "sectors") and isinstance(value, list) else [value]
        if spec.type in ("regions", "sectors") and not isinstance(value, list):
            self._expect(False, path, key, f"a list of {spec.type}", value)
        if spec.type in ("regions", "sectors") and not value:
            raise InputError(path, key, f"expected at least one of {', '.join(choices)}, got an empty list")
        for item in items:
            if not isinstance(item, str) or item not in choices:
                what = {"kind": "institution kind"}.get(spec.type, spec.type.rstrip("s"))
                raise InputError(path, key, f"unknown {what} {item!r}; {suggest(str(item), choices)}")
        return value

    def resolve_policy(self, fallback: Path, name: str, policy: dict[str, Any]) -> dict[str, Any]:
        """A merged policy with defaults filled in; errors name the file that set the field concerned."""
        key = f"policies.{name}"

        def source(field_name: str) -> tuple[int, Path]:
            return self.set_in.get((name, field_name), (0, self.defined_in.get(name, fallback)))

        # fields were checked in the file that set them; what is left is what only the merge shows
        self._check_policy(self.defined_in.get(name, fallback), key, policy, partial=False)
        self.raise_gathered()
        fields = POLICY_KINDS[policy["kind"]]
        resolved: dict[str, Any] = {"kind": policy["kind"], "name": name}
        for field_name, spec in fields.items():
            value = policy.get(field_name, spec.default)
            if field_name in policy:
                value = self._value(source(field_name)[1], f"{key}.{field_name}", spec, value)
            resolved[field_name] = self._default(value, resolved)
        if "start" in policy and "end" in policy and resolved["end"] < resolved["start"]:
            (start_at, start_file), (end_at, end_file) = source("start"), source("end")
            if start_at > end_at:  # the start was moved past an inherited end
                raise InputError(
                    start_file,
                    f"{key}.start",
                    f"starts after it ends: start {policy['start']}, end {policy['end']} (set in {end_file.name})",
                )
            where = "" if start_file == end_file else f" (set in {start_file.name})"
            raise InputError(
                end_file, f"{key}.end", f"ends before it starts: end {policy['end']}, start {policy['start']}{where}"
            )
        self._check_meaning(key, resolved, source)
        return resolved

    def _check_meaning(self, key: str, p: dict[str, Any], source: Any) -> None:
        """What only the whole policy shows: a rail line or a move that goes nowhere."""
        if p["kind"] == "rail" and p["from"] == p["to"]:
            raise InputError(
                source("to")[1], f"{key}.to", f"same region as from ({p['to']!r}): a rail line joins two regions"
            )
        if p["kind"] == "institution_move" and p["to"] in p["from"]:
            raise InputError(
                source("to")[1],
                f"{key}.to",
                f"{p['to']!r} is also in from: institutions cannot move to the region they are in",
            )

    def _default(self, value: Any, resolved: dict[str, Any]) -> Any:
        beijing = [c for c, b in zip(self.regions.codes, self.regions.beijing) if b]
        named = {
            "beijing": beijing,
            "outside_beijing": [c for c in self.regions.codes if c not in beijing],
            "all": list(FIRM_SECTORS),
            "never": np.inf,
            "start": resolved.get("start"),
        }
        return named[value] if isinstance(value, str) and value in named else value


def _resolved(path: Path, named_by: Path | None = None) -> Path:
    """An absolute path without symbolic links; a loop of links is bad input, not a crash."""
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop before Python 3.13
        where, key = (named_by, "extends") if named_by else (path, "")
        raise InputError(
            where, key, f"cannot resolve {str(path)!r}: {getattr(error, 'strerror', None) or error}"
        ) from None


def _resolve_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The file and the files it extends, base first (at most MAX_EXTENDS files)."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: list[Path] = []
    path = _resolved(path)
    while True:
        if path in seen:
            cycle = " -> ".join(p.name for p in (*seen, path))
            raise InputError(seen[-1], "extends", f"extends cycle: {cycle}")
        if len(seen) >= MAX_EXTENDS:
            raise InputError(seen[-1], "extends", f"extends chain too long: more than {MAX_EXTENDS} files")
        seen.append(path)
        doc = _read(path)
        chain.append((path, doc))
        parent = doc.get("extends")
        if parent is None:
            return chain[::-1]
        if not isinstance(parent, str):
            raise InputError(path, "extends", f"expected a file name, got {parent!r}")
        parent_path = _resolved(path.parent / parent, named_by=path)
        if not parent_path.exists():
            raise InputError(path, "extends", f"file {parent!r} not found (looked in {path.parent})")
        if not parent_path.is_file():
            raise InputError(path, "extends", f"expected a TOML file, got {parent!r} (not a file)")
        path = parent_path


def source_files(path: str | Path) -> list[Path]:
    """The files a scenario is read from (itself and what it extends), resolved: a run must not overwrite them."""
    return [file for file, _ in _resolve_chain(Path(path))]


def _is_number(value: Any) -> bool:
    """An int or float (not a bool) that fits a float; huge TOML integers do not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _resolve_parameters(document: dict[str, Any], regions: Regions) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for group, table in PARAMETERS.items():
        overrides = document.get(group, {})
        for name, spec in table.items():
            value = overrides.get(name, spec["value"])
            if spec["dims"]:
                labels = regions.codes if spec["dims"] == "region" else FIRM_SECTORS
                default = spec["value"]
                if isinstance(value, dict):
                    base = default if isinstance(default, dict) else {label: default for label in labels}
                    value = {**base, **value}
                    resolved[f"{group}.{name}"] = np.array([float(value[label]) for label in labels])
                else:
                    resolved[f"{group}.{name}"] = np.full(len(labels), float(value))
            else:
                resolved[f"{group}.{name}"] = float(value)
    return resolved


def load_scenario(path: str | Path) -> Scenario:
    """Load, merge (``extends``) and validate a scenario file."""
    path = Path(path)
    regions = load_regions()
    validator = _Validator(regions)
    chain = _resolve_chain(path)
    document: dict[str, Any] = {}
    for file, doc in chain:
        validator.check_file(file, doc, document.get("policies", {}))
        document = _merge(document, doc)
    document.pop("extends", None)
    document["name"] = chain[-1][1].get("name", path.stem)  # a story is named by its own file, not its parent
    if not valid_name(document["name"]):
        raise InputError(
            path, "name", f'the file name {path.stem!r} cannot name a run folder; add name = "..." ({NAME_EXPECTED})'
        )
    run = {**RUN_DEFAULTS, **document.get("run", {})}
    if run["end"] <= run["start"]:
        # name the last file that set either year: that is where the clash was made
        setters = [(file, key) for file, doc in chain for key in ("start", "end") if key in doc.get("run", {})]
        file, key = setters[-1] if setters else (chain[-1][0], "end")
        raise InputError(
            file, f"run.{key}", f"expected run.end after run.start, got start {run['start']} and end {run['end']}"
        )
    document["run"] = run
    policies = {}
    for name, policy in document.get("policies", {}).items():
        with validator.gathering():
            resolved = validator.resolve_policy(chain[-1][0], name, policy)
            if policy.get("enabled", True):
                policies[name] = resolved
    validator.raise_gathered()
    return Scenario(
        name=document["name"],
        path=path,
        description=document.get("description", ""),
        start=run["start"],
        end=run["end"],
        seed=run["seed"],
        method=run["method"],
        parameters=_resolve_parameters(document, regions),
        policies=policies,
        document=document,
        regions=regions,
    )
