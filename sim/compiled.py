"""Whether the model's compiled path (numba, the optional ``fast`` extra) is used: the stocks' month.

The numpy code stays the reference: ``SIM_COMPILED=0`` in the environment forces it, and so
does mutmut's ``MUTANT_UNDER_TEST`` (the mutation run must exercise the numpy code it mutates).
``SIM_COMPILED=1`` asks for the compiled path wherever numba is installed (a sweep's workers
inherit it). The stocks' compiled month equals numpy's to rounding, so it runs only when asked
for, never because numba happens to be loaded: a run's numbers do not depend on what else its
process has loaded. (The firms' month is numpy's always: its compiled selections saved nothing
measurable; design record 57.)
"""

from __future__ import annotations

import os
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
    """The compiled path for a model: ``requested`` True, or None with ``SIM_COMPILED=1`` where numba is
    installed; the environment's numpy switch wins over both. ``True`` without numba is an error (asked for
    explicitly)."""
    if forced_numpy() or requested is False:
        return False
    if requested and not numba_available():
        raise ImportError("compiled=True needs numba: python -m pip install -e '.[fast]'")
    return bool(requested) or (_switch() == "1" and numba_available())
