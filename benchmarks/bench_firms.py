"""Firm agents' speed: agent-steps per second of the project's firm month and of the same workload in Mesa.

    PYTHONPATH=. python benchmarks/bench_firms.py                  # project only
    PYTHONPATH=. python benchmarks/bench_firms.py --mesa           # and Mesa (pip install mesa==3.3.1)

The workload is the counterfactual scenario's firms (no dispersal, no catalogue): each month
every agent ages, may exit (hazard by sector, age and rent), may relocate (hazard by rent,
destination by the logit, own region included, splitting into a finer-resolved region),
and would-be entrants and Zhongguancun branches arrive by region and sector; rents follow
the agents' jobs and floor space. Population is held at 2014 (the firms alone); travel
times follow the scenario's timeline. Both sides start from the same 49,380 agents with
the same parameters and use the same region-level functions (rents, the destination
logit, would-be entrants); they differ in how the per-agent work is done: whole-array numpy
over slots here, one ``mesa.Agent`` per agent with a Python ``step`` there (Mesa's
idiom: ``model.agents.shuffle_do("step")``). An agent-step is one agent living through one
month. Figures are medians of ``--repeat`` interleaved runs.
"""

from __future__ import annotations

import argparse
import bisect
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import sim
from sim.firms import HIGH_END, N_SECTORS, YOUNG_FIRM_AGE, rent_index, space_starts
from sim.model import DT, Model

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "counterfactual.toml"


def project(months: int) -> tuple[float, int, float]:
    """Seconds in ``Firms.step``, agent-steps, and the real firms at the end."""
    scenario = sim.load_scenario(SCENARIO)
    model = Model(scenario, [scenario.seed])
    seconds, agent_steps = 0.0, 0
    for month in range(months):
        model.streams.begin_month(month)  # as Model.step
        model.timeline.advance(month)
        ctx = model._firm_context(scenario.start + month * DT, model.timeline.levers())
        agent_steps += int(np.count_nonzero(model.firms.alive))
        started = time.perf_counter()
        model.firms.step(ctx)
        seconds += time.perf_counter() - started
    return seconds, agent_steps, float(model.firms.counts().sum())


