"""Named random streams, one generator per run and name (common random numbers).

Each stream is seeded from (seed, crc32(name)), so a stream's draws do not depend
on which other streams exist, and each month draws from its own part of each stream
(``begin_month``), so they do not depend on how much earlier months drew: two scenarios
run with the same seed differ by their policies, not by noise.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np


class Streams:
    """Random streams for a batch of runs: ``streams.random('exit', n)`` has shape (run, n)."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = tuple(int(s) for s in seeds)
        self.month = 0  # the month whose part of each stream draws are taken from (``begin_month``)
        self._generators: dict[str, list[np.random.Generator]] = {}
        self._starts: dict[str, list[dict]] = {}  # each stream's first state, per run
        self._month_of: dict[str, int] = {}  # the month each stream's generators stand in
        self._held: dict[str, np.ndarray] = {}  # ``below``: each stream's highest limit so far, per run

    def begin_month(self, month: int) -> None:
        """Draws from now on come from month ``month``'s part of each stream (parts 2^64 draws apart)."""
        self.month = month

    def generators(self, name: str) -> list[np.random.Generator]:
        """The run generators of stream ``name``, in the current month's part of the stream."""
        if name not in self._generators:
            key = zlib.crc32(name.encode())
            self._generators[name] = [np.random.default_rng([seed, key]) for seed in self.seeds]
            self._starts[name] = [generator.bit_generator.state for generator in self._generators[name]]
            self._month_of[name] = 0
        if self._month_of[name] != self.month:
            for generator, start in zip(self._generators[name], self._starts[name]):
                generator.bit_generator.state = start
                generator.bit_generator.advance(self.month << 64)
            self._month_of[name] = self.month
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

    def below(
        self, name: str, sizes: np.ndarray, limit: np.ndarray, always: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Run b's slots 0..sizes[b]-1 whose uniform draw would fall below ``limit[b]``, and the slots of
        ``always[b]`` (sorted) whatever they drew, with their draws: ``(run, slot, draw)`` run after run
        in slot order (``below_limit``, one call per run that has slots, at the run's ``held`` limit). Two
        runs with the same seed draw the same candidates in a month whenever their held limits agree."""
        generators, limit = self.generators(name), self.held(name, limit)
        parts = [
            (np.full(len(slot), run), slot, draw)
            for run, (generator, size, bound, kept) in enumerate(zip(generators, sizes, limit, always))
            if size
            for slot, draw in [below_limit(generator, int(size), float(bound), kept)]
        ]
        if not parts:
            return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
        return tuple(np.concatenate(column) for column in zip(*parts))  # type: ignore[return-value]

    def held(self, name: str, limit: np.ndarray) -> np.ndarray:
        """Each run's limit for ``below``: the highest step (``limit_step``) its stream has needed so far. A
        limit that wavers month to month (rents do) keeps its candidates, and two scenarios of one seed
        keep the same limit unless one needs a higher step than the other has reached."""
        step = np.array([limit_step(value) for value in limit.tolist()])
        if name in self._held:
            np.maximum(step, self._held[name], out=step)
        self._held[name] = step
        return step

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


DENSE_FROM = 0.2
"""A limit from which ``below_limit`` draws every slot: gaps cost about 13 ns a draw, uniforms about 3 ns."""
LIMIT_STEPS = 4
"""``below_limit`` rounds a limit up to the next power of 2^(1/LIMIT_STEPS): a small change of the limit
(a policy's effect on rents) leaves the candidates the same; about 9 % more candidates on average."""


def limit_step(limit: float) -> float:
    """``limit`` rounded up to the next power of 2^(1/LIMIT_STEPS) (limits outside (0, DENSE_FROM) as
    they are)."""
    if not 0.0 < limit < DENSE_FROM:
        return limit
    step = 2.0 ** (math.ceil(math.log2(limit) * LIMIT_STEPS) / LIMIT_STEPS)
    return step if step >= limit else step * 2.0 ** (1.0 / LIMIT_STEPS)


def gap_chunk(size: int, limit: float) -> int:
    """Gaps ``below_limit`` draws at a time: past the last slot in all but about one call in 10^9 (then
    another chunk)."""
    expected = size * limit
    return int(expected + 6.0 * np.sqrt(expected)) + 16


def below_limit(
    generator: np.random.Generator, size: int, limit: float, always: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The slots among ``size`` whose uniform draw u_i falls below ``limit``, with their draws, and the
    slots of ``always`` (sorted) with theirs: the process "one uniform per slot, keep u_i < limit", drawn
    in proportion to the slots kept, not to ``size``.

    The kept slots are a Bernoulli(limit) process: the gaps between them are geometric,
    floor(ln U / ln(1 - limit)) + 1 for U uniform on [0, 1) (P(gap >= k) = (1 - limit)^(k - 1)), and the
    draw of a kept slot is uniform on [0, limit), of a slot not kept uniform on [limit, 1). Each slot's draw
    is therefore uniform on [0, 1) and independent of the others, as if every slot had drawn one. From
    ``DENSE_FROM`` on (and for a limit that is not a number below 1), every slot draws its own. The limit
    is first rounded up to its step (``limit_step``): any limit above every agent's probability will do.
    """
    limit = limit_step(limit)
    if not limit < DENSE_FROM:
        draw = generator.random(size)
        kept = draw < limit
        kept[always] = True
        slot = np.flatnonzero(kept)
        return slot, draw[slot]
    kept = np.zeros(0)
    if limit > 0.0:
        scale, chunk = 1.0 / math.log1p(-limit), gap_chunk(size, limit)  # scale < 0 (-inf for a vanishing limit)
        while not len(kept) or kept[-1] < size:
            gaps = np.log(generator.random(chunk))
            np.multiply(gaps, scale, out=gaps)
            np.floor(gaps, out=gaps)
            gaps += 1.0
            kept = np.concatenate([kept, np.cumsum(gaps) + (kept[-1] if len(kept) else -1.0)])
        kept = kept[: np.searchsorted(kept, size)]
    slot = kept.astype(np.int64)
    draw = generator.random(len(slot)) * limit
    if not len(always):
        return slot, draw
    rest = always[slot.take(np.searchsorted(slot, always), mode="clip") != always] if len(slot) else always
    if not len(rest):
        return slot, draw
    rest_draw = limit + (1.0 - limit) * generator.random(len(rest))
    order = np.argsort(np.concatenate([slot, rest]), kind="stable")  # a merge of two sorted runs
    return np.concatenate([slot, rest])[order], np.concatenate([draw, rest_draw])[order]
