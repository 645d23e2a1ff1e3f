"""Writing a fit: the fitted values as a scenario fragment, the ensemble, and the fit table.

``calibration/fitted.toml`` holds the best fit's values as parameter groups, so a scenario
uses them by ``extends`` and every fitted number traces back to the command that made it;
``calibration/ensemble.csv`` holds the ensemble (one row per parameter set, with its log
posterior); ``calibration/fit.md`` compares each target with the best fit and the
ensemble's 5-95 % range.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tomli_w

from sim.calibration.fit import Fit
from sim.calibration.targets import Target


def fitted_document(fit: Fit, command: str, kinds: dict[str, str]) -> str:
    """The best fit as a TOML scenario fragment of parameter groups and policy fields, with how it was made.

    A policy field is written under its policy with the policy's ``kind`` (``kinds``), so the
    fragment is a valid base file: the scenario that extends it defines the policy's other fields.
    """
    groups: dict[str, dict] = {}
    for address, value in fit.best.items():
        parts = address.split(".")
        if parts[0] == "policies":
            policy = groups.setdefault("policies", {}).setdefault(parts[1], {"kind": kinds[parts[1]]})
            policy[parts[2]] = round(value, 6)
        elif len(parts) == 3:  # one region's or sector's entry: a table with only the keys that change
            groups.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = round(value, 6)
        else:
            groups.setdefault(parts[0], {})[parts[1]] = round(value, 6)
    header = (
        "# Fitted by calibration (do not edit by hand): regenerate with\n"
        f"#   {command}\n"
        f"# seed {fit.seed}, {fit.evaluations} parameter sets evaluated, {len(fit.samples)} in the ensemble;\n"
        "# fit.md beside this file compares every target with this fit and the ensemble.\n"
    )
    return header + tomli_w.dumps(groups)


def fit_table(
    targets: dict[str, Target],
    best: dict[str, float],
    ensemble: dict[str, np.ndarray],
    fitted: set[str] | None = None,
) -> str:
    """Markdown: target, observed, best fit, ensemble 5-95 %, misfit in sigmas, within tolerance.

    Targets not in ``fitted`` (when given) are marked out-of-sample, with whether the observed
    value falls inside the ensemble's range.
    """
    lines = [
        "| target | meaning | observed | best fit | ensemble 5-95 % | misfit [sigma] | within tolerance |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, target in targets.items():
        value = best[name]
        low, high = np.percentile(ensemble[name], [5, 95])
        z = float(target.misfit(value))
        lines.append(
            f"| {name} | {target.meaning} | {target.value:,.4g} | {value:,.4g} | {low:,.4g} to {high:,.4g} | "
            f"{z:+.2f} | {'yes' if abs(z) <= 1 else 'no'}{_held_out(name, target, low, high, fitted)} |"
        )
    return "\n".join(lines) + "\n"


def _held_out(name: str, target: Target, low: float, high: float, fitted: set[str] | None) -> str:
    if fitted is None or name in fitted:
        return ""
    inside = "inside" if low <= target.value <= high else "outside"
    return f" (out-of-sample; observed {inside} the ensemble's range)"


def write_ensemble(fit: Fit, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        # a tied parameter's value under each of its addresses, so readers need not know the ties
        writer.writerow(["sample", *[a for p in fit.parameters for a in p.addresses], "log_posterior"])
        for i, (values, logp) in enumerate(zip(fit.overrides(), fit.log_posterior)):  # the values runs take
            writer.writerow([i, *[f"{v:.6g}" for v in values.values()], f"{logp:.6g}"])
