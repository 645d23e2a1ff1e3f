"""Firm agents: destination choice, slot bookkeeping, the catalogue, and how outputs add up."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_scenario

import sim
from sim.model import Model
from sim.sectors import FIRM_SECTORS


@pytest.fixture
def model(short_historical) -> Model:
    return Model(short_historical, seeds=[1, 2])


def context(model: Model, coverage: np.ndarray | None = None):
    ctx = model._firm_context(2015.0, model.timeline.levers())
    if coverage is not None:
        ctx = type(ctx)(**{**ctx.__dict__, "coverage": coverage})
    return ctx


def test_destination_shares_are_a_distribution_that_excludes_the_origin(model):
    probs = model.firms.destination_probabilities(context(model), model.firms.counts())
    assert probs.shape == (2, len(FIRM_SECTORS), len(model.regions), len(model.regions))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(np.diagonal(probs, axis1=2, axis2=3) == 0)


def test_the_catalogue_closes_beijing_to_covered_movers(model):
    coverage = np.zeros((len(model.regions), len(FIRM_SECTORS)))
    core = model.regions.index("bj_core")
    coverage[core, 0] = 1.0  # manufacturing fully covered in the core
    coverage[model.regions.index("bj_central"), 0] = 0.5
    firms = model.firms
    open_ = firms.destination_probabilities(context(model), firms.counts())
    shut = firms.destination_probabilities(context(model, coverage), firms.counts())
    others = [r for r in range(len(model.regions)) if r != core]
    assert np.all(shut[:, 0, :, core] == 0) and np.all(open_[:, 0, others, core] > 0)
    central = model.regions.index("bj_central")
    assert np.all(shut[:, 0, core, central] < open_[:, 0, core, central])
    np.testing.assert_allclose(shut[:, 1:], open_[:, 1:], rtol=1e-12)  # other sectors untouched


def test_new_agents_fill_free_slots_run_by_run(model):
    firms = model.firms
    firms.alive[0, [3, 5]] = False
    firms.alive[1, 7] = False
    firms._tallies = None
    before = firms.alive.sum(axis=1)
    run = np.array([0, 0, 0, 1])
    firms._add(run, np.array([1, 1, 1, 2]), np.array([0, 2, 3, 1]), np.zeros(4), "test")
    assert list(firms.alive.sum(axis=1) - before) == [3, 1]
    assert firms.alive[0, 3] and firms.alive[0, 5] and firms.alive[1, 7]
    assert firms.sector[0, 3] == 0 and firms.sector[0, 5] == 2 and firms.region[1, 7] == 2


def test_without_a_catalogue_nothing_is_refused_or_diverted(tmp_path):
    text = "[run]\nend = 2016\n[policies.catalogue_2014]\nenabled = false\n[policies.catalogue_2015]\nenabled = false\n"
    ds = sim.run(sim.load_scenario(write_scenario(tmp_path, text)))
    assert float(ds.refused_registrations_cum.max()) == 0
    assert float(ds.diverted_registrations_cum.max()) == 0


def test_dispersed_units_either_close_or_relocate_outside_beijing(short_historical):
    ds = sim.run(short_historical).isel(time=-1)
    dispersed = ds.dispersed_firms_cum.sel(sector=["manufacturing", "wholesale_logistics"])
    relocated = ds.relocated_firms_cum.sel(sector=["manufacturing", "wholesale_logistics"])
    np.testing.assert_allclose(
        dispersed, ds.dispersed_closed_cum.sel(sector=dispersed.sector) + relocated.sum("region")
    )
    beijing = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]
    assert float(relocated.sel(region=beijing).sum()) == 0  # the programmes send units out of Beijing
    assert float(ds.relocated_pharma_cum.sum()) <= float(relocated.sel(sector="manufacturing").sum())


def test_high_end_share_starts_at_the_pre_catalogue_mix_and_rises(short_historical):
    ds = sim.run(short_historical)
    share = ds.high_end_share_new_entrants
    assert 0 < float(share[0]) < 1
    assert float(share.sel(time=2016.0)) > float(share[0])  # the catalogue removes banned entrants
