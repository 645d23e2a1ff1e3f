"""Whether the model's compiled paths (numba, the optional ``fast`` extra) are used.

The numpy code stays the reference: ``SIM_COMPILED=0`` in the environment forces it, and so
does mutmut's ``MUTANT_UNDER_TEST`` (the mutation run must exercise the numpy code it mutates).
"""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec

MIN_RUNS = 8
"""Batches from this size use the compiled paths by default: numba's start-up in a fresh process (about
0.2 s to import, 0.4-0.5 s for its first call, most of it importing scipy.linalg) costs more than the
compiled firm month saves on fewer runs (about 0.1 s of CPU a run; docs/performance.md)."""


def numba_available() -> bool:
    """numba can be imported (the ``fast`` extra is installed)."""
    return find_spec("numba") is not None


def forced_numpy() -> bool:
    """The environment asks for the numpy reference path (``SIM_COMPILED=0`` or a mutmut run)."""
    return os.environ.get("SIM_COMPILED", "").strip() == "0" or "MUTANT_UNDER_TEST" in os.environ


def use_compiled(requested: bool | None = None, runs: int = 1) -> bool:
    """Compiled paths for a batch of ``runs``: ``None`` means when numba is importable, not switched off, and
    it pays: a batch of ``MIN_RUNS`` or more, or numba already loaded in this process (a server, a sweep).

    ``True`` without numba is an error (asked for explicitly); the environment's switch wins over both.
    """
    if forced_numpy() or requested is False:
        return False
    if requested and not numba_available():
        raise ImportError("compiled=True needs numba: python -m pip install -e '.[fast]'")
    if requested:
        return True
    return numba_available() and (runs >= MIN_RUNS or "numba" in sys.modules)
