"""Calibration targets (``calibration/targets.toml``): what each is, and the model's value for it.

A target names an output, the coordinates to select (lists summed), a time (or the
maximum over time), optionally a change since an earlier time or a share of a larger
selection (or of several
outputs' selections summed), the observed value and a tolerance (relative, or absolute in the output's
unit). The model never reads targets while it runs; calibration and the fit report do.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import InputError

TARGETS = Path(__file__).resolve().parents[2] / "calibration" / "targets.toml"
RELATIONS = ("about", "at least", "nearly")


@dataclass(frozen=True)
class Target:
    name: str
    output: str
    time: float | str  # decimal year, or "max"
    value: float
    relation: str
    tolerance: float  # relative
    words: str
    meaning: str
    select: dict[str, Any] = field(default_factory=dict)
    change_from: float | None = None
    share_of: dict[str, Any] | list[dict[str, Any]] | None = None  # one selection, or terms summed
    tolerance_abs: float | None = None

    @property
    def sigma(self) -> float:
        """The misfit's 1-sigma width in the output's unit."""
        return self.tolerance_abs if self.tolerance_abs is not None else self.tolerance * abs(self.value)

    @property
    def outputs(self) -> set[str]:
        """Every output the target reads (a share's terms may name others)."""
        terms = self.share_of if isinstance(self.share_of, list) else [self.share_of or {}]
        return {self.output, *(term["output"] for term in terms if "output" in term)}

    def model_value(self, ds) -> np.ndarray:
        """The model's value for this target (a number per run if ``ds`` has a ``run`` dimension)."""
        values = _select(ds[self.output], self.select)
        if self.share_of is not None:
            values = values / self.whole(ds)
        if self.time == "max":
            return np.asarray(values.max("time"))
        now = values.sel(time=self.time, method="nearest", tolerance=1e-3)
        if self.change_from is not None:
            now = now - values.sel(time=self.change_from, method="nearest", tolerance=1e-3)
        return np.asarray(now)

    def whole(self, ds):
        """The denominator of a share: the output's selection, or terms naming their own ``output``, summed."""
        terms = self.share_of if isinstance(self.share_of, list) else [self.share_of]
        total = 0
        for term in terms:
            term = dict(term)
            total = total + _select(ds[term.pop("output", self.output)], term)
        return total

    def misfit(self, model: np.ndarray) -> np.ndarray:
        """Signed misfit in sigmas; one-sided relations count only the wrong side."""
        z = (np.asarray(model, float) - self.value) / self.sigma
        if self.relation == "at least":
            return np.minimum(z, 0.0)
        if self.relation == "nearly":  # just under the value: over it is a miss, a little under is fine
            return np.where(z > 0, z, np.minimum(z + 1.0, 0.0))
        return z


def _select(values, select: dict[str, Any]):
    for dim, labels in select.items():
        values = values.sel({dim: labels})
        if isinstance(labels, list):
            values = values.sum(dim)
    return values


def load_targets(path: Path = TARGETS) -> dict[str, Target]:
    """Every target of the file, checked: known relation, positive tolerance."""
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(path, "", f"cannot be read: {error}") from None
    targets = {}
    for name, entry in table.items():
        if entry.get("relation") not in RELATIONS:
            raise InputError(path, f"{name}.relation", f"expected one of {', '.join(RELATIONS)}")
        if not 0 < entry.get("tolerance", 0) < 1:
            raise InputError(path, f"{name}.tolerance", "expected a relative tolerance between 0 and 1")
        try:
            targets[name] = Target(name=name, **entry)
        except TypeError as error:
            raise InputError(path, name, f"unknown or missing field: {error}") from None
    return targets


def main(argv: list[str]) -> None:
    """``python -m sim.calibration.targets [SCENARIO]``: every target against a run of the scenario (Markdown)."""
    from sim.results import run
    from sim.scenario import load_scenario

    scenario = load_scenario(argv[0] if argv else "scenarios/historical.toml")
    ds = run(scenario)
    print(f"Targets against `{scenario.name}` (seed {scenario.seed}); misfit in sigmas of the tolerance.\n")
    print("| target | meaning | observed | model | misfit |\n|---|---|---|---|---|")
    for name, target in load_targets().items():
        value = float(target.model_value(ds))
        misfit = float(target.misfit(value))
        print(f"| {name} | {target.meaning} | {target.value:,.4g} | {value:,.4g} | {misfit:+.2f} |")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
