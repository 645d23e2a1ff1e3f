"""Public institutions as agents: schools, hospitals, universities, departments, SOE headquarters.

Modelled one to one (they number in the hundreds). They never enter or exit; they
move when the scenario's timeline says so (``institution_move`` policies). Staff move
with their institution's jobs at once; a share of their households follows with a
delay (a DELAY3 in the population model); the rest commute.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

import numpy as np

from sim.errors import InputError
from sim.random import Streams
from sim.regions import Regions
from sim.sectors import INSTITUTION_KINDS


@dataclass(frozen=True)
class MoveOrder:
    """An order from the timeline: move ``count`` institutions of a kind from some regions to one."""

    policy: str
    kind: str
    count: int
    origins: tuple[str, ...]
    destination: str


class Institutions:
    """Institutions of a batch of runs: region (run, institution); kind, staff, capacity per institution."""

    def __init__(self, regions: Regions, streams: Streams) -> None:
        self.regions, self.streams = regions, streams
        kinds, homes, staff, capacity = [], [], [], []
        with (resources.files("sim") / "data" / "institutions_2014.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["region"] not in regions.codes:
                    continue
                n = int(row["count"])
                kinds += [INSTITUTION_KINDS.index(row["kind"])] * n
                homes += [regions.index(row["region"])] * n
                staff += [float(row["staff_each"])] * n
                capacity += [float(row["capacity_each"])] * n
        runs = len(streams.seeds)
        self.kind = np.array(kinds, np.int8)
        self.region = np.tile(np.array(homes, np.int8), (runs, 1))
        self.staff = np.tile(np.array(staff), (runs, 1))
        self.capacity = np.array(capacity)  # persons served
        self.moved = np.zeros((runs, len(kinds)), bool)
        self.moved_count = np.zeros(runs)  # cumulative institutions relocated
        self.staff_moved = np.zeros(runs)  # cumulative staff relocated
        self._tallies: dict[str, np.ndarray] = {}  # by-region sums, read-only, until the next move

    def check_orders(self, policies: dict[str, dict], source: str) -> None:
        """An institution move may order at most what its origins held in 2014; more is a mistake in the
        scenario (the surplus would be silently not moved), so it is refused when the model is set up."""
        for name, p in policies.items():
            if p["kind"] != "institution_move":
                continue
            origins = np.isin(np.array(self.regions.codes)[self.region[0]], p["from"])
            held = int(np.count_nonzero((self.kind == INSTITUTION_KINDS.index(p["institution"])) & origins))
            if p["count"] > held:
                raise InputError(
                    source,
                    f"policies.{name}.count",
                    f"{p['count']} {p['institution']} institutions ordered from {', '.join(p['from'])}, which hold "
                    f"{held} in 2014 (sim/data/institutions_2014.csv); expected at most {held}",
                )

    def _by_region(self, value: np.ndarray) -> np.ndarray:
        runs, n = self.region.shape[0], len(self.regions)
        cell = np.arange(runs)[:, None] * n + self.region
        return np.bincount(
            cell.ravel(), weights=np.broadcast_to(value, cell.shape).ravel(), minlength=runs * n
        ).reshape(runs, n)

    def _tally(self, name: str, count) -> np.ndarray:
        """A by-region sum kept until the next move (read several times a month; institutions move rarely)."""
        if name not in self._tallies:
            self._tallies[name] = count()
            self._tallies[name].flags.writeable = False
        return self._tallies[name]

    def jobs(self) -> np.ndarray:
        """Staff by (run, region)."""
        return self._tally("jobs", lambda: self._by_region(self.staff))

    def service_capacity(self) -> np.ndarray:
        """Service capacity by (run, region) [persons served]."""
        return self._tally("services", lambda: self._by_region(self.capacity))

    def counts(self) -> np.ndarray:
        """Institutions by (run, region, kind)."""
        kinds = range(len(INSTITUTION_KINDS))
        return self._tally("counts", lambda: np.stack([self._by_region(self.kind == k) for k in kinds], axis=-1))

    def move(self, order: MoveOrder, runs_ordered: np.ndarray) -> np.ndarray:
        """Carry out a move in the runs ordered to (a mask); return the staff moved by (run, origin, destination).

        Which institutions go is drawn from the candidates (of the kind, in the origin
        regions, not yet moved) in a random order of the run's stream for this policy.
        """
        runs, n = self.region.shape
        origins = np.isin(np.arange(len(self.regions)), [self.regions.index(o) for o in order.origins])
        candidate = (self.kind == INSTITUTION_KINDS.index(order.kind)) & origins[self.region] & ~self.moved
        candidate &= runs_ordered[:, None]
        draws = self.streams.random(f"institution move: {order.policy}", np.where(runs_ordered, n, 0), n)
        priority = np.where(candidate, draws, np.inf)  # only the ordered runs draw: a run's stream is its own
        rank = np.argsort(np.argsort(priority, axis=1, kind="stable"), axis=1)
        chosen = candidate & (rank < order.count)
        run, item = np.nonzero(chosen)
        destination = self.regions.index(order.destination)
        flows = np.zeros((runs, len(self.regions), len(self.regions)))
        np.add.at(flows, (run, self.region[run, item], destination), self.staff[run, item])
        self.region[run, item] = destination
        self._tallies.clear()
        self.moved[run, item] = True
        self.moved_count += chosen.sum(axis=1)
        self.staff_moved += flows.sum(axis=(1, 2))
        return flows
