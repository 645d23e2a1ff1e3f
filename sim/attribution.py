"""One-at-a-time attribution: each policy switched off alone, and what it did to Beijing.

    python -m sim.attribution scenarios/historical.toml

prints, for every enabled policy of the scenario, Beijing's resident population change
over 2016-2019 (1 Jan 2017 to 1 Jan 2020, the bulletin's year-end 2016 to year-end 2019)
and its 2035 level with that policy disabled, against the full scenario and its
counterfactual with every policy off; plus the 2014 flows within and into Beijing.
One-at-a-time effects need not add up (the policies interact); the calibration issue's
Shapley attribution over its ensemble does. docs/model.md section 13 records the output.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim.results import run
from sim.scenario import Scenario, load_scenario

BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]


def without(scenario: Scenario, names: list[str], label: str) -> Scenario:
    """The scenario with the named policies switched off (its document and hash follow)."""
    document = {**scenario.document, "policies": dict(scenario.document.get("policies", {}))}
    for name in names:
        document["policies"][name] = {**document["policies"][name], "enabled": False}
    policies = {k: v for k, v in scenario.policies.items() if k not in names}
    return replace(scenario, name=f"{scenario.name}-{label}", policies=policies, document=document)


def beijing_summary(scenario: Scenario) -> dict[str, float]:
    """Beijing's population change over 2016-2019, level in 2020 and 2035 [10k persons]."""
    ds = run(scenario)
    beijing = ds.population.sel(region=BEIJING).sum("region") / 1e4
    return {
        "change_2016_2019": float(beijing.sel(time=2020.0) - beijing.sel(time=2017.0)),
        "2020": float(beijing.sel(time=2020.0)),
        "2035": float(beijing.sel(time=min(2035.0, float(ds.time[-1])))),
    }


def flows_2014(scenario: Scenario) -> dict[str, float]:
    """Flows at the start [10k persons/year]: within Beijing, into Beijing from elsewhere, and out."""
    ds = run(replace(scenario, end=scenario.start + 1)).isel(time=0)
    inside = np.isin(ds.region, BEIJING)
    flows = ds.migration.values
    return {
        "within_beijing": float(flows[np.ix_(inside, inside)].sum()) / 1e4,
        "into_beijing_from_modelled": float(flows[np.ix_(~inside, inside)].sum()) / 1e4,
        "into_beijing_from_outside": float(ds.in_from_outside.values[inside].sum()) / 1e4,
        "out_of_beijing": float(flows[np.ix_(inside, ~inside)].sum() + ds.out_to_outside.values[inside].sum()) / 1e4,
    }


def main(argv: list[str]) -> None:
    scenario = load_scenario(Path(argv[0]) if argv else Path("scenarios/historical.toml"))

    def line(label: str, result: dict[str, float]) -> None:
        print(f"{label:40s} {result['change_2016_2019']:15.1f} {result['2020']:8.1f} {result['2035']:8.1f}")

    print(f"{'policy switched off':40s} {'2016-19 change':>15s} {'2020':>8s} {'2035':>8s}   [10k persons]")
    line(f"(none: {scenario.name})", beijing_summary(scenario))
    for name in scenario.policies:
        line(name, beijing_summary(without(scenario, [name], name)))
    line("(all)", beijing_summary(without(scenario, list(scenario.policies), "none")))
    print("flows at the start, 10k persons/year:", {k: round(v, 1) for k, v in flows_2014(scenario).items()})


if __name__ == "__main__":
    main(sys.argv[1:])
