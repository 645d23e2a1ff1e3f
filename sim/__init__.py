"""Simulator of Beijing's non-capital-function relocation (北京非首都功能疏解).

import sim
scenario = sim.load_scenario("scenarios/historical.toml")
results = sim.run(scenario)            # an xarray.Dataset: time x region x sector

``import sim`` loads only the scenario layer (numpy); xarray, pandas and matplotlib are
imported on first use of ``sim.run``, ``sim.write_run`` or ``sim.compare``, so ``sim check``
and scripts that only validate stay fast, and no matplotlib backend is chosen for the user.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sim.errors import InputError
from sim.scenario import Scenario, load_scenario

try:
    __version__ = version("beijing-relocation-sim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

_LAZY = {
    "run": "sim.results",
    "run_batch": "sim.results",
    "write_run": "sim.runfolder",
    "compare": "sim.outputs.compare",
    "report": "sim.outputs.report",
    "export": "sim.outputs.export",
    "open_run": "sim.outputs.sources",
}
"""Public names whose modules pull in xarray or matplotlib: imported when first used."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["InputError", "Scenario", "__version__", "load_scenario", *_LAZY]