def mesa_workload(months: int) -> tuple[float, int, float]:
    """The same workload with one mesa.Agent per firm agent (seconds of model steps, agent-steps, real firms)."""
    import mesa

    scenario = sim.load_scenario(SCENARIO)
    reference = Model(scenario, [scenario.seed])  # the same start, parameters and region-level functions
    firms = reference.firms
    p = {name: np.asarray(value)[0] for name, value in firms.params.__dict__.items()}
    table = firms.table

    class FirmAgent(mesa.Agent):
        def __init__(self, model, region, sector, weight, employees, age, sensitivity):
            super().__init__(model)
            self.region, self.sector, self.weight = region, sector, weight
            self.employees, self.age, self.sensitivity = employees, age, sensitivity
            model.book(self, +1.0)

        def step(self) -> None:
            model = self.model
            self.age += DT
            excess = model.rent[self.region] - 1.0
            hazard = (
                model.exit_rate[self.sector]
                * (1 + model.young_exit_boost * math.exp(-self.age / YOUNG_FIRM_AGE))
                * math.exp(min(model.rent_exit_response * self.sensitivity * excess, 50.0))
            )
            if model.random.random() < -math.expm1(-hazard * DT):
                model.book(self, -1.0)
                self.remove()
                return
            hazard = model.relocation_rate * math.exp(min(model.cost_push * self.sensitivity * excess, 50.0))
            if model.random.random() < -math.expm1(-hazard * DT):
                cumulative = model.cumulative[self.sector][self.region]
                destination = min(
                    bisect.bisect_right(cumulative, model.random.random() * cumulative[-1]), len(cumulative) - 1
                )
                if destination != self.region:
                    self.move(destination)

        def move(self, destination: int) -> None:
            model = self.model
            model.book(self, -1.0)
            self.region = destination
            model.book(self, +1.0)
            target = table.agent_weight[destination, self.sector]
            if self.weight > target:  # split into the destination's resolution, traits kept
                pieces, remainder = int(self.weight // target), self.weight % target
                model.book(self, -1.0)
                self.weight = target
                model.book(self, +1.0)
                for weight in [target] * (pieces - 1) + ([remainder] if remainder > 0 else []):
                    FirmAgent(model, destination, self.sector, weight, self.employees, self.age, self.sensitivity)

    class FirmModel(mesa.Model):
        def __init__(self, seed: int) -> None:
            super().__init__(seed=seed)
            n = len(scenario.regions)
            self.firms_by_cell, self.jobs_by_cell = np.zeros((n, N_SECTORS)), np.zeros((n, N_SECTORS))
            self.exit_rate, self.young_exit_boost = p["exit_rate"], float(p["young_exit_boost"])
            self.rent_exit_response, self.cost_push = float(p["rent_exit_response"]), float(p["cost_push"])
            self.relocation_rate = float(p["relocation_rate"])
            self.space, self.pipeline = firms.space[0].copy(), firms.space_pipeline[0].copy()
            run, slot = np.nonzero(firms.alive)
            for region, sector, weight, employees, age, sensitivity in zip(
                firms.region[run, slot].tolist(),
                firms.sector[run, slot].tolist(),
                firms.weight[run, slot].tolist(),
                firms.employees[run, slot].tolist(),
                firms.age[run, slot].tolist(),
                firms.cost_sensitivity[run, slot].tolist(),
            ):
                FirmAgent(self, region, sector, weight, employees, age, sensitivity)

        def book(self, agent, sign: float) -> None:
            self.firms_by_cell[agent.region, agent.sector] += sign * agent.weight
            self.jobs_by_cell[agent.region, agent.sector] += sign * agent.weight * agent.employees

        def step_month(self, ctx) -> None:
            counts, jobs = self.firms_by_cell[None].copy(), self.jobs_by_cell.sum(axis=1)[None]
            rent = rent_index(jobs, self.space[None], p["space_occupancy_2014"][None], p["rent_elasticity"][None])
            self.rent = rent[0].tolist()
            probs = firms.destination_probabilities(ctx, counts, rent)[0]
            self.cumulative = np.cumsum(probs, axis=-1).tolist()
            self.agents.shuffle_do("step")
            # entry and Zhongguancun branches: Poisson counts by region and sector, as in Firms._enter
            wanted = firms.would_be_entrants(ctx, rent)[0]
            entrants = self.rng.poisson(wanted / table.agent_weight)
            outside = firms.destination_probabilities(ctx, counts, rent, ~scenario.regions.beijing)[0]
            zhongguancun = p["zhongguancun_share"] * counts[0, scenario.regions.beijing, HIGH_END].sum()
            branching = p["branch_rate"] * zhongguancun * DT * outside[HIGH_END, firms.central]
            entrants[:, HIGH_END] += self.rng.poisson(branching / table.agent_weight[:, HIGH_END])
            spread = float(p["cost_sensitivity_spread"])
            for region, sector in zip(*np.nonzero(entrants)):
                for _ in range(int(entrants[region, sector])):
                    sensitivity = float(self.rng.lognormal(-spread * spread / 2, spread))
                    FirmAgent(
                        self,
                        int(region),
                        int(sector),
                        table.agent_weight[region, sector],
                        table.employees_per_firm[region, sector],
                        0.0,
                        sensitivity,
                    )
            starts = space_starts(
                jobs,
                self.space[None],
                self.pipeline.sum(axis=1)[None],
                p["space_occupancy_2014"][None],
                p["space_adjustment_time"][None],
                p["space_max_build_rate"][None],
            )[0]
            outflow = self.pipeline * 3 / p["space_construction_time"]
            inflow = np.concatenate([starts[:, None], outflow[:, :-1]], axis=1)
            self.pipeline = self.pipeline + (inflow - outflow) * DT
            self.space = self.space + outflow[:, -1] * DT

    model = FirmModel(scenario.seed)
    seconds, agent_steps = 0.0, 0
    for month in range(months):
        reference.timeline.advance(month)
        ctx = reference._firm_context(scenario.start + month * DT, reference.timeline.levers())
        agent_steps += len(model.agents)
        started = time.perf_counter()
        model.step_month(ctx)
        seconds += time.perf_counter() - started
    return seconds, agent_steps, float(model.firms_by_cell.sum())


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--months", type=int, default=252, help="months of the project's run (default 2014-2035)")
    options.add_argument("--mesa-months", type=int, default=12, help="months of the Mesa run")
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--mesa", action="store_true", help="also run the Mesa version")
    args = options.parse_args()
    ours, theirs = [], []
    for _ in range(args.repeat):  # interleaved
        ours.append(project(args.months))
        if args.mesa:
            theirs.append(mesa_workload(args.mesa_months))
    rate = statistics.median(steps / seconds for seconds, steps, _ in ours)
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"project: {args.months} months, {ours[0][1]:,} agent-steps, median {rate / 1e6:.2f} M agent-steps/s")
    per_month = statistics.median(s for s, _, _ in ours) / args.months * 1e3
    print(f"  per month {per_month:.2f} ms; firms at the end {ours[0][2]:,.0f}")
    if args.mesa:
        import mesa

        mesa_rate = statistics.median(steps / seconds for seconds, steps, _ in theirs)
        print(
            f"mesa {mesa.__version__}: {args.mesa_months} months, {theirs[0][1]:,} agent-steps, "
            f"median {mesa_rate / 1e6:.3f} M agent-steps/s; firms at the end {theirs[0][2]:,.0f}"
        )
        print(f"ratio: {rate / mesa_rate:.0f}x")


if __name__ == "__main__":
    main()
