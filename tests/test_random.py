"""The candidate draws (sim/random.py ``below_limit``, ``Streams.below``): the law of one uniform per slot,
drawn in proportion to the slots kept."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy import stats

import sim.random
from sim.random import DENSE_FROM, LIMIT_STEPS, Streams, below_limit, limit_step

pytestmark = pytest.mark.fast

SIZE, LIMIT, CALLS = 400, 2.0**-5, 20_000  # a limit on its step (``limit_step``)
ALWAYS = np.array([3, 5, 200])


@pytest.fixture(scope="module")
def many():
    """20,000 calls of one generator (successive calls are independent): kept slots and draws."""
    generator = np.random.default_rng(7)
    return [below_limit(generator, SIZE, LIMIT, ALWAYS) for _ in range(CALLS)]


def within(count: float, trials: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(count - trials * p) < sigmas * np.sqrt(trials * p * (1 - p))


def test_each_slot_is_kept_with_the_limit_s_probability_the_first_and_the_last_too(many):
    kept = np.zeros(SIZE)
    for slot, _ in many:
        kept[slot] += 1
    others = np.setdiff1d(np.arange(SIZE), ALWAYS)
    assert (kept[ALWAYS] == CALLS).all()  # kept whatever they drew
    for slot in (0, 1, 398, 399):  # the ends, where a gap's origin or the cut would show
        assert within(kept[slot], CALLS, LIMIT), slot
    for block in np.array_split(others, 8):
        assert within(kept[block].sum(), CALLS * len(block), LIMIT), block[0]
    assert stats.chisquare(kept[others]).pvalue > 1e-4  # no slot favoured


def test_the_number_kept_is_binomial(many):
    counts = np.array([np.count_nonzero(~np.isin(slot, ALWAYS)) for slot, _ in many])
    n, p = SIZE - len(ALWAYS), LIMIT
    assert abs(counts.mean() - n * p) < 5 * np.sqrt(n * p * (1 - p) / CALLS)
    assert 0.95 < counts.var() / (n * p * (1 - p)) < 1.05


def test_kept_draws_are_uniform_below_the_limit_and_every_slot_s_draw_uniform(many):
    draws = np.concatenate([draw[~np.isin(slot, ALWAYS)] for slot, draw in many])
    assert draws.max() < LIMIT and draws.min() >= 0
    assert stats.kstest(draws / LIMIT, "uniform").pvalue > 1e-4
    always = np.concatenate([draw[np.isin(slot, ALWAYS)] for slot, draw in many])
    assert len(always) == CALLS * len(ALWAYS)
    assert stats.kstest(always, "uniform").pvalue > 1e-4  # below the limit as often as the limit says
    assert within(np.count_nonzero(always < 0.5), len(always), 0.5)


def test_slots_come_in_order_without_repeats(many):
    for slot, draw in many[:500]:
        assert (np.diff(slot) > 0).all() and len(slot) == len(draw)
        assert slot.min(initial=0) >= 0 and slot.max(initial=0) < SIZE


def test_from_the_dense_limit_every_slot_draws_its_own_number():
    for limit in (DENSE_FROM, 0.5, 2.0, np.nan):
        slot, draw = below_limit(np.random.default_rng(3), 50, limit, np.array([7]))
        every = np.random.default_rng(3).random(50)
        expected = np.union1d(np.flatnonzero(every < limit), [7])
        np.testing.assert_array_equal(slot, expected)
        np.testing.assert_array_equal(draw, every[expected])


def test_a_zero_or_vanishing_limit_keeps_none_but_the_always_slots():
    for limit in (0.0, 1e-300):
        slot, draw = below_limit(np.random.default_rng(3), 1000, limit, np.array([2, 9]))
        np.testing.assert_array_equal(slot, [2, 9])
        assert ((draw >= limit) & (draw < 1)).all()
    slot, draw = below_limit(np.random.default_rng(3), 1000, 0.0, np.zeros(0, np.int64))
    assert len(slot) == len(draw) == 0


def test_gaps_drawn_one_at_a_time_keep_the_same_slots(monkeypatch):
    """A chunk of gaps too short to pass the last slot is followed by another: the kept slots are the same."""
    always = np.zeros(0, np.int64)
    whole = below_limit(np.random.default_rng(5), 2000, 0.1, always)[0]
    monkeypatch.setattr(sim.random, "gap_chunk", lambda size, limit: 1)
    np.testing.assert_array_equal(below_limit(np.random.default_rng(5), 2000, 0.1, always)[0], whole)
    assert 150 < len(whole) < 250


def test_a_batch_draws_each_run_s_own_numbers_and_a_run_with_no_slots_draws_none():
    sizes, limit = np.array([300, 0, 500]), np.array([0.05, 0.05, 0.3])
    always = [np.array([4]), np.zeros(0, np.int64), np.zeros(0, np.int64)]
    run, slot, draw = Streams([1, 2, 3]).below("x", sizes, limit, always)
    assert (np.diff(run) >= 0).all() and 2 not in set(run.tolist()) - {0, 2} and 1 not in run
    for b, seed in enumerate([1, 2, 3]):
        generator = np.random.default_rng([seed, zlib.crc32(b"x")])
        if sizes[b]:
            alone_slot, alone_draw = below_limit(generator, int(sizes[b]), float(limit[b]), always[b])
            np.testing.assert_array_equal(slot[run == b], alone_slot)
            np.testing.assert_array_equal(draw[run == b], alone_draw)
    streams = Streams([2])
    nothing = streams.below("x", np.array([0]), np.array([0.5]), [np.zeros(0, np.int64)])
    assert [len(column) for column in nothing] == [0, 0, 0]
    fresh = np.random.default_rng([2, zlib.crc32(b"x")]).random(3)
    np.testing.assert_array_equal(streams.generators("x")[0].random(3), fresh)  # untouched


def test_a_limit_rounds_up_to_its_step_and_limits_in_one_step_keep_the_same_slots():
    assert limit_step(0.03) == 2.0**-5 == limit_step(2.0**-5)
    assert limit_step(0.0) == 0.0 and limit_step(0.5) == 0.5 and np.isnan(limit_step(np.nan))
    just_above = np.nextafter(2.0**-5, 1.0)  # its log2 rounds to -5: the step must still be above it
    assert limit_step(just_above) >= just_above
    assert limit_step(just_above) == pytest.approx(2.0 ** (-19 / 4), rel=1e-12)
    for limit in np.random.default_rng(1).uniform(1e-6, DENSE_FROM, 2000):
        step = limit_step(limit)
        assert limit <= step < limit * 2.0 ** (1 / LIMIT_STEPS) * (1 + 1e-12)
        assert limit_step(step) == step  # a held step is its own step
        assert abs(np.log2(step) * LIMIT_STEPS - round(np.log2(step) * LIMIT_STEPS)) < 1e-9
    always = np.array([3])
    low, high = (below_limit(np.random.default_rng(3), 1000, limit, always) for limit in (0.0296, 0.0312))
    np.testing.assert_array_equal(low[0], high[0])
    np.testing.assert_array_equal(low[1], high[1])
    assert (low[1][low[0] != 3] < 2.0**-5).all() and (low[1][low[0] != 3] >= 0.0296).any()


def test_a_month_draws_from_its_own_part_of_the_stream_whatever_earlier_months_drew():
    """Common random numbers: two runs of one seed whose earlier months drew different numbers draw the same
    in a month where they ask the same, and so do the candidates where their held limits agree."""
    none = [np.zeros(0, np.int64)]
    busy, quiet = Streams([7]), Streams([7])
    for month in range(3):
        for streams, size in ((busy, 5000), (quiet, 3)):
            streams.begin_month(month)
            streams.random_runs("y", np.array([size]))
            streams.below("x", np.array([size]), np.array([0.02]), none)
    for streams in (busy, quiet):
        streams.begin_month(3)
    first = busy.random_runs("y", np.array([4]))
    np.testing.assert_array_equal(first, quiet.random_runs("y", np.array([4])))
    by_hand = np.random.default_rng([7, zlib.crc32(b"y")])
    by_hand.bit_generator.advance(3 << 64)  # month 3's part starts 3 x 2^64 draws in
    np.testing.assert_array_equal(first, by_hand.random(4))
    np.testing.assert_array_equal(busy.random_runs("y", np.array([2])), by_hand.random(2))  # the month goes on
    a = busy.below("x", np.array([5000]), np.array([0.02]), none)
    b = quiet.below("x", np.array([5000]), np.array([0.02]), none)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert len(a[1]) > 50
    later = Streams([7])
    later.begin_month(4)
    assert not np.array_equal(later.below("x", np.array([5000]), np.array([0.02]), none)[1][:50], a[1][:50])
    fresh = Streams([7])
    fresh.begin_month(3)  # the month's part, wherever the stream was
    np.testing.assert_array_equal(fresh.below("x", np.array([5000]), np.array([0.02]), none)[1], a[1])


def test_a_stream_s_limit_is_the_highest_step_it_has_needed():
    streams = Streams([1, 2])
    np.testing.assert_array_equal(streams.held("x", np.array([0.01, 0.03])), [2.0**-6.5, 2.0**-5])
    np.testing.assert_array_equal(streams.held("x", np.array([0.002, 0.04])), [2.0**-6.5, 2.0**-4.5])
    np.testing.assert_array_equal(streams.held("y", np.array([0.002, 0.04])), [2.0**-8.75, 2.0**-4.5])


def test_each_stream_holds_its_own_limit():
    """A stream that needed a high limit leaves another stream's candidates as they would be alone."""
    none = [np.zeros(0, np.int64)]
    busy = Streams([5])
    busy.below("high", np.array([3000]), np.array([0.15]), none)
    alone = Streams([5]).below("low", np.array([3000]), np.array([0.01]), none)
    beside = busy.below("low", np.array([3000]), np.array([0.01]), none)
    for x, y in zip(alone, beside):
        np.testing.assert_array_equal(x, y)
    assert (beside[2] < limit_step(0.01)).all()
