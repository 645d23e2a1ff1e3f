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

    def random(self, name: str, sizes: int | Sequence[int] | np.ndarray, width: int | None = None) -> np.ndarray:
        """Uniform draws in [0, 1): ``sizes[b]`` for run b, padded with 1.0 to (run, width).

        Each run draws only what it needs, so a run gives the same numbers alone or in a
        batch (1.0 never triggers an event tested as ``u < p``).
        """
        sizes = np.broadcast_to(np.asarray(sizes, dtype=int), len(self.seeds))
        out = np.ones((len(self.seeds), int(sizes.max(initial=0)) if width is None else width))
        for row, generator, size in zip(out, self.generators(name), sizes):
            row[:size] = generator.random(size)
        return out

    def random_into(self, name: str, sizes: np.ndarray, out: np.ndarray, runs: slice = slice(None)) -> np.ndarray:
        """As ``random(name, sizes, out.shape[1])[runs]``, written into ``out`` (a reused buffer, no allocation)."""
        sizes = np.broadcast_to(sizes, len(self.seeds))[runs]
        for row, generator, size in zip(out, self.generators(name)[runs], sizes):
            generator.random(out=row[:size])
            row[size:] = 1.0
        return out

    def random_runs(self, name: str, per_run: np.ndarray) -> np.ndarray:
        """``per_run[b]`` uniform draws of run b, run after run in one flat array: the numbers of
        ``random(name, per_run)``, without the padding (for agents listed by run, as ``np.nonzero`` lists them)."""
        counts = per_run.tolist()
        out = np.empty(sum(counts))
        start = 0
        for generator, count in zip(self.generators(name), counts):
            if count:
                generator.random(out=out[start : start + count])
                start += count
        return out

    def lognormal_runs(self, name: str, sigma: np.ndarray, per_run: np.ndarray) -> np.ndarray:
        """Lognormal draws with mean 1 and log-sd ``sigma[b]``: ``per_run[b]`` of run b, run after run in one flat
        array."""
        counts = per_run.tolist()
        parts = [
            generator.lognormal(-s * s / 2, s, count)
            for generator, s, count in zip(self.generators(name), np.broadcast_to(sigma, len(counts)).tolist(), counts)
            if count
        ]
        return np.concatenate(parts) if parts else np.zeros(0)

    def poisson(self, name: str, mean: np.ndarray) -> np.ndarray:
        """Poisson counts with the run axis first (one generator call per run), as floats."""
        out = np.empty(np.shape(mean))
        for run, (generator, m) in enumerate(zip(self.generators(name), mean)):
            out[run] = generator.poisson(m)
        return out
