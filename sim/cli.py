"""The command line: ``python -m sim run|check ...`` (also installed as ``sim``).

Exit status: 0 success, 2 bad input (one clear line on stderr), 1 any other failure (a run
that reaches a negative or non-finite state: one line naming it; anything else: an internal error).
"""

from __future__ import annotations

import argparse
import os
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


def _stage(text: str) -> None:
    """Progress beyond the months (running, drawing, writing files) on stderr when it is a terminal."""
    if sys.stderr.isatty():
        sys.stderr.write(f"{text}...\n")
        sys.stderr.flush()


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


def _figures(text: str) -> tuple[str, ...]:
    """The ``--figures`` option (an argparse type: bad names exit 2 before any run)."""
    from sim.plots import figure_names

    try:
        return figure_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _folders(args: argparse.Namespace, names: list[str]) -> list[Path]:
    """The run folder of each scenario (``--out``; with several scenarios or none, DIR/NAME)."""
    if args.out is None or len(names) > 1:
        return [Path(args.out or "runs") / name for name in names]
    return [Path(args.out)]


def command_check(args: argparse.Namespace) -> int:
    from sim.model import Model
    from sim.scenario import load_scenario

    failed = 0
    for path in args.scenarios:  # every file checked, each reporting all its mistakes
        try:
            scenario = load_scenario(path)
            Model(scenario, [scenario.seed])  # what only the model's set-up sees (region constants, workforce)
        except InputError as error:
            _print_error(error)
            failed += 1
            continue
        print(f"{path}: ok ({scenario.name}, {scenario.start}-{scenario.end}, {len(scenario.policies)} policies)")
    return 2 if failed else 0


def _print_error(error: InputError) -> None:
    """One line per mistake, each naming its file and key."""
    for line in str(error).splitlines():
        print(f"error: {line}", file=sys.stderr)


DUCK_ARRAYS = ("dask", "pint")
"""Array libraries xarray checks every array against when they are installed (the experiments and
units extras): importing them costs a run about 0.5 s (dask) and 0.07 s (pint) of CPU."""


def _without_duck_arrays() -> None:
    """Keep xarray from importing dask and pint in this process.

    xarray checks every array it wraps against dask's and pint's types when they are installed,
    and asks for dask's scheduler when writing NetCDF. ``run`` holds plain numpy arrays only,
    so a ``sim run`` process marks them as absent (``sys.modules[...] = None``, Python's way
    of blocking an import) unless something has already loaded them. Only when ``sim`` is the
    process (``main()`` reading the command line): a caller of ``main(argv)`` keeps its modules.
    """
    for name in DUCK_ARRAYS:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


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
            figures = () if args.no_plots else args.figures
            _stage(f"writing {folder.target}" + (" (results, then figures)" if figures else ""))
            formats = ("png", "svg") if args.svg else ("png",)
            target = write_run(
                dataset, scenario, folder, seed, elapsed, plots=bool(figures), figure_formats=formats, figures=figures
            )
            print(f"{scenario.name}: {scenario.start}-{scenario.end} seed {seed} in {elapsed:.1f} s -> {target}")
    finally:
        for folder in staged:
            folder.discard()  # unpublished ones; a published folder's lock is already released
    return 0


def _note_folders_as_recorded(args: argparse.Namespace) -> None:
    """--seeds and --ensemble run scenario files; say so when folders are given with them."""
    folders = [i for i in args.inputs if Path(i).is_dir()]
    if folders and (args.seeds > 1 or args.ensemble):
        print(
            f"note: {', '.join(folders)} drawn as recorded; --seeds and --ensemble run scenario files", file=sys.stderr
        )


def command_compare(args: argparse.Namespace) -> int:
    from sim.outputs.compare import compare
    from sim.outputs.report import report

    _note_folders_as_recorded(args)
    formats = ("png", "svg") if args.svg else ("png",)
    made = compare(args.inputs, args.out, args.reference, args.seeds, formats, progress=_stage, ensemble=args.ensemble)
    if not args.no_report:
        report(made, made.folder / "report.html")
    shown = ", ".join(s.name for s in made.sources)
    print(f"compared {shown} (reference {made.reference}) -> {made.folder}")
    print(
        f"open first: {made.figures['key_outputs'][0]}"
        + ("" if args.no_report else f" or {made.folder / 'report.html'}")
    )
    return 0


def command_report(args: argparse.Namespace) -> int:
    from sim.outputs.report import report

    _note_folders_as_recorded(args)
    path = report(args.inputs, args.out, args.reference, args.seeds, progress=_stage, ensemble=args.ensemble)
    print(f"report -> {path}")
    return 0


