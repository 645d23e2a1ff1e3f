"""The parameter address space: every address settable by file and API with the same validation."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import pytest
import tomli_w

import sim
from sim.cli import main
from sim.scenario import load_scenario
from sim.space import Address, addresses, as_date, with_values

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "scenarios" / "plan2021.toml"


@pytest.fixture(scope="module")
def plan():
    return load_scenario(PLAN)


def _as_file(address: str, value, base: Path) -> dict:
    """The scenario-file document that sets ``address`` to ``value`` on top of ``base``."""
    parts = address.split(".")
    table: dict = {}
    node = table
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return {"extends": str(base), **table}


def _bad_value(address: Address):
    if address.type == "bool":
        return 1
    if address.type == "date":
        return dt.date(2099, 1, 1)
    if address.type == "integer":
        return int(address.high) + 1
    return address.high * 2 + 1


def _message(error: sim.InputError) -> tuple[str, str]:
    return error.key, error.message


def test_every_address_is_refused_alike_by_file_and_api(plan, tmp_path):
    """One out-of-range value per address: the file and with_values give the same key and message."""
    space = addresses(plan)
    assert {
        "population.jobs_weight",
        "policies.admission_control_2017.strength",
        "policies.xiongan_founded.start",
    } <= set(space)
    for address in space.values():
        if address.dims:
            continue  # the whole-array address takes the labels' values; they are checked one by one
        bad = _bad_value(address)
        file = tmp_path / f"{address.name}.toml"
        file.write_text(tomli_w.dumps(_as_file(address.name, bad, PLAN)))
        with pytest.raises(sim.InputError) as from_file:
            load_scenario(file)
        with pytest.raises(sim.InputError) as from_api:
            with_values(plan, {address.name: bad}, str(file))
        assert _message(from_api.value) == _message(from_file.value), address.name
        assert str(from_api.value).startswith(f"{file}: {address.name}")


def test_setting_by_file_and_by_api_gives_the_same_scenario(plan, tmp_path):
    values = {
        "population.jobs_weight": 3.5,
        "population.out_migration_rate.bj_core": 0.07,
        "firms.entry_rate.high_end": 0.2,
        "policies.admission_control_2017.strength": 4.0,
        "policies.xiongan_founded.start": dt.date(2018, 4, 1),
        "policies.universities_to_xiongan.count": 6,
        "policies.rail_beijing_tangshan.enabled": False,
        "policies.catalogue_2018.coverage_central_six.high_end": 0.25,
    }
    document: dict = {"extends": str(PLAN)}
    for address, value in values.items():
        document = _merge(document, _as_file(address, value, PLAN))
    # a sector table entry in a file refines the inherited table, as with_values does
    file = tmp_path / "set.toml"
    file.write_text(tomli_w.dumps(document))
    from_file, from_api = load_scenario(file), with_values(plan, values, "api")
    assert from_file.policies == from_api.policies
    for key, value in from_file.parameters.items():
        np.testing.assert_array_equal(value, from_api.parameters[key])
    assert from_api.parameters["population.out_migration_rate"][0] == 0.07
    assert (
        from_api.parameters["population.out_migration_rate"][1] == plan.parameters["population.out_migration_rate"][1]
    )
    assert "rail_beijing_tangshan" not in from_api.policies
    assert (
        from_api.policies["catalogue_2018"]["coverage_central_six"]["manufacturing"]
        == (plan.policies["catalogue_2018"]["coverage_central_six"]["manufacturing"])
    )


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_dates_as_values_decimal_years_dates_and_strings_agree(plan):
    address = "policies.universities_to_xiongan.start"
    as_year = with_values(plan, {address: 2022.25}).policies["universities_to_xiongan"]["start"]
    as_day = with_values(plan, {address: dt.date(2022, 4, 1)}).policies["universities_to_xiongan"]["start"]
    as_text = with_values(plan, {address: "2022-04"}).policies["universities_to_xiongan"]["start"]
    assert as_year == as_day == as_text == pytest.approx(2022.25)
    for year in (2014.0, 2019.99, 2020.5, 2033.123):
        assert as_date(year).year == int(year)
    with pytest.raises(sim.InputError, match="starts after it ends"):
        with_values(plan, {address: 2027.0})


def test_every_day_survives_the_round_trip_through_a_decimal_year():
    """as_date inverts decimal_year: 1 August 2015 (2015.58333..., times 12 is 6.99999... in floating point) stays."""
    from sim.scenario import decimal_year

    day, wrong = dt.date(2014, 1, 1), []
    while day <= dt.date(2035, 12, 31):
        if as_date(decimal_year(day, Path("x"), "date")) != day:
            wrong.append(day)
        day += dt.timedelta(days=1)
    assert wrong == []


def test_a_changed_scenario_has_a_new_hash_and_the_old_one_is_unchanged(plan):
    own = plan.parameters["population.jobs_weight"]
    changed = with_values(plan, {"population.jobs_weight": own + 1.0})
    assert changed.config_hash != plan.config_hash
    assert plan.parameters["population.jobs_weight"] == own
    assert pickle.loads(pickle.dumps(changed)).config_hash == changed.config_hash


def test_scenarios_are_immutable(plan):
    own = plan.parameters["population.jobs_weight"]
    with pytest.raises(TypeError, match="immutable"):
        plan.parameters["population.jobs_weight"] = -99
    with pytest.raises(ValueError, match="read-only"):
        plan.parameters["population.out_migration_rate"][0] = -99
    with pytest.raises(TypeError):
        plan.policies["admission_control_2017"]["strength"] = 9
    with pytest.raises(TypeError):
        plan.policies.pop("admission_control_2017")
    with pytest.raises(TypeError):
        plan.document["run"]["end"] = 2050
    assert plan.parameters["population.jobs_weight"] == own


def test_unknown_address_and_wrong_shapes_name_the_key(plan):
    with pytest.raises(sim.InputError, match=r"api: population.jobs_wieght: unknown address; did you mean"):
        with_values(plan, {"population.jobs_wieght": 1.0}, "api")
    with pytest.raises(sim.InputError, match="expected one number or 8"):
        with_values(plan, {"population.out_migration_rate": [0.1, 0.2]}, "api")
    with pytest.raises(sim.InputError, match="expected an integer"):
        with_values(plan, {"policies.universities_to_xiongan.count": 2.5}, "api")
    with pytest.raises(sim.InputError, match="finite"):
        with_values(plan, {"population.jobs_weight": float("nan")}, "api")
    # numpy scalars from samplers are plain values
    assert (
        with_values(plan, {"policies.universities_to_xiongan.count": np.int64(5)}).policies["universities_to_xiongan"][
            "count"
        ]
        == 5
    )


def test_run_records_params_and_keeps_outputs(tmp_path):
    short = tmp_path / "short.toml"
    short.write_text(f'extends = "{PLAN}"\nname = "short"\n[run]\nend = 2015\n')
    scenario = load_scenario(short)
    base = sim.run(scenario, seed=3, outputs=["population"])
    changed = sim.run(scenario, params={"population.jobs_weight": 4.0}, seed=3, outputs=["population"])
    assert list(changed.data_vars) == ["population"]
    assert '"population.jobs_weight": 4.0' in changed.attrs["params"]
    assert changed.attrs["config_hash"] != base.attrs["config_hash"]
    assert not np.allclose(changed.population.values[-1], base.population.values[-1])
    with pytest.raises(sim.InputError, match="params: population.jobs_weight: value -1"):
        sim.run(scenario, params={"population.jobs_weight": -1})
    with pytest.raises(sim.InputError, match="outputs: populaton: unknown output; did you mean 'population'"):
        sim.run(scenario, outputs=["populaton"])


def test_run_batch_labels_runs_with_the_values_set(tmp_path):
    short = tmp_path / "short.toml"
    short.write_text(f'extends = "{PLAN}"\nname = "short"\n[run]\nend = 2015\n')
    scenario = load_scenario(short)
    rates = list(scenario.parameters["population.out_migration_rate"] * 0.9)
    batch = sim.run_batch(scenario, [1, 2], [{"population.jobs_weight": 3.0}, {"population.out_migration_rate": rates}])
    assert list(batch["population.jobs_weight"].values) == [3.0, scenario.parameters["population.jobs_weight"]]
    assert batch["population.out_migration_rate"].dims == ("run", "region")
    np.testing.assert_allclose(batch["population.out_migration_rate"].values[1], rates)
    assert list(batch.seed.values) == [1, 2]


def test_params_command_lists_the_space(capsys):
    assert main(["params", str(PLAN)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["address", "type", "unit", "bounds", "value"]
    assert len(lines) == 1 + len(addresses(load_scenario(PLAN)))
    row = next(line for line in lines if line.startswith("policies.admission_control_2017.strength "))
    strength = addresses(load_scenario(PLAN))["policies.admission_control_2017.strength"].value
    assert row.split()[1:3] == ["number", "utility"] and float(row.split()[-1]) == strength
    assert main(["params", "missing.toml"]) == 2


def test_run_batch_takes_policy_addresses_per_run(tmp_path):
    """Runs of one batch with different policy values equal the same runs made alone."""
    short = tmp_path / "short.toml"
    short.write_text(f'extends = "{PLAN}"\nname = "short"\n[run]\nend = 2016\n')
    scenario = load_scenario(short)
    overrides = [
        {"policies.admission_control_2015.strength": 0.1},
        {},
        {"policies.admission_control_2015.strength": 0.1, "population.jobs_weight": 3.0},
    ]
    batch = sim.run_batch(scenario, [5, 5, 6], overrides)
    assert list(batch["policies.admission_control_2015.strength"].values) == [
        0.1,
        addresses(scenario)["policies.admission_control_2015.strength"].value,
        0.1,
    ]
    for run, (seed, override) in enumerate(zip([5, 5, 6], overrides)):
        alone = sim.run(scenario, seed=seed, params=override)
        np.testing.assert_array_equal(batch.population.isel(run=run).values, alone.population.values)
    assert not np.array_equal(batch.population.isel(run=0).values, batch.population.isel(run=1).values)
