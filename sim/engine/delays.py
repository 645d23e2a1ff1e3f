"""Delays as stocks: material delays (conserving) and information delays (SMOOTH).

Each function returns rates for stocks that the caller keeps in its state, so
the delays integrate with the same method and step as every other stock.
"""

from __future__ import annotations

import numpy as np


def material_delay(
    inflow: np.ndarray, stages: np.ndarray, delay_time: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """An n-th order material delay (DELAY1 for n = 1, DELAY3 for n = 3).

    ``stages`` holds the material in transit, the stage axis last (its length
    is the order n); ``delay_time`` is the mean transit time [years] and
    broadcasts against ``inflow``. Each stage drains at ``stage / (T / n)``.
    Returns (rate of change of the stages, outflow). Material is conserved:
    the stages' total changes by exactly ``inflow - outflow``.
    """
    order = stages.shape[-1]
    drain = stages * (order / np.asarray(delay_time, dtype=float))[..., None]
    upstream = np.concatenate([np.asarray(inflow, dtype=float)[..., None], drain[..., :-1]], axis=-1)
    return upstream - drain, drain[..., -1]


def smooth(value: np.ndarray, level: np.ndarray, smoothing_time: np.ndarray | float) -> np.ndarray:
    """First-order information delay (SMOOTH): rate of change of ``level``.

    The level moves toward ``value`` with time constant ``smoothing_time``
    [years]; it carries perception, not material, so nothing is conserved.
    """
    return (np.asarray(value, dtype=float) - level) / smoothing_time