def command_export(args: argparse.Namespace) -> int:
    from sim.outputs.export import EXPORTERS, export

    formats = [name for name in EXPORTERS if getattr(args, name)] or ["csv"]
    out = args.out or Path("runs", "export", Path(args.source).stem)  # one folder per source: exports never mix
    _stage(f"exporting {args.source} as {', '.join(formats)}")
    paths = export(args.source, out, formats)
    print(f"{len(paths)} files -> {out}")
    return 0


def command_list(args: argparse.Namespace) -> int:
    from sim.scenario import load_scenario

    scenario = load_scenario(args.scenario) if args.scenario else None
    if args.what == "regions":
        from sim.regions import load_regions

        regions = scenario.regions if scenario else load_regions()
        for code, name, beijing in zip(regions.codes, regions.names, regions.beijing):
            print(f"{code:<13} {name}{'  [Beijing]' if beijing else ''}")
    elif args.what == "outputs":
        from sim.model import RECORDED

        for name, (units, dims, meaning) in RECORDED.items():
            print(f"{name:<28} [{units}] ({', '.join(('time', *dims))}) {meaning}")
    elif scenario is None:
        from sim.policies import POLICY_KINDS

        for kind, fields in POLICY_KINDS.items():
            print(f"{kind}: {', '.join(fields)}")
        print("(give a scenario file to list its policies)")
    else:
        from sim.outputs.describe import policy_rows

        for name, kind, when in policy_rows(scenario):
            print(f"{name:<34} {kind:<18} {when}")
    return 0


def command_diff(args: argparse.Namespace) -> int:
    from sim.outputs.describe import diff_against_parent, parent_path, value_files

    child, parent, lines = diff_against_parent(args.scenario)
    if parent is None:
        values = "".join(f"; its values from {f.name}" for f in value_files(args.scenario))
        print(f"{child.name} extends no other scenario ({len(child.policies)} policies{values})")
        return 0
    print(f"{child.name} against its parent {parent.name} ({parent_path(args.scenario).name}):")
    print("\n".join(lines) if lines else "(no differences)")
    return 0


EXAMPLES = """examples:
  sim check scenarios/my_story.toml                  validate only
  sim run scenarios/historical.toml                  one run folder: runs/historical/
  sim run scenarios/historical.toml --seed 7 --out runs/historical_seed7
                                                     another seed, beside it (--force replaces a folder)
  sim run scenarios/historical.toml --figures all --out runs/historical_all
                                                     every figure (default: the two to open first)
  sim compare scenarios/historical.toml scenarios/counterfactual.toml runs/plan2021 --reference historical
  sim compare scenarios/plan2021.toml scenarios/historical.toml --seeds 20 --out runs/fans
  sim compare runs/historical sweeps/lhs             a sweep folder: one fan over its design
  sim report runs/historical runs/plan2021 --out brief.html
  sim export runs/historical --csv --xlsx --out runs/historical/export
  sim list policies scenarios/plan2021.toml          (also: regions, outputs)
  sim diff scenarios/plan2021.toml                   what it changes relative to the file it extends
  sim explore scenarios/plan2021.toml                sliders in a local web page (127.0.0.1)
"""


