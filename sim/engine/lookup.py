"""Lookup (table) functions, kept as data: points in, piecewise-linear out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lookup:
    """A piecewise-linear table function, flat beyond its end points (as in Vensim)."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or len(self.x) < 2:
            raise ValueError("a lookup needs at least two points and as many x as y")
        if any(b <= a for a, b in zip(self.x, self.x[1:])):
            raise ValueError("lookup x values must be strictly increasing")

    @classmethod
    def from_points(cls, points: Sequence[Sequence[float]]) -> Lookup:
        """Build from ``[[x0, y0], [x1, y1], ...]``, the form scenario files use."""
        return cls(tuple(float(p[0]) for p in points), tuple(float(p[1]) for p in points))

    def __call__(self, value: np.ndarray | float) -> np.ndarray:
        return np.interp(value, self.x, self.y)
