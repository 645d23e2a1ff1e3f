"""The run folder: results.nc, results.csv, scenario.toml, events.csv, manifest.json, plots/.

Files are written to a temporary name and renamed when complete, so a crash never
leaves a half-written file that looks finished; the manifest is written last.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import xarray as xr

from sim.results import tidy
from sim.scenario import Scenario


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _atomic(path: Path, write) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def _toml_ready(value: Any) -> Any:
    """The resolved scenario as TOML can hold it (no None, no numpy scalars)."""
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_toml_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_netcdf(dataset: xr.Dataset, path: Path) -> None:
    """NetCDF 3 via scipy: no extra C library, and byte-identical for identical results."""
    _atomic(path, lambda p: dataset.to_netcdf(p, engine="scipy", format="NETCDF3_64BIT"))


def write_run(
    dataset: xr.Dataset, scenario: Scenario, folder: str | Path, seed: int, wall_time: float, plots: bool = True
) -> Path:
    """Write a complete run folder and return its path."""
    from sim import __version__

    folder = Path(folder)
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    events = dataset.attrs.get("events", "")
    stored = dataset.copy()
    stored.attrs.pop("events", None)
    write_netcdf(stored, folder / "results.nc")
    _atomic(folder / "results.csv", lambda p: tidy(stored).to_csv(p, index=False))
    _atomic(folder / "scenario.toml", lambda p: p.write_text(tomli_w.dumps(_toml_ready(scenario.document))))
    _atomic(
        folder / "events.csv",
        lambda p: p.write_text(
            "month,time,policy,action\n"
            + "".join(
                f"{float(m):g},{scenario.start + float(m) / 12:.4f},{name},{action}\n"
                for m, name, action in (line.split("\t") for line in events.splitlines())
            )
        ),
    )
    started = time.perf_counter()
    if plots:
        from sim.plots import save_all  # matplotlib only when drawing

        figures = [str(p.relative_to(folder)) for p in save_all(stored, folder / "plots")]
    else:
        figures = []
    manifest = {
        "scenario": scenario.name,
        "scenario_file": str(scenario.path),
        "config_hash": scenario.config_hash,
        "seed": seed,
        "package_version": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "xarray": xr.__version__,
        "wall_time_s": {"run": round(wall_time, 3), "plots": round(time.perf_counter() - started, 3)},
        "files": ["results.nc", "results.csv", "scenario.toml", "events.csv", *figures],
    }
    _atomic(folder / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    return folder
