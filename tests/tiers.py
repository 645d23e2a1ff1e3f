"""Test tiers and the golden-file option, loaded by ``tests/conftest.py`` (``pytest_plugins``).

The fast tier (``-m fast``, under a minute) is what the mutation run uses (docs/testing.md):
hand-computed small cases and directions that kill wrong equations, no whole 2014-2035 runs.
Tests in files this team's test engineer owns mark themselves (``pytestmark``); the quick
tests of the other files are listed here, so those files need no edit to join the tier.
"""

from __future__ import annotations

import pytest

# Whole files whose every test is a quick unit test of an equation or an event order.
FAST_FILES = {"test_engine.py", "test_timeline.py", "test_fast_paths.py"}
# Single quick tests of other files, by file and test name (parameters included).
FAST_TESTS = {
    "test_population.py": {
        "test_attraction_by_hand",
        "test_registered_residents_give_up_their_tie_when_they_leave_the_province",
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
        "test_recording_some_outputs_gives_the_same_arrays_as_recording_all",
        "test_an_unknown_output_is_named_with_the_known_ones",
    },
    "test_firms.py": {  # all but the whole-run directions (2-3 s each) of scenarios and entry rates
        "test_rent_rises_with_occupancy_as_the_elasticity_says_and_is_capped",
        "test_space_starts_close_the_gap_over_the_adjustment_time_within_the_land_limit",
        "test_market_access_counts_residents_within_reach",
        "test_entry_scales_with_demand_and_falls_with_rent_not_with_the_stock",
        "test_cheap_space_at_most_doubles_entry",
        "test_destination_shares_for_two_regions_by_hand",
        "test_one_month_of_exits_matches_the_hazard",
        "test_more_rent_means_more_exits_and_more_moves",
        "test_more_rent_means_fewer_arrivals_and_fewer_entrants",
        "test_more_distance_means_fewer_moves_there",
        "test_an_incentive_raises_moves_to_its_region",
        "test_dispersed_units_close_in_the_programme_share",
        "test_a_super_individual_splits_into_the_destination_s_resolution",
        "test_moves_neither_create_nor_lose_real_firms",
        "test_the_agent_limit_is_a_clear_error_before_it_is_crossed",
        "test_rents_rise_when_space_is_removed_while_population_is_held_down",
        "test_the_2014_stock_is_at_rest_under_moves",
        "test_the_catalogue_closes_beijing_to_covered_movers",
        "test_refused_registrations_include_refused_moves_into_beijing",
        "test_projects_count_transfers_into_tongzhou_and_the_northern_counties",
        "test_branches_are_opened_by_zhongguancun_firms_only",
        "test_dispersed_units_either_close_or_relocate_outside_beijing",
        "test_high_end_share_starts_at_the_pre_catalogue_mix_and_rises",
        "test_tallies_kept_by_events_equal_a_recount",
        "test_a_programme_active_in_one_run_of_a_batch_leaves_the_other_as_if_alone",
        "test_flat_draws_are_each_runs_own_numbers_run_after_run",
        "test_a_runs_limit_leaves_each_agent_its_own_probability",
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
