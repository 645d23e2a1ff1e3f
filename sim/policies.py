"""What each kind of policy in a scenario file accepts: field types, ranges, defaults, meaning.

This is the contract between scenario files and the event timeline (``sim.timeline``);
``sim.scenario`` validates against it and ``docs/scenarios.md`` documents it.
A field type is one of: date, region, regions, sector, sectors, kind, number, integer,
bool, sector_table (a table keyed by sector name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    type: str
    doc: str
    low: float | None = None
    high: float | None = None
    default: Any = None  # None: required

    @property
    def required(self) -> bool:
        return self.default is None


def _date(doc: str, default: Any = None) -> Field:
    return Field("date", doc, default=default)


POLICY_KINDS: dict[str, dict[str, Field]] = {
    "catalogue": {
        "date": _date("when the catalogue (or its revision) takes effect"),
        "coverage_central_six": Field(
            "sector_table", "share of would-be entrants refused in the six central districts", 0, 1
        ),
        "coverage_elsewhere": Field("sector_table", "share refused in Beijing's other districts", 0, 1),
    },
    "dispersal": {
        "sector": Field("sector", "sector dispersed (manufacturing or wholesale_logistics)"),
        "start": _date("programme start"),
        "end": _date("programme end"),
        "rate": Field("number", "share of the targeted units dispersed per year [1/year]", 0, 5),
        "close_share": Field("number", "share of dispersed units that close rather than relocate", 0, 1),
        "regions": Field("regions", "Beijing regions targeted", default="beijing"),
        "destinations": Field("regions", "regions a relocating unit may choose", default="outside_beijing"),
    },
    "admission_control": {
        "date": _date("when the control strength starts to change"),
        "strength": Field(
            "number", "utility penalty on arrivals from other provinces and the rest of China [utility]", 0, 10
        ),
        "ramp_years": Field("number", "years over which the penalty moves to its new strength", 0, 20, default=0.0),
        "regions": Field("regions", "regions under control", default="beijing"),
    },
    "demolition": {
        "start": _date("campaign start"),
        "end": _date("campaign end"),
        "housing_rate": Field("number", "share of the housing capacity demolished per year [1/year]", 0, 0.5),
        "commercial_rate": Field(
            "number", "share of the commercial floor space demolished per year [1/year]", 0, 0.5, default=0.0
        ),
        "regions": Field("regions", "regions of the campaign", default="beijing"),
    },
    "land_release": {
        "date": _date("when the land is released"),
        "housing_build_rate": Field("number", "largest housing start rate from then on [share of capacity/year]", 0, 1),
        "regions": Field("regions", "regions where land is released"),
    },
    "housing_cap": {
        "date": _date("when the cap takes effect"),
        "region": Field("region", "region capped"),
        "population": Field("number", "residents the region's housing may hold [persons]", 0, 1e9),
        "years": Field("number", "years over which housing above the cap is removed", 0.25, 50, default=5.0),
    },
    "rail": {
        "date": _date("opening date"),
        "from": Field("region", "one end"),
        "to": Field("region", "other end"),
        "hours": Field("number", "new travel time [hours]", 0, 24),
    },
    "incentive": {
        "start": _date("start"),
        "end": _date("end", default="never"),
        "region": Field("region", "region offering the incentive"),
        "utility": Field("number", "utility bonus in firms' destination choice [utility]", -50, 50),
        "sectors": Field("sectors", "sectors eligible", default="all"),
        "pharma_only": Field("bool", "only pharmaceutical firms are eligible", default=False),
    },
    "institution_move": {
        "start": _date("first move"),
        "end": _date("last move (moves are spread evenly from start to end)", default="start"),
        "institution": Field("kind", "kind of institution moved"),
        "count": Field("integer", "institutions moved", 1, 10_000),
        "from": Field("regions", "regions they leave"),
        "to": Field("region", "region they move to"),
    },
    "construction": {
        "start": _date("first project start"),
        "end": _date("last project start (starts are spread evenly)"),
        "projects": Field("integer", "projects in the programme", 1, 100_000),
        "workers_per_project": Field("number", "construction workers each project needs on site", 0, 1e6),
        "duration_years": Field("number", "years each project holds its workers", 0.01, 30),
        "housing_per_project": Field("number", "housing capacity added on completion [persons]", 0, 1e7),
        "services_per_project": Field("number", "service capacity added on completion [persons served]", 0, 1e7),
        "region": Field("region", "region built in", default="xiongan"),
    },
}
"""Fields of each policy kind. Every policy also takes ``kind`` and ``enabled`` (default true)."""
