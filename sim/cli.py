"""The command line: ``python -m sim run|check ...`` (also installed as ``sim``).

Exit status: 0 success, 2 bad input (one clear line on stderr), 1 any other failure (a run
that reaches a negative or non-finite state: one line naming it; anything else: an internal error).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sim.errors import InputError, StateError


def _progress(label: str):
    """A one-line progress counter on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        if done % 12 == 0 or done == total:
            sys.stderr.write(f"\r{label}: {done}/{total} months")
            sys.stderr.flush()
            if done == total:
                sys.stderr.write("\n")

    return report


def _seed(text: str) -> int:
    """The ``--seed`` option: a seed as scenario files accept it (an argparse type: bad values exit 2)."""
    from sim.scenario import MAX_SEED

    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {MAX_SEED}, got {seed}")
    return seed


def _folders(args: argparse.Namespace, names: list[str]) -> list[Path]:
    """The run folder of each scenario (``--out``; with several scenarios or none, DIR/NAME)."""
    if args.out is None or len(names) > 1:
        return [Path(args.out or "runs") / name for name in names]
    return [Path(args.out)]


def command_check(args: argparse.Namespace) -> int:
    from sim.model import Model
    from sim.scenario import load_scenario

    for path in args.scenarios:
        scenario = load_scenario(path)
        Model(scenario, [scenario.seed])  # what only the model's set-up sees (region constants, workforce)
        print(f"{path}: ok ({scenario.name}, {scenario.start}-{scenario.end}, {len(scenario.policies)} policies)")
    return 0


def command_run(args: argparse.Namespace) -> int:
    from sim.results import run
    from sim.runfolder import StagedFolder, write_run
    from sim.scenario import load_scenario, source_files

    scenarios = [load_scenario(path) for path in args.scenarios]  # validate all before running any
    inputs = [file for path in args.scenarios for file in source_files(path)]
    folders = _folders(args, [scenario.name for scenario in scenarios])
    if len({folder.resolve() for folder in folders}) < len(folders):
        raise InputError(args.out or "runs", "--out", "two scenarios have the same name and would share a run folder")
    staged: list[StagedFolder] = []
    try:
        for folder in folders:  # every output folder checked, locked and created before any run
            staged.append(StagedFolder(folder, args.force, inputs))
        for scenario, folder in zip(scenarios, staged):
            seed = scenario.seed if args.seed is None else args.seed
            started = time.perf_counter()
            dataset = run(scenario, seed, progress=_progress(scenario.name))
            elapsed = time.perf_counter() - started
            target = write_run(dataset, scenario, folder, seed, elapsed, plots=not args.no_plots)
            print(f"{scenario.name}: {scenario.start}-{scenario.end} seed {seed} in {elapsed:.1f} s -> {target}")
    finally:
        for folder in staged:
            folder.discard()  # unpublished ones; a published folder's lock is already released
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="sim", description="Simulator of Beijing's non-capital-function relocation.")
    top.add_argument("--debug", action="store_true", help="show the full traceback of unexpected errors")
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run scenarios; write a run folder for each")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO.toml")
    run.add_argument("--out", help="run folder (default runs/NAME; with several scenarios, DIR/NAME)")
    run.add_argument("--seed", type=_seed, help="override the scenario's seed")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument(
        "--force", action="store_true", help="replace an existing run folder (whole, once the run is done)"
    )
    run.set_defaults(handler=command_run)

    check = commands.add_parser("check", help="validate scenario files without running them")
    check.add_argument("scenarios", nargs="+", metavar="SCENARIO.toml")
    check.set_defaults(handler=command_check)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StateError as error:
        print(f"error: the run failed, no run folder written: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    except Exception as error:  # a bug or an environment problem, not the user's input
        if args.debug:
            raise
        print(
            f"internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
