"""Named random streams, one generator per run and name (common random numbers).

Each stream is seeded from (seed, crc32(name)), so a stream's draws do not depend
on which other streams exist or how much they were used: two scenarios run with
the same seed differ by their policies, not by noise.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np


class Streams:
    """Random streams for a batch of runs: ``streams.random('exit', n)`` has shape (run, n)."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = tuple(int(s) for s in seeds)
        self._generators: dict[str, list[np.random.Generator]] = {}

    def generators(self, name: str) -> list[np.random.Generator]:
        if name not in self._generators:
            key = zlib.crc32(name.encode())
            self._generators[name] = [np.random.default_rng([seed, key]) for seed in self.seeds]
        return self._generators[name]

    def random(self, name: str, size: int) -> np.ndarray:
        """Uniform draws in [0, 1): (run, size)."""
        return np.stack([g.random(size) for g in self.generators(name)])

    def poisson(self, name: str, mean: np.ndarray) -> np.ndarray:
        """Poisson counts with the run axis first (one generator call per run)."""
        return np.stack([g.poisson(m) for g, m in zip(self.generators(name), mean)]).astype(float)

    def lognormal_unit_mean(self, name: str, sigma: np.ndarray, size: int) -> np.ndarray:
        """Lognormal draws with mean 1 and log-sd ``sigma`` (one per run): (run, size)."""
        return np.stack(
            [g.lognormal(-s * s / 2, s, size) for g, s in zip(self.generators(name), np.broadcast_to(sigma, len(self.seeds)))]
        )
