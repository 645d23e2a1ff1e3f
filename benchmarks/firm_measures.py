"""Firm behaviour of the shipped scenarios, as docs/model.md §6.10 reports it (a measurement, not a test).

    PYTHONPATH=. python benchmarks/firm_measures.py

Prints, per scenario, Beijing's firms by sector on 1 January 2014, 2021 and 2035 and the
2035 Beijing firm jobs with the entry rate at 0.5, 1 and 1.5 times its value (default seed),
then the report figures the firm module produces in the historical run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import sim
from sim.sectors import FIRM_SECTORS

ROOT = Path(__file__).resolve().parents[1]
BEIJING = ["bj_core", "bj_central", "bj_tongzhou", "bj_other"]
YEARS = (2014.0, 2021.0, 2035.0)
FACTORS = (1.0, 0.5, 1.5)


def main() -> None:
    for name in ("historical", "counterfactual", "plan2021"):
        scenario = sim.load_scenario(ROOT / "scenarios" / f"{name}.toml")
        rate = np.asarray(scenario.parameters["firms.entry_rate"])
        overrides = [{"firms.entry_rate": list(rate * f)} for f in FACTORS]
        ds = sim.run_batch(scenario, seeds=[scenario.seed] * len(FACTORS), overrides=overrides)
        base = ds.isel(run=0)
        firms = base.firms.sel(region=BEIJING).sum("region")
        print(f"\n{name}: Beijing firms {' / '.join(str(int(y)) for y in YEARS)}, ratios to 2014")
        for sector in FIRM_SECTORS:
            v = [float(firms.sel(sector=sector, time=t)) for t in YEARS]
            print(f"  {sector:20s} " + " ".join(f"{x:>10,.0f}" for x in v) + f"  {v[1] / v[0]:.2f} {v[2] / v[0]:.2f}")
        jobs = ds.jobs.sel(region=BEIJING, time=2035.0).sum(("region", "sector")).values / 1e4
        print("  Beijing firm jobs 2035 (10,000): " + ", ".join(f"x{f}: {j:,.0f}" for f, j in zip(FACTORS, jobs)))
        if name == "historical":
            at = {"time": 2021.0}
            print(
                f"  F1 {float(base.refused_registrations_cum.sel(**at)):,.0f} "
                f"(changes {float(base.refused_changes_cum.sel(**at)):,.0f}), "
                f"K2 {float(base.cooperation_projects_cum.sel(**at)):.0f}, "
                f"N2 {float(base.branches_opened_cum.sel(**at).sum()):,.0f}, "
                f"F5 {float(base.high_end_share_new_entrants.sel(time=2014.0)):.3f} -> "
                f"{float(base.high_end_share_new_entrants.sel(**at)):.3f}"
            )


if __name__ == "__main__":
    main()