def _inputs(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("inputs", nargs="+", metavar="SCENARIO.toml|RUN_FOLDER|SWEEP_FOLDER")
    sub.add_argument("--reference", help="scenario the differences are taken from (default: the first)")
    sub.add_argument("--seeds", type=int, default=1, help="runs per scenario file, drawn as quantile fans")
    sub.add_argument(
        "--ensemble",
        metavar="ENSEMBLE.csv",
        help="run scenario files over a calibration ensemble's parameter sets (--seeds of them, default 20)",
    )


def command_params(args: argparse.Namespace) -> int:
    from sim.scenario import load_scenario
    from sim.space import listing

    text = listing(load_scenario(args.scenario))
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `python -m sim params X | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from sim.experiments import load_sweep, sweep

    if args.check:
        spec = load_sweep(args.sweep)
        points = len(spec.design().points)
        print(
            f"{args.sweep}: ok ({spec.method}, {points} points x {spec.replications} replications = "
            f"{points * spec.replications} runs of {spec.scenario.name}, {len(spec.parameters)} varied)"
        )
        return 0

    result = sweep(
        args.sweep,
        args.out,
        backend=args.backend,
        workers=args.workers,
        scheduler=args.scheduler,
        bar=sys.stderr.isatty(),
        analysis=not args.no_analysis,
    )
    failed = len(result.failures)
    print(f"{result.runs} runs, {failed} failed, {result.seconds:.1f} s -> {result.folder}")
    for failure in result.failures[:10]:
        print(f"  run {failure['run']}: {failure['error']}", file=sys.stderr)
    if failed > 10:
        print(f"  ... {failed - 10} more in {result.folder / 'failures.csv'}", file=sys.stderr)
    return 1 if failed and args.fail_on_error else 0


def command_calibrate(args: argparse.Namespace) -> int:
    from sim.calibration.run import calibrate

    started = time.perf_counter()
    stage_started: dict[str, float] = {}
    last_report = [started]

    def report(stage: str, done: int, total: int) -> None:
        """Elapsed time, the stage's progress and its ETA (from the stage's pace so far)."""
        now = time.perf_counter()
        since = stage_started.setdefault(stage, last_report[0])  # a stage starts where the last report was
        last_report[0] = now
        left = f", {(now - since) / done * (total - done) / 60:.1f} min left" if 0 < done < total else ""
        line = f"[{(now - started) / 60:.1f} min] {stage}: {done}/{total}{left}"
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line + ("\n" if done == total else ""))
        elif done == total or done % max(1, total // 10) == 0:  # a log file: a line per tenth of a stage
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    fit = calibrate(
        args.scenario,
        args.out,
        args.seed,
        args.budget,
        report,
        args.backend,
        args.workers,
        args.until,
        args.free_parameters,
        args.targets,
    )
    print(
        f"{fit.evaluations} parameter sets, {len(fit.samples)} in the ensemble, best log posterior "
        f"{fit.log_posterior[0]:.2f} -> {args.out}/fitted.toml, ensemble.csv, fit.md"
    )
    return 0


def command_explore(args: argparse.Namespace) -> int:
    from sim.explore.cli import explore

    return explore(args)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


class _ShowVersion(argparse.Action):
    """``--version``: the package's version, looked up only when asked (not on every command)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace, values, option_string=None) -> None:
        from sim import __version__

        sys.stdout.write(f"sim {__version__}\n")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="sim",
        description="Simulator of Beijing's non-capital-function relocation.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action=_ShowVersion)
    top.add_argument("--debug", action="store_true", help="show the full traceback of unexpected errors")
    commands = top.add_subparsers(dest="command", required=True)

    from sim.plots import ALL_FIGURES, RUN_FIGURES

    run = commands.add_parser("run", help="run scenarios; write a run folder for each")
    run.add_argument("scenarios", nargs="+", metavar="SCENARIO.toml")
    run.add_argument("--out", help="run folder (default runs/NAME; with several scenarios, DIR/NAME)")
    run.add_argument("--seed", type=_seed, help="override the scenario's seed")
    run.add_argument(
        "--figures",
        type=_figures,
        default=RUN_FIGURES,
        metavar="key|all|none|NAME,...",
        help=f"figures to draw (default key: {' and '.join(RUN_FIGURES)}; all: {', '.join(ALL_FIGURES)})",
    )
    run.add_argument("--no-plots", action="store_true", help="draw no figures (the same as --figures none)")
    run.add_argument("--svg", action="store_true", help="also write the figures as SVG (vector, for print)")
    run.add_argument(
        "--force", action="store_true", help="replace an existing run folder (whole, once the run is done)"
    )
    run.set_defaults(handler=command_run)

    check = commands.add_parser("check", help="validate scenario files without running them")
    check.add_argument("scenarios", nargs="+", metavar="SCENARIO.toml")
    check.set_defaults(handler=command_check)

    compare = commands.add_parser(
        "compare", help="compare scenarios: overlay figures, differences, summary table, HTML report"
    )
    _inputs(compare)
    compare.add_argument("--out", default="runs/compare", help="folder for figures/, summary.csv/.md, report.html")
    compare.add_argument("--no-report", action="store_true", help="skip report.html")
    compare.add_argument("--svg", action="store_true", help="also write the figures as SVG (vector, for print)")
    compare.set_defaults(handler=command_compare)

    report = commands.add_parser("report", help="one self-contained HTML file comparing scenarios")
    _inputs(report)
    report.add_argument("--out", default="runs/report.html", help="the HTML file (default runs/report.html)")
    report.set_defaults(handler=command_report)

    export = commands.add_parser("export", help="export one run's results (wide CSV per variable, Excel)")
    export.add_argument("source", metavar="SCENARIO.toml|RUN_FOLDER")
    export.add_argument("--out", help="folder to write into (default runs/export/NAME, NAME the run folder or file's)")
    from sim.outputs.export import EXPORTERS

    for name, (_, text) in EXPORTERS.items():
        export.add_argument(f"--{name}", action="store_true", help=text)
    export.set_defaults(handler=command_export)

    listing = commands.add_parser("list", help="list policies, regions or outputs (of a scenario)")
    listing.add_argument("what", choices=("policies", "regions", "outputs"))
    listing.add_argument("scenario", nargs="?", metavar="SCENARIO.toml")
    listing.set_defaults(handler=command_list)

    diff = commands.add_parser("diff", help="what a scenario changes relative to the scenario it extends")
    diff.add_argument("scenario", metavar="SCENARIO.toml")
    diff.set_defaults(handler=command_diff)

    params = commands.add_parser("params", help="list every settable value of a scenario (its parameter space)")
    params.add_argument("scenario", metavar="SCENARIO.toml")
    params.set_defaults(handler=command_params)

    sweep = commands.add_parser("sweep", help="run a sweep file (resumes an interrupted one: run it again)")
    sweep.add_argument("sweep", metavar="SWEEP.toml")
    sweep.add_argument("--out", help="sweep folder (default sweeps/NAME)")
    sweep.add_argument("--backend", choices=("serial", "processes", "dask"), help="override [execution] backend")
    sweep.add_argument("--workers", type=_positive, help="worker processes (processes, local dask cluster)")
    sweep.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://10.0.0.5:8786 ('local': LocalCluster)")
    sweep.add_argument("--fail-on-error", action="store_true", help="exit 1 if any run failed")
    sweep.add_argument("--no-analysis", action="store_true", help="skip sensitivity indices and plots")
    sweep.add_argument("--check", action="store_true", help="validate the sweep file and its design, run nothing")
    sweep.set_defaults(handler=command_sweep)

    calibrate = commands.add_parser(
        "calibrate", help="fit the free parameters (calibration/free_parameters.toml) to the targets"
    )
    calibrate.add_argument("scenario", nargs="?", default="scenarios/historical.toml", metavar="SCENARIO.toml")
    calibrate.add_argument("--out", default="calibration", help="folder for fitted.toml, ensemble.csv, fit.md")
    calibrate.add_argument("--seed", type=_seed, default=0, help="seed of the search and the sampler")
    calibrate.add_argument("--budget", choices=("small", "full"), default="full", help="search and sampler sizes")
    calibrate.add_argument(
        "--backend", choices=("serial", "processes", "dask"), default="processes", help="executor of the full runs"
    )
    calibrate.add_argument("--workers", type=_positive, default=2, help="worker processes for the full runs")
    calibrate.add_argument(
        "--until", type=float, metavar="YEAR", help="fit only the targets observed by YEAR (out-of-sample check)"
    )
    calibrate.add_argument(
        "--free-parameters", metavar="FILE", help="free parameters (default calibration/free_parameters.toml)"
    )
    calibrate.add_argument("--targets", metavar="FILE", help="targets (default calibration/targets.toml)")
    calibrate.set_defaults(handler=command_calibrate)

    explore = commands.add_parser(
        "explore", help="a local web page: policy levers as sliders, trajectories redrawn (127.0.0.1 only)"
    )
    explore.add_argument("scenario", metavar="SCENARIO.toml")
    explore.add_argument("--port", type=_positive, default=8765, help="port on 127.0.0.1 (default 8765)")
    explore.add_argument("--seed", type=_seed, help="override the scenario's seed")
    explore.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    explore.add_argument("--save-dir", help="where 'Save scenario' writes (default: the scenario file's folder)")
    explore.add_argument(
        "--ensemble",
        metavar="ENSEMBLE.csv",
        help="calibration ensemble drawn as bands (default calibration/ensemble.csv)",
    )
    explore.add_argument("--static", metavar="OUT.html", help="write one self-contained HTML file over a grid instead")
    explore.add_argument(
        "--grid",
        action="append",
        metavar="ADDRESS=LEVELS",
        help="with --static: a slider and its levels, v1,v2,... or low:high:n (1-3 of them; at most 400 runs)",
    )
    explore.set_defaults(handler=command_explore)
    return top


EXTRAS = {  # an optional package -> the extra of pyproject.toml that installs it
    "emcee": "calibration",
    "SALib": "experiments",
    "tqdm": "experiments",
    "dask": "experiments",
    "distributed": "experiments",
    "openpyxl": "excel",
    "starlette": "explore",
    "uvicorn": "explore",
    "numba": "fast",
    "pysd": "xmile",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if argv is None and args.command == "run":
        _without_duck_arrays()
    try:
        return args.handler(args)
    except InputError as error:
        _print_error(error)
        return 2
    except StateError as error:
        print(f"error: the run failed, no run folder written: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resumes = " (run the same command again to resume it)" if args.command in ("sweep", "calibrate") else ""
        print(f"interrupted{resumes}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as error:  # an optional extra not installed
        extra = EXTRAS.get((error.name or "").split(".")[0])
        if extra is None or args.debug:
            raise
        print(f"error: this needs {error.name}: python -m pip install -e '.[{extra}]'", file=sys.stderr)
        return 2
    except Exception as error:  # a bug or an environment problem, not the user's input
        if args.debug:
            raise
        print(
            f"internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
