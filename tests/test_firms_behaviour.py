"""Firm equations (sim/firms.py) where tests/test_firms.py leaves a wrong term unseen (mutation survivors).

Small cases worked by hand on the firms' own pieces; the firms helper's file keeps the
directions and whole-run checks.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from test_firms import calm, tiny

from sim.firms import HIGH_END, MANUFACTURING, N_SECTORS, FirmCounters

pytestmark = pytest.mark.fast


def test_the_high_end_share_of_entrants_by_hand_and_undefined_without_entrants():
    counters = FirmCounters(runs=2, regions=3)
    counters.beijing_entrants[0, 0, :] = 1.0
    counters.beijing_entrants[0, 5, HIGH_END] = 3.0
    sectors = counters.beijing_entrants.shape[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a year without entrants is NaN by intent, not a 0/0 warning
        share = counters.high_end_share()
    np.testing.assert_allclose(share[0], 4.0 / (sectors + 3.0), rtol=1e-15)
    assert np.isnan(share[1])


def test_a_single_entrant_is_a_share_too():
    counters = FirmCounters(runs=1, regions=2)
    counters.beijing_entrants[0, 11, HIGH_END] = 1.0
    assert counters.high_end_share()[0] == 1.0


def test_rent_is_the_2014_level_times_the_rent_index():
    firms = tiny(firms=((1000, 0), (1000, 0)))
    firms.space[:, 0] *= 0.8  # the core: occupancy 0.9 / 0.8 of its 2014 level, index (1 / 0.8)^2
    np.testing.assert_allclose(firms.rent_index(), [[1.5625, 1.0]], rtol=1e-12)
    np.testing.assert_allclose(firms.rent(), [[1.0 * 1.5625, 0.5 * 1.0]], rtol=1e-12)  # levels 1 and 0.5


def test_refused_changes_are_first_choices_the_catalogue_turns_away_by_hand():
    """200,000 firms of the rest; the catalogue turns away half the manufacturers choosing the core.

    Catalogue-free shares from the rest (constants 0): stay U = -0.5 (rent level 0.5), core U = -1 - 1
    (rent 1, one hour): Q_core = 1 / (1 + e^1.5). Refused = Poisson(200,000 * Q_core * 0.5 * apply 0.5).
    """
    firms = tiny(firms=((0, 0), (200000, 0)), weights=((1, 1), (1000, 1)), rent_weight=1.0, distance_weight=1.0)
    firms.params = dataclasses.replace(firms.params, apply_despite_ban=np.array([0.5]))
    firms.destination_constant[:] = 0.0
    coverage = np.zeros((1, 2, N_SECTORS))
    coverage[0, 0, MANUFACTURING] = 0.5
    run, slot = np.nonzero(firms.alive)
    for _ in range(2):  # the count accumulates month by month
        firms._count_refused_changes(calm(firms, coverage=coverage), firms.counts(), np.ones((1, 2)), run, slot)
    expected = 2 * 200000 * 0.5 * 0.5 / (1 + np.exp(1.5))  # 2 x 9,121; the shares with the catalogue: 2 x 5,015
    assert abs(firms.counters.refused_changes[0] - expected) < 5 * np.sqrt(expected)


def test_pharmaceutical_movers_choose_by_their_own_shares():
    firms = tiny(firms=((40, 0), (0, 0)))
    run, slot = np.nonzero(firms.alive)
    firms.pharma[run[:10], slot[:10]] = True
    probs = np.zeros((1, N_SECTORS, 2, 2))
    probs[..., 0] = 1.0  # everyone else stays
    pharma_probs = np.zeros((1, N_SECTORS, 2, 2))
    pharma_probs[..., 1] = 1.0  # pharmaceutical firms go to region 1
    chosen = firms._choose(run, slot, probs, pharma_probs, np.full(len(run), 0.5))
    np.testing.assert_array_equal(chosen, np.where(firms.pharma[run, slot], 1, 0))
    np.testing.assert_array_equal(firms._choose(run, slot, probs, None, np.full(len(run), 0.5)), 0)


def test_the_entrant_window_starts_with_each_sector_s_would_be_entrants_in_beijing():
    firms = tiny(firms=((300, 1000), (0, 500)), entry_rate=[0.24, 0, 0.12, 0])
    ctx = calm(firms)
    firms.seed_entrant_history(ctx)
    wanted = firms.would_be_entrants(ctx, firms.rent_index())[0, 0]  # the core is the only Beijing region
    assert wanted[MANUFACTURING] > 0 and wanted[HIGH_END] > 0 and wanted[MANUFACTURING] != wanted[HIGH_END]
    np.testing.assert_allclose(firms.counters.beijing_entrants[0], np.tile(wanted, (12, 1)), rtol=1e-15)
