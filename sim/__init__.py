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
from typing import Any

from sim.errors import InputError
from sim.scenario import Scenario, load_scenario


def _version() -> str:
    """The installed package's version (importlib.metadata: 20-40 ms, so looked up on first use)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("beijing-relocation-sim")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0+source"


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
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "__version__"})


__all__ = ["InputError", "Scenario", "__version__", "load_scenario", *_LAZY]
