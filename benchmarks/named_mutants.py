"""The eight mutants of issue 7, applied by hand to a copy of the code: each must fail its named tests.

    python benchmarks/named_mutants.py            # the code of this checkout
    python benchmarks/named_mutants.py --root DIR # another tree (e.g. a branch exported with git archive)

The issue found eight single-token changes of the old equations that passed the whole suite.
Each is written here as a regular expression on its counterpart in the revised model (the
origin's exclusion has two: the reference equations and the stocks' fast path); the
script copies the project to a temporary folder, applies one mutant at a time, runs the
tests named for it and reports whether they fail (the mutant is killed). docs/testing.md
has the table. Exit status 1 if a mutant survives or no longer matches the code.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("sim", "tests", "scenarios", "docs", "calibration", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    issue: str  # the issue's words
    file: str
    pattern: str  # regular expression matching exactly once
    replacement: str
    tests: tuple[str, ...]  # pytest node ids (file::test) expected to fail


MUTANTS = (
    Mutant(
        "deaths computed from the birth rate",
        "sim/stockflow.py",
        r'deaths = extra\["death_rate"\] \* population',
        'deaths = extra["birth_rate"] * population',
        (
            "tests/test_stockflow.py::test_births_and_deaths_use_their_own_rates_of_the_year",
            "tests/test_stockflow.py::test_one_euler_month_of_births_and_deaths_by_hand",
            "tests/test_stockflow.py::test_higher_death_rates_mean_fewer_residents_and_higher_birth_rates_more",
        ),
    ),
    Mutant(
        "the housing term's sign in attraction",
        "sim/population.py",
        r"- _col\(p\.housing_weight\) \*",
        "+ _col(p.housing_weight) *",
        (
            "tests/test_population.py::test_attraction_by_hand",
            "tests/test_population_behaviour.py::test_a_region_with_less_housing_loses_residents_to_the_others",
        ),
    ),
    Mutant(
        "the origin among its own destinations (the reference equations: move_utilities)",
        "sim/population.py",
        r"utility\[:, np\.arange\(n\), np\.arange\(n\)\] = -np\.inf",
        "utility[:, np.arange(n), np.arange(n)] = utility[:, np.arange(n), np.arange(n)]",
        (
            "tests/test_population.py::test_admission_control_penalises_arrivals_from_other_provinces_only",
            "tests/test_fast_paths.py::test_migration_balance_equals_the_reference_equations",
        ),
    ),
    Mutant(
        "the origin among its own destinations (the stocks' path: migration_friction)",
        "sim/population.py",
        r"friction\[\.\.\., np\.arange\(n\), np\.arange\(n\)\] = np\.inf",
        "friction[..., np.arange(n), np.arange(n)] = 0.0",
        (
            "tests/test_stockflow.py::test_observed_outputs_are_the_stocks_and_the_month_s_levers",
            "tests/test_fast_paths.py::test_migration_balance_equals_the_reference_equations",
        ),
    ),
    Mutant(
        "followers' inflow off by 12 (a missing / DT)",
        "sim/stockflow.py",
        r'\(self\.follow\["household_follow_share"\] \* self\.follow\["household_size"\]\)\[:, None, None\] / DT',
        '(self.follow["household_follow_share"] * self.follow["household_size"])[:, None, None]',
        ("tests/test_stockflow.py::test_staff_moved_this_month_send_their_households_into_the_delay_within_the_month",),
    ),
    Mutant(
        "firms attracted by the cost of space",
        "sim/firms.py",
        r"by_destination = -p\.rent_weight",
        "by_destination = p.rent_weight",
        ("tests/test_firms.py::test_more_rent_means_fewer_arrivals_and_fewer_entrants",),
    ),
    Mutant(
        "the cost push on relocation reversed",
        "sim/firms.py",
        r"self\._rent_push\(p\.cost_push, ",
        "self._rent_push(-p.cost_push, ",
        ("tests/test_firms.py::test_more_rent_means_more_exits_and_more_moves",),
    ),
    Mutant(
        "the dispersal close share inverted",
        "sim/firms.py",
        r'(_draws\(f"dispersal close: \{name\}", run\)) < ',
        r"\1 >= ",
        ("tests/test_firms.py::test_dispersed_units_close_in_the_programme_share",),
    ),
    Mutant(
        "distance attracting relocation",
        "sim/firms.py",
        r"lambda: \(-p\.distance_weight",
        "lambda: (p.distance_weight",
        ("tests/test_firms.py::test_more_distance_means_fewer_moves_there",),
    ),
)


def run_tests(folder: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    return done.returncode, (done.stdout.strip().splitlines() or [""])[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="project tree to mutate (default: this checkout)")
    root = parser.parse_args().root.resolve()
    failures = 0
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for name in COPIED:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, folder / name)
        for mutant in MUTANTS:
            path = folder / mutant.file
            original = path.read_text(encoding="utf-8")
            mutated, count = re.subn(mutant.pattern, mutant.replacement, original)
            present = [t for t in mutant.tests if (folder / t.split("::")[0]).exists()]
            if count != 1:
                print(f"NO MATCH  {mutant.issue}: {mutant.file} /{mutant.pattern}/ matched {count} times")
                failures += 1
                continue
            code, _ = run_tests(folder, tuple(present))
            if code != 0:
                print(f"baseline tests fail before mutating: {present}")
                failures += 1
                continue
            path.write_text(mutated, encoding="utf-8")
            try:
                killed = []
                for test in present:  # each named test on its own, so the table says which ones kill it
                    code, summary = run_tests(folder, (test,))
                    if code == 1:
                        killed.append(test)
                status = "KILLED" if killed else "SURVIVED"
                failures += not killed
                print(f"{status:9} {mutant.issue}  ({mutant.file})")
                for test in present:
                    print(f"          {'fails' if test in killed else 'passes'}: {test}")
            finally:
                path.write_text(original, encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
