"""Shapley attribution of the policy effect over levers (groups of policies), across the calibration ensemble.

    python -m sim.calibration.shapley [SCENARIO] [--ensemble calibration/ensemble.csv] [--members 16]

A lever is every enabled policy of one kind that the counterfactual switches off (catalogue,
dispersal, admission control, clean-up, incentives, institution moves, construction); rail
openings stay on in every coalition, as in scenarios/counterfactual.toml. Each coalition of
levers is one full run with the others off, its agents' effects recorded; the ensemble's
stock-and-flow parameter sets are replayed on them (``sim.stockflow.replay``), so the
ensemble costs little beyond the 2^n full runs. The agents' block stays at the scenario's
values (the best fit): its spread across the ensemble is not propagated here.

Shapley values add up: for each outcome and member, the levers' values sum to the full
scenario minus the counterfactual (the efficiency property, tested).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sim.scenario import Scenario, load_scenario

BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]
LEVER_KINDS = {
    "catalogue": "catalogue",
    "dispersal": "dispersal",
    "admission_control": "admission control",
    "demolition": "housing removal",  # the clean-up campaign, the 2017 safety campaign, the core's relief
    "incentive": "destination incentives",
    "institution_move": "institution moves",
    "construction": "Xiong'an construction",
}
"""Policy kinds the counterfactual switches off, each one lever (rail is infrastructure, kept on)."""
OUTCOMES = ("change_2016_2019", "level_2035")


def levers(scenario: Scenario) -> dict[str, list[str]]:
    """Lever name -> the scenario's enabled policies of that kind."""
    found: dict[str, list[str]] = {}
    for name, policy in scenario.policies.items():
        if policy["kind"] in LEVER_KINDS:
            found.setdefault(LEVER_KINDS[policy["kind"]], []).append(name)
    return found


def shapley(value: Callable[[frozenset], np.ndarray], players: Sequence[str]) -> dict[str, np.ndarray]:
    """Exact Shapley values of a game given by ``value`` (of a coalition; arrays are games side by side)."""
    n = len(players)
    result = {}
    for player in players:
        others = [p for p in players if p != player]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                total = total + weight * (value(s | {player}) - value(s))
        result[player] = total
    return result


@dataclass(frozen=True)
class Attribution:
    levers: tuple[str, ...]
    values: dict[str, dict[str, np.ndarray]]  # outcome -> lever -> value per member [persons]
    total: dict[str, np.ndarray]  # outcome -> full scenario minus counterfactual, per member

    def shares(self, outcome: str) -> dict[str, np.ndarray]:
        return {k: v / self.total[outcome] for k, v in self.values[outcome].items()}


def _coalition_outcomes(task: tuple[Scenario, list[str], list[dict[str, float]]]) -> np.ndarray:
    """One coalition: a full run with ``off`` disabled (effects recorded), the members replayed: (member, outcome)."""
    from sim.calibration.fit import record_effects
    from sim.space import with_values
    from sim.stockflow import replay

    scenario, off, members = task
    scenario = with_values(scenario, {f"policies.{name}.enabled": False for name in off}, "coalition")
    effects = record_effects(scenario, scenario.seed)
    times, values = replay(scenario, effects, members or [{}], ("population",))
    codes = list(scenario.regions.codes)
    beijing = values["population"][:, :, [codes.index(c) for c in BEIJING]].sum(axis=2)  # (time, member)
    at = {year: int(np.argmin(np.abs(times - year))) for year in (2017.0, 2020.0, 2035.0)}
    return np.stack([beijing[at[2020.0]] - beijing[at[2017.0]], beijing[at[2035.0]]], axis=1)


def attribute(
    scenario: Scenario,
    members: Sequence[dict[str, float]] = (),
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Attribution:
    """Shapley values of each lever for Beijing's 2016-2019 change and 2035 level, per ensemble member."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    scenario = replace(scenario, end=max(scenario.end, 2035))
    groups = levers(scenario)
    names = tuple(groups)
    coalitions = [frozenset(c) for size in range(len(names) + 1) for c in itertools.combinations(names, size)]
    tasks = [
        (scenario, [p for lever in names if lever not in c for p in groups[lever]], list(members)) for c in coalitions
    ]
    outcomes: dict[frozenset, np.ndarray] = {}
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, (c, result) in enumerate(zip(coalitions, pool.map(_coalition_outcomes, tasks)), 1):
                outcomes[c] = result
                if progress:
                    progress(i, len(tasks))
    else:
        for i, (c, task) in enumerate(zip(coalitions, tasks), 1):
            outcomes[c] = _coalition_outcomes(task)
            if progress:
                progress(i, len(tasks))
    values = {outcome: shapley(lambda s, k=k: outcomes[s][:, k], names) for k, outcome in enumerate(OUTCOMES)}
    everything, nothing = outcomes[frozenset(names)], outcomes[frozenset()]
    total = {outcome: everything[:, k] - nothing[:, k] for k, outcome in enumerate(OUTCOMES)}
    return Attribution(names, values, total)


def stock_flow_members(path: Path, count: int) -> list[dict[str, float]]:
    """``count`` members spread over a calibration ensemble, their stock-and-flow parameters only."""
    from sim.outputs.sources import read_ensemble
    from sim.space import STOCK_FLOW_GROUPS

    return [
        {k: v for k, v in member.items() if k.split(".")[0] in STOCK_FLOW_GROUPS}
        for member in read_ensemble(path, count)
    ]


def table(result: Attribution) -> str:
    """Markdown: each lever's share of the effect (median and 5-95 % over the members) for both outcomes."""
    lines = [
        "| lever | share of the 2016-2019 change's effect | share of the 2035 gap |",
        "|---|---|---|",
    ]
    for lever in result.levers:
        cells = []
        for outcome in OUTCOMES:
            share = 100 * result.shares(outcome)[lever]
            low, mid, high = np.percentile(share, [5, 50, 95])
            cells.append(f"{mid:.0f} % ({low:.0f} to {high:.0f})")
        lines.append(f"| {lever} | {' | '.join(cells)} |")
    totals = [
        f"{np.median(result.total[o]) / 1e4:+.1f} ({np.percentile(result.total[o], 5) / 1e4:+.1f} to "
        f"{np.percentile(result.total[o], 95) / 1e4:+.1f})"
        for o in OUTCOMES
    ]
    lines.append(f"| **all levers, 10k persons** | {totals[0]} | {totals[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sim.calibration.shapley")
    parser.add_argument("scenario", nargs="?", default="scenarios/historical.toml")
    parser.add_argument("--ensemble", default="calibration/ensemble.csv")
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    scenario = load_scenario(args.scenario)
    members = stock_flow_members(Path(args.ensemble), args.members)
    result = attribute(scenario, members, args.workers)
    print(f"Shapley attribution, {scenario.name}, {len(members)} ensemble members ({args.ensemble}):\n")
    print(table(result))


if __name__ == "__main__":
    main(sys.argv[1:])
