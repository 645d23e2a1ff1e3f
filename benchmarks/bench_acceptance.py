"""Issue 9's acceptance figures for the full model, each in a fresh process, CPU time beside wall time.

    python benchmarks/bench_acceptance.py               # prints a Markdown table for docs/performance.md
    python benchmarks/bench_acceptance.py --repeat 5 --only months1 months16
    python benchmarks/bench_acceptance.py --repeat 3 --against ../base   # another checkout, interleaved

Figures (historical scenario, 2014-2035, 252 months):

- ``months1``, ``months16`` (and, on request, ``months64``): ``Model.run`` (the model months,
  recording included) of a batch of 1, 16 (64) seeds, per run, with the process's peak RSS;
  building the ``Model`` (agents, constants) is reported beside it. The model's default path
  in a fresh process: numpy (``sim.compiled``);
- on request, the compiled stocks' month (numba, ``compiled=True``): ``months1c``, ``months16c`` in a
  fresh process (numba's start-up, about 0.6 s, lands in the building and the first month),
  ``months1w`` after a first run in the same process (a long-lived process: the explore server,
  a sweep worker), ``rss64c``: ``rss64`` with ``SIM_COMPILED=1``;
- ``check``: ``python -m sim check scenarios/historical.toml`` as a command;
- ``run``: ``python -m sim run scenarios/historical.toml`` as a command (figures, NetCDF, CSV),
  and ``run --no-plots``;
- ``rss64``: peak resident memory of a process that imports ``sim`` and runs
  ``sim.run_batch`` on 64 seeds (and, for reference, of one that only imports).

Every measurement runs in its own process, in interleaved rounds; medians are reported. With
``--against DIR`` each measurement is also taken with the checkout in DIR (its own copy of this
script), alternating with this one, for a before/after in one sitting. The
machine may be shared: CPU time (``getrusage`` of the measured process: user + system) is the
steadier figure, wall time depends on the load average, printed before and after.
A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "historical.toml"
FIGURES = ("months1", "months16", "check", "run", "run_no_plots", "rss64", "rss_import")
EXTRA = ("months64", "months1c", "months1w", "months16c", "rss64c")  # on request (--only ...)


def child(kind: str) -> None:
    """Inside the measured process: print a JSON line of timings."""
    sys.path.insert(0, str(ROOT))  # this checkout's sim, whatever is installed
    import sim

    scenario = sim.load_scenario(SCENARIO)
    if kind == "rss_import":
        import sim.results  # noqa: F401 - what run_batch needs, without running

        out = {}
    elif kind in ("rss64", "rss64c"):
        if kind == "rss64c":
            os.environ["SIM_COMPILED"] = "1"
        sim.run_batch(scenario, list(range(64)))
        out = {}
    else:
        from sim.model import Model

        batch = int(kind.removeprefix("months").rstrip("cw"))
        compiled = True if kind[-1] in "cw" else None
        if kind.endswith("w"):
            Model(scenario, [99], compiled=True).run()  # numba loaded, the kernels compiled or read from cache
        wall, cpu = time.perf_counter(), time.process_time()
        model = Model(scenario, list(range(batch)), compiled=compiled)
        build = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        model.run()
        out = {
            "build_wall": build[0] / batch,
            "build_cpu": build[1] / batch,
            "wall": (time.perf_counter() - wall) / batch,
            "cpu": (time.process_time() - cpu) / batch,
        }
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(kind: str, folder: Path) -> dict[str, float]:
    """One measurement in a fresh process: its own timings, or the command's wall and CPU time."""
    commands = {
        "check": ["-m", "sim", "check", str(SCENARIO)],
        "run": ["-m", "sim", "run", str(SCENARIO), "--out", str(folder / "run"), "--force"],
        "run_no_plots": ["-m", "sim", "run", str(SCENARIO), "--out", str(folder / "bare"), "--force", "--no-plots"],
    }
    argv = [sys.executable, *(commands.get(kind) or [__file__, "--child", kind])]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)  # this process's own CPU time and peak RSS
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{err.read()}")
        if kind in commands:
            return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}
        return json.loads(out.read().strip().splitlines()[-1])


def _other_checkout(root: Path):
    """The other checkout's copy of this script, as a module (its ``measure`` runs its own ``sim``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_against", root / "benchmarks" / "bench_acceptance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {f: round(statistics.median(r[f] for r in rounds), 3) for f in rounds[0]}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_argument("--repeat", type=int, default=5, help="interleaved rounds (medians are reported)")
    options.add_argument("--only", nargs="+", choices=FIGURES + EXTRA, default=list(FIGURES))
    options.add_argument("--child", choices=FIGURES + EXTRA, help=argparse.SUPPRESS)
    options.add_argument("--against", type=Path, help="another checkout to measure alternately (before/after)")
    args = options.parse_args()
    if args.child:
        child(args.child)
        return
    import numpy as np

    load_before = os.getloadavg()
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in args.only}
    others: dict[str, list[dict[str, float]]] = {k: [] for k in args.only}
    other = _other_checkout(args.against) if args.against else None
    with tempfile.TemporaryDirectory(prefix="bench_acceptance_") as tmp:
        for _ in range(args.repeat):
            for kind in args.only:
                if other is not None and kind in other.FIGURES + getattr(other, "EXTRA", ()):
                    others[kind].append(other.measure(kind, Path(tmp) / "against"))
                rounds[kind].append(measure(kind, Path(tmp)))
    load_after = os.getloadavg()
    median = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in rounds.items()}
    if other is not None:
        print(f"against {args.against}:", json.dumps({k: _medians(v) for k, v in others.items() if v}))
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}; "
        f"medians of {args.repeat} interleaved rounds, each in a fresh process; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after.\n"
    )
    targets = {
        "months1": ("model months, batch of 1 (`Model.run`)", "< 0.3 s"),
        "months16": ("model months, batch of 16, per run", "< 0.25 s"),
        "months64": ("model months, batch of 64, per run", ""),
        "months1c": ("model months, batch of 1, compiled, fresh process", ""),
        "months1w": ("model months, batch of 1, compiled, after a first run", ""),
        "months16c": ("model months, batch of 16, per run, compiled, fresh process", ""),
        "rss64c": ("peak RSS, `sim.run_batch` of 64 seeds, compiled", ""),
        "check": ("`python -m sim check scenarios/historical.toml`", "< 0.3 s"),
        "run": ("`python -m sim run scenarios/historical.toml` (figures)", "< 1.5 s"),
        "run_no_plots": ("`python -m sim run ... --no-plots`", ""),
        "rss64": ("peak RSS, `sim.run_batch` of 64 seeds", "< 400 MB"),
        "rss_import": ("peak RSS, imports only (`sim`, `sim.results`)", "about 100 MB"),
    }
    print("| figure | target | CPU | wall | peak RSS |\n|---|---|---:|---:|---:|")
    for kind, m in median.items():
        what, target = targets[kind]
        timed = "cpu" in m
        cpu = f"{m['cpu']:.3f} s" if timed else ""
        wall = f"{m['wall']:.3f} s" if timed else ""
        print(f"| {what} | {target} | {cpu} | {wall} | {m['rss_mb']:.0f} MB |")
        if "build_cpu" in m:
            print(
                f"| building the Model, batch of {kind[6:]}, per run | "
                f"| {m['build_cpu']:.3f} s | {m['build_wall']:.3f} s | |"
            )
    print(
        "\nall rounds:", json.dumps({k: [{f: round(x, 3) for f, x in r.items()} for r in v] for k, v in rounds.items()})
    )


if __name__ == "__main__":
    main()
