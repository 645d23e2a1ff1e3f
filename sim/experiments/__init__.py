"""Experiments: sweep files, designs, executors (processes, Dask), resumable sweep folders, sensitivity.

    from sim.experiments import load_sweep, sweep
    result = sweep("scenarios/sweeps/uncertainty_lhs.toml", out="sweeps/lhs", progress=print)
    dataset = result.dataset()       # kept outputs, ``run`` labeled by the design values and seeds
    ds, failures = evaluate(scenario, [{"population.jobs_weight": 2.5}, ...], seeds=[1, ...])  # in memory

The sampling and analysis libraries (SALib, tqdm, dask.distributed) are the optional
``experiments`` extra; they are imported only where used.
"""

from sim.experiments.execute import evaluate
from sim.experiments.folder import SweepResult, sweep
from sim.experiments.spec import Sweep, load_sweep

__all__ = ["Sweep", "SweepResult", "evaluate", "load_sweep", "sweep"]
