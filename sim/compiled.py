"""Whether the model's compiled paths (numba, the optional ``fast`` extra) are used.

The numpy code stays the reference: ``SIM_COMPILED=0`` in the environment forces it, and so
does mutmut's ``MUTANT_UNDER_TEST`` (the mutation run must exercise the numpy code it mutates).
``SIM_COMPILED=1`` asks for the compiled paths wherever numba is installed (a sweep's workers
inherit it). Unset, a model uses the firms' compiled month (the same numbers) when numba is
already loaded in its process (the explore server, a calibration, a sweep worker that replayed
the stocks compiled), and the stocks' compiled month (equal to rounding) only when asked for
(``asked_for``). Loading numba costs
about 0.6 s of CPU and 120 MB of memory (numba, llvmlite and the scipy.linalg numba imports),
more than the compiled firm month saves on one run (about 0.1 s) and more memory than a 64-run
batch may take (docs/performance.md).
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec


def numba_available() -> bool:
    """numba can be imported (the ``fast`` extra is installed)."""
    return find_spec("numba") is not None


def _switch() -> str:
    return os.environ.get("SIM_COMPILED", "").strip()


def forced_numpy() -> bool:
    """The environment asks for the numpy reference path (``SIM_COMPILED=0`` or a mutmut run)."""
    return _switch() == "0" or "MUTANT_UNDER_TEST" in os.environ


def asked_for(requested: bool | None = None) -> bool:
    """Compiled paths asked for explicitly (``requested`` True or ``SIM_COMPILED=1``) and allowed.

    What changes numbers at the level of rounding (the stocks' compiled month) runs only when asked
    for, so that a run's numbers never depend on what else its process has loaded."""
    return use_compiled(requested) and (requested is True or _switch() == "1")


def use_compiled(requested: bool | None = None) -> bool:
    """Compiled paths for a model: ``None`` means when numba is importable and either ``SIM_COMPILED=1``
    or numba is already loaded in this process; ``True`` without numba is an error (asked for
    explicitly). The environment's numpy switch wins over both."""
    if forced_numpy() or requested is False:
        return False
    if requested and not numba_available():
        raise ImportError("compiled=True needs numba: python -m pip install -e '.[fast]'")
    if requested:
        return True
    return numba_available() and (_switch() == "1" or "numba" in sys.modules)
