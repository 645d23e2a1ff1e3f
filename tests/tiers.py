"""Test tiers and the golden-file option, loaded by ``tests/conftest.py`` (``pytest_plugins``).

The fast tier (``-m fast``, under a minute) is what the mutation run uses (docs/testing.md):
hand-computed small cases and directions that kill wrong equations, no whole 2014-2035 runs.
Tests in files this team's test engineer owns mark themselves (``pytestmark``); the quick
tests of the other files are listed here, so those files need no edit to join the tier.
"""

from __future__ import annotations

import pytest

# Whole files whose every test is a quick unit test of an equation or an event order.
FAST_FILES = {"test_engine.py", "test_timeline.py"}
# Single quick tests of other files, by file and test name (parameters included).
FAST_TESTS = {
    "test_population.py": {
        "test_attraction_by_hand",
        "test_admission_control_penalises_arrivals_from_other_provinces_only",
        "test_moves_by_hand_at_the_2014_gap",
        "test_losing_jobs_at_the_origin_raises_the_move_probability_by_the_nested_logit",
        "test_the_outside_pool_follows_its_trend",
        "test_registered_movers_to_another_province_arrive_as_migrants",
        "test_housing_starts_removal_and_cap_by_hand",
        "test_base_move_rates_average_to_the_region_rate_with_migrants_more_mobile",
    },
    "test_model.py": {
        "test_world_population_changes_only_by_births_deaths_and_the_outside",
        "test_region_constants_reproduce_the_2014_migration_trend",
        "test_migration_settings_that_cannot_reproduce_2014_give_a_clear_error",
    },
    "test_reliability_states.py": {"test_a_batch_masks_the_failing_run_and_finishes_the_others"},
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regenerate-golden",
        action="store_true",
        help="rewrite tests/golden/*.json from the current model instead of comparing (after an intended change)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fast: the quick tier that kills mutants; the mutation run uses it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = item.path.name
        if name in FAST_FILES or item.originalname in FAST_TESTS.get(name, ()):
            item.add_marker(pytest.mark.fast)
