"""Simulator of Beijing's non-capital-function relocation (北京非首都功能疏解).

import sim
scenario = sim.load_scenario("scenarios/historical.toml")
results = sim.run(scenario)            # an xarray.Dataset: time x region x sector
"""

from importlib.metadata import PackageNotFoundError, version

from sim.errors import InputError
from sim.results import run, run_batch
from sim.runfolder import write_run
from sim.scenario import Scenario, load_scenario

try:
    __version__ = version("beijing-relocation-sim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = ["InputError", "Scenario", "__version__", "load_scenario", "run", "run_batch", "write_run"]
