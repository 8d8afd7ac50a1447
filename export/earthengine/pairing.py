"""The pairing policy as a pure function over scene metadata, the reference for the Earth Engine join.

For an S2 scene and a patch: the S1 scene nearest in time within ``max_dt`` whose footprint
contains the patch (``ee.Join.saveBest`` + ``ee.Filter.maxDifference`` + a footprint condition).
Ties go to the smaller product id so the choice never depends on input order. For a patch seen by
several S2 scenes, the one giving the closest pair wins, then the less cloudy, then the smaller id.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import shapely

from senclr.pair import make_pair_id

from .grid import Patch

NO_S2 = "no S2 scene contains the patch"
NO_S1 = "no S1 scene within max-dt contains the patch"
PAIRING_DISAGREEMENT = "pairing_disagreement"  # Earth Engine's join picked another S1 scene (or none)


@dataclass(frozen=True)
class Scene:
    """What pairing needs to know about one product; ``time`` is an aware UTC datetime."""

    id: str
    time: datetime
    footprint: object  # shapely polygon, lon/lat
    orbit: str | None = None  # S1: ASCENDING / DESCENDING
    relative_orbit: int | None = None  # S1
    cloud_pct: float | None = None  # S2 CLOUDY_PIXEL_PERCENTAGE
    crs: str | None = None  # S2 tile CRS, "EPSG:326zz"
    tile: str | None = None  # S2 MGRS tile, e.g. "31UDQ"

    def __post_init__(self):
        if self.time.tzinfo is None:
            raise ValueError(f"scene {self.id}: time {self.time} has no timezone; give an aware UTC datetime")


@dataclass(frozen=True)
class Pairing:
    patch: Patch
    s2: Scene
    s1: Scene
    dt_hours: float  # S1 time - S2 time: negative when the radar came first
    pair_id: str


def _gap(s1: Scene, s2: Scene) -> timedelta:
    return abs(s1.time - s2.time)


def _max_dt(max_dt_hours: float) -> timedelta:
    return timedelta(hours=max_dt_hours)


def best_s1(patch_polygon, s2: Scene, s1_scenes, max_dt_hours: float) -> Scene | None:
    """The S1 scene nearest in time to ``s2`` (|Δt| <= max_dt, inclusive) containing the patch."""
    cap = _max_dt(max_dt_hours)
    eligible = [s for s in s1_scenes if _gap(s, s2) <= cap and s.footprint.contains(patch_polygon)]
    return min(eligible, key=lambda s: (_gap(s, s2), s.id), default=None)


def hours(s1: Scene, s2: Scene) -> float:
    return round((s1.time - s2.time).total_seconds() / 3600.0, 4)


class _S1Index:
    """S1 scenes sorted by time, so each S2 scene looks only at its ±max_dt window."""

    def __init__(self, s1_scenes):
        self.scenes = sorted(s1_scenes, key=lambda s: (s.time, s.id))
        self.times = [s.time for s in self.scenes]
        for s in self.scenes:
            shapely.prepare(s.footprint)

    def window(self, s2: Scene, cap: timedelta) -> list[Scene]:
        lo, hi = bisect_left(self.times, s2.time - cap), bisect_right(self.times, s2.time + cap)
        return self.scenes[lo:hi]


def pair_patches(samples, s2_scenes, s1_scenes, max_dt_hours: float):
    """Pairings for sampled patches, and the patches dropped with the reason.

    ``samples`` is [(Patch, [S2 scene ids containing it])] as grid.sample_patches returns.
    Returns (pairings, dropped) with dropped = [(Patch, reason)], both in sample order.
    """
    by_id = {s.id: s for s in s2_scenes}
    index, cap = _S1Index(s1_scenes), _max_dt(max_dt_hours)
    windows: dict[str, list[Scene]] = {}
    pairings, dropped = [], []
    for patch, ids in samples:
        s2s = [by_id[i] for i in ids if i in by_id]
        if not s2s:
            dropped.append((patch, NO_S2))
            continue
        best = None
        for s2 in s2s:
            if s2.id not in windows:
                windows[s2.id] = index.window(s2, cap)
            s1 = best_s1(patch.polygon, s2, windows[s2.id], max_dt_hours)
            if s1 is not None:
                rank = (_gap(s1, s2), s2.cloud_pct if s2.cloud_pct is not None else 101.0, s2.id)
                best = min(best, (rank, s2, s1), key=lambda b: b[0]) if best else (rank, s2, s1)
        if best is None:
            dropped.append((patch, NO_S1))
            continue
        _, s2, s1 = best
        pairings.append(Pairing(patch, s2, s1, hours(s1, s2), make_pair_id(patch.lon, patch.lat, s1.id, s2.id)))
    return pairings, dropped


def dt_histogram(pairings, bins=None) -> dict:
    """Δt (hours, S1 - S2) counts for the plan: ``bins`` edges, or a count; default 12 h bins."""
    dts = np.array([p.dt_hours for p in pairings], dtype=float)
    if bins is None:
        reach = max(24.0, float(np.ceil(np.abs(dts).max() / 12) * 12)) if len(dts) else 24.0
        bins = np.arange(-reach, reach + 12, 12)
    counts, edges = np.histogram(dts, bins=bins)
    return {"edges_hours": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "n": int(len(dts)), "median_abs_hours": float(np.median(np.abs(dts))) if len(dts) else None}
