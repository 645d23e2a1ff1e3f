"""Mutation score per module from a finished mutmut run (``mutants/``), equivalent mutants set apart.

    python -m mutmut run --max-children 1 && python benchmarks/mutation_score.py
    python benchmarks/mutation_score.py --recheck   # after adding tests: survivors back to "not checked"
    python benchmarks/mutation_score.py --verify-outside   # run the default-suite tests that kill survivors of the tier

Reads mutmut's per-file results (``mutants/**/*.py.meta``) and the reviewed list of
equivalent mutants (``tests/equivalent_mutants.toml``: mutant name -> why no test can
tell it from the original; its table ``[killed_outside_the_fast_tier]``: mutant -> the test of the
default suite that kills it, where that test is too slow for the tier; its table
``[not_reached_by_the_mutation_run]``: mutant -> why the mutation run cannot execute it, the compiled
paths' dispatch, which ``MUTANT_UNDER_TEST`` switches off by design). Score = killed /
(all checked - equivalent - not reached), a mutant killed outside the tier counting as killed (``--verify-outside``
runs each such test on its mutant and says whether it still fails); a timeout counts as killed
(the mutant made the tests hang), and so does a test process
killed by the system (exit -9: out of memory). Prints one row per module and the time the
mutants took (the sum of their test runs, one process), and lists the survivors that
are not on the equivalent list: each is a missing test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# mutmut's exit codes for killed and timed out, and -9: the test process was killed (SIGKILL: out of memory or past
# its CPU limit), never a pass (mutmut calls it "segfault" and leaves it out of its own score)
KILLED = {1, 3, 36, 24, -24, 152, 255, -9}
SURVIVED = {0}


def recheck(metas: list[Path]) -> int:
    """Mark survivors and mutants without tests as not checked, so the next ``mutmut run`` tests them again.

    mutmut keeps a verdict until the mutated function changes; new tests alone do not reopen it.
    """
    reopened = 0
    for meta in metas:
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code is not None and code not in KILLED:
                codes[name] = None
                reopened += 1
        meta.write_text(json.dumps(data), encoding="utf-8")
    print(f"{reopened} mutants reopened; now run `python -m mutmut run --max-children 1`")
    return 0


def verify_outside(outside: dict[str, str]) -> int:
    """Run each listed test on its mutant inside ``mutants/`` (mutmut's switch: MUTANT_UNDER_TEST)."""
    survived = 0
    for name, test in outside.items():
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts=", test]
        env = os.environ | {"MUTANT_UNDER_TEST": name}
        done = subprocess.run(command, cwd=ROOT / "mutants", env=env, capture_output=True, text=True)
        killed = done.returncode == 1
        survived += not killed
        print(f"{'killed' if killed else 'NOT KILLED'}  {name}  by  {test}")
    return 1 if survived else 0


def main() -> int:
    listed = tomllib.loads((ROOT / "tests" / "equivalent_mutants.toml").read_text(encoding="utf-8"))
    outside = listed.get("killed_outside_the_fast_tier", {})
    unreached = listed.get("not_reached_by_the_mutation_run", {})
    equivalent = {name: why for name, why in listed.items() if isinstance(why, str)}
    metas = sorted((ROOT / "mutants" / "sim").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `python -m mutmut run --max-children 1` first")
        return 1
    if sys.argv[1:] == ["--recheck"]:
        return recheck(metas)
    if sys.argv[1:] == ["--verify-outside"]:
        return verify_outside(outside)
    rows, missing, stale, seconds = [], [], [], 0.0
    known = set()
    for meta in metas:
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes = data["exit_code_by_key"]
        known.update(codes)
        if not codes:
            continue
        module = meta.relative_to(ROOT / "mutants").as_posix().removesuffix(".meta")
        tally = Counter()
        for name, code in codes.items():
            if code is None:
                tally["not checked"] += 1
            elif code in KILLED:
                tally["killed"] += 1
                if name in equivalent or name in outside or name in unreached:
                    stale.append(f"{name} (killed)")
            elif name in outside:
                tally["killed"] += 1
                tally["outside"] += 1
            elif name in equivalent:
                tally["equivalent"] += 1
            elif name in unreached:
                tally["unreached"] += 1
            elif code in SURVIVED:
                tally["survived"] += 1
                missing.append(name)
            else:
                tally[f"other ({code})"] += 1
                missing.append(f"{name} (exit code {code})")
        seconds += sum(data.get("durations_by_key", {}).values())
        checked = sum(v for k, v in tally.items() if k not in ("not checked", "equivalent", "outside", "unreached"))
        score = tally["killed"] / checked if checked else float("nan")
        rows.append((module, len(codes), tally, score))
    print(
        f"{'module':28} {'mutants':>7} {'checked':>7} {'killed':>6} {'(out)':>5} {'equiv':>5} {'unrch':>5} {'surv':>5} "
        f"{'score':>6}"
    )
    for module, total, tally, score in rows:
        checked = total - tally["not checked"]
        print(
            f"{module:28} {total:7d} {checked:7d} {tally['killed']:6d} {tally['outside']:5d} {tally['equivalent']:5d} "
            f"{tally['unreached']:5d} {tally['survived']:5d} {score:6.1%}"
        )
    total = sum((tally for _, _, tally, _ in rows), Counter())
    scored = sum(v for k, v in total.items() if k not in ("not checked", "equivalent", "outside", "unreached"))
    print(
        f"{'all':28} {sum(r[1] for r in rows):7d} {sum(r[1] for r in rows) - total['not checked']:7d} "
        f"{total['killed']:6d} {total['outside']:5d} {total['equivalent']:5d} {total['unreached']:5d} "
        f"{total['survived']:5d} "
        f"{total['killed'] / scored if scored else float('nan'):6.1%}"
    )
    print(f"test time of the checked mutants: {seconds / 60:.1f} min (one process)")
    if missing:
        print("survivors not on the equivalent list (each needs a test or a reviewed reason):")
        for name in missing:
            print("   ", name)
        if any(name.endswith("(exit code 33)") for name in missing):
            print("exit code 33: no test reaches the function in mutmut's map, which only grows by new tests;")
            print("delete mutants/mutmut-stats.json and run again to rebuild it")
    stale += [f"{name} (no such mutant)" for name in [*equivalent, *outside, *unreached] if name not in known]
    if stale:
        print("entries of tests/equivalent_mutants.toml to review (renumbered after a code change?):")
        for name in stale:
            print("   ", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
