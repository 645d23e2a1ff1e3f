"""Shapley attribution over the policy levers: exact values of a hand-made game, shares that add up."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SCENARIOS

import sim
from sim.calibration.shapley import levers, shapley


def test_shapley_values_of_a_game_with_interaction_match_the_hand_computed_ones():
    """v(A)=1, v(B)=2, v(AB)=5: A gets (1-0)/2 + (5-2)/2 = 2, B gets (2-0)/2 + (5-1)/2 = 3; they add up to 5."""
    worth = {frozenset(): 0.0, frozenset("A"): 1.0, frozenset("B"): 2.0, frozenset("AB"): 5.0}
    values = shapley(lambda s: worth[s], ["A", "B"])
    assert values == {"A": pytest.approx(2.0), "B": pytest.approx(3.0)}


def test_shapley_values_add_up_to_the_grand_coalition_for_any_game():
    rng = np.random.default_rng(4)
    players = ["a", "b", "c", "d"]
    worth = {}

    def value(s: frozenset) -> np.ndarray:
        if s not in worth:
            worth[s] = np.zeros(3) if not s else rng.normal(size=3)
        return worth[s]

    values = shapley(value, players)
    assert np.allclose(sum(values.values()), value(frozenset(players)) - value(frozenset()))


def test_the_levers_are_the_policies_the_counterfactual_switches_off():
    historical = sim.load_scenario(SCENARIOS / "historical.toml")
    counterfactual = sim.load_scenario(SCENARIOS / "counterfactual.toml")
    grouped = levers(historical)
    in_levers = {name for names in grouped.values() for name in names}
    assert in_levers == set(historical.policies) - set(counterfactual.policies)
    assert grouped["dispersal"] == ["manufacturing_dispersal", "market_dispersal"]
