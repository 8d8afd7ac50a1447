"""Patches on one grid: fixed patch-sized cells of the S2 tile's UTM grid, sampled from a seed.

Each UTM zone is partitioned once and for all into cells of ``patch_size * scale`` metres whose
corners are multiples of that side (so also of ``scale``; and of the S2 10 m pixel grid, whose tile
origins are multiples of 10 m, whenever ``scale`` is a multiple of 10 m): both sensors are resampled onto exactly these pixels, and a rerun
finds the same cells. A cell's lon/lat polygon is its UTM square with ``SEGMENTS`` points per
edge, projected by pyproj like everything else in senclr.export.utm.

Sampling spreads patches over the region with a Halton sequence (bases 2 and 3) in equal-area
coordinates (longitude, sine of latitude), shifted by a seeded random offset and rotation
(Cranley-Patterson): any prefix of it covers the region evenly, unlike independent random draws,
and it is lazy: a 250,000 km² region holds ~150,000 cells of 1.28 km, ~10 million of 160 m (16 px),
and none of them is enumerated.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import shapely

from ..utm import (central_meridian, lonlat_to_utm_np, parse_utm_crs, utm_crs, utm_to_lonlat,
                  utm_to_lonlat_np, utm_zone)

log = logging.getLogger(__name__)
SEGMENTS = 4  # points per cell edge in lon/lat: UTM-straight edges curve slightly in lon/lat
_BATCH = 4096


@dataclass(frozen=True)
class Patch:
    """One cell of a UTM grid: where both sensors are cut, on ``size_px`` x ``size_px`` pixels."""

    crs: str  # "EPSG:326zz" / "EPSG:327zz", the S2 tile's CRS
    x0: float  # upper-left corner, UTM metres
    y0: float
    size_px: int
    scale: float  # metres per pixel
    lon: float  # centre, rounded to 1e-6 degrees as PairMeta stores it
    lat: float
    polygon: object  # shapely Polygon, lon/lat
    transform: tuple[float, float, float, float, float, float]  # affine a..f as in rasterio

    @property
    def key(self) -> tuple[str, float, float]:
        return self.crs, self.x0, self.y0

    def to_json(self) -> dict:
        return {"crs": self.crs, "x0": self.x0, "y0": self.y0, "size_px": self.size_px, "scale": self.scale,
                "lon": self.lon, "lat": self.lat, "transform": list(self.transform)}


class UtmGrid:
    """The fixed partition of one UTM zone into square cells; cell (i, j) has upper-left (i, j) * side."""

    def __init__(self, crs: str, patch_size: int, scale: float):
        self.crs, self.size_px, self.scale = crs, int(patch_size), float(scale)
        self.zone, self.north = parse_utm_crs(crs)
        self.side = self.size_px * self.scale
        self._step = self.side / SEGMENTS
        s = SEGMENTS  # ring from the upper left, counter-clockwise (GeoJSON's right-hand rule)
        ring = ([(0, -k) for k in range(s)] + [(k, -s) for k in range(s)]
                + [(s, -s + k) for k in range(s)] + [(s - k, 0) for k in range(s)])
        self._ring = np.array(ring + ring[:1], dtype=np.int64)

    def cell_of(self, easting: float, northing: float) -> tuple[int, int]:
        """Indices of the cell holding a UTM point (its top edge is the next multiple of side)."""
        return math.floor(easting / self.side), math.floor(northing / self.side) + 1

    def cells_of(self, lon: np.ndarray, lat: np.ndarray) -> list[tuple[int, int]]:
        """``cell_of`` for lon/lat arrays."""
        e, n = lonlat_to_utm_np(lon, lat, self.zone, self.north)
        return list(zip(np.floor(e / self.side).astype(np.int64).tolist(),
                        (np.floor(n / self.side).astype(np.int64) + 1).tolist()))

    def polygons(self, i, j) -> np.ndarray:
        """Lon/lat polygons of cells (i, j), vectorised; shared edges use identical vertices."""
        i, j = np.atleast_1d(np.asarray(i, dtype=np.int64)), np.atleast_1d(np.asarray(j, dtype=np.int64))
        x = (SEGMENTS * i[:, None] + self._ring[None, :, 0]) * self._step
        y = (SEGMENTS * j[:, None] + self._ring[None, :, 1]) * self._step
        lon, lat = utm_to_lonlat_np(x, y, self.zone, self.north)
        return shapely.polygons(np.stack([lon, lat], axis=-1))

    def patch(self, i: int, j: int, polygon=None) -> Patch:
        x0, y0 = float(SEGMENTS * i * self._step), float(SEGMENTS * j * self._step)
        half = self.side / 2
        lon, lat = utm_to_lonlat(x0 + half, y0 - half, self.zone, self.north)
        return Patch(self.crs, x0, y0, self.size_px, self.scale, round(lon, 6), round(lat, 6),
                     self.polygons(i, j)[0] if polygon is None else polygon,
                     (self.scale, 0.0, x0, 0.0, -self.scale, y0))

    def index_bounds(self, geom) -> tuple[int, int, int, int]:
        """(i_min, i_max, j_min, j_max) of the cells that can meet a lon/lat geometry."""
        pts = shapely.get_coordinates(shapely.segmentize(shapely.boundary(geom), 0.01))
        e, n = lonlat_to_utm_np(pts[:, 0], pts[:, 1], self.zone, self.north)
        i0, j0 = self.cell_of(float(e.min()), float(n.min()))
        i1, j1 = self.cell_of(float(e.max()), float(n.max()))
        return i0, i1, j0, j1


def candidate_cells(region, crs: str, patch_size: int, scale: float) -> Iterator[Patch]:
    """Cells of ``crs``'s grid lying fully inside ``region``, row by row from the north-west.

    Lazy: for small regions, tests and maps; sampling never enumerates a large region.
    """
    grid = UtmGrid(crs, patch_size, scale)
    shapely.prepare(region)
    i0, i1, j0, j1 = grid.index_bounds(region)
    cols = np.arange(i0, i1 + 1)
    for j in range(j1, j0 - 1, -1):
        polys = grid.polygons(cols, np.full_like(cols, j))
        for k in np.flatnonzero(shapely.contains(region, polys)):
            yield grid.patch(int(cols[k]), j, polys[k])


def halton_points(bounds, seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``start .. start+count`` of the seeded equal-area Halton sequence over lon/lat bounds."""
    rng = np.random.default_rng([int(seed), 0x5E1C])
    offset, shift = int(rng.integers(1, 1 << 30)), rng.random(2)
    k = np.arange(start, start + count, dtype=np.int64) + offset
    u, v = (_radical_inverse(k, 2) + shift[0]) % 1.0, (_radical_inverse(k, 3) + shift[1]) % 1.0
    w, s, e, n = bounds
    lo, hi = math.sin(math.radians(s)), math.sin(math.radians(n))
    return w + u * (e - w), np.degrees(np.arcsin(np.clip(lo + v * (hi - lo), -1.0, 1.0)))


def _radical_inverse(k: np.ndarray, base: int) -> np.ndarray:
    k, r, f = k.copy(), np.zeros(k.shape), 1.0
    while k.any():
        f /= base
        r += f * (k % base)
        k //= base
    return r


class _Footprints:
    """S2 footprints by CRS, queried for the scenes that contain a point or a whole cell."""

    def __init__(self, footprints):
        rows = sorted((str(i), str(c), g) for i, c, g in footprints)
        self.ids = np.array([r[0] for r in rows], dtype=object)
        self.crs = np.array([r[1] for r in rows], dtype=object)
        self.geoms = np.array([r[2] for r in rows], dtype=object)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)

    def bounds(self):
        return shapely.total_bounds(self.geoms) if len(self.geoms) else None

    def crs_at(self, lon: np.ndarray, lat: np.ndarray) -> dict[int, set[str]]:
        """For each point index, the CRSes of footprints containing that point."""
        pt, fp = self.tree.query(shapely.points(lon, lat), predicate="within")
        out: dict[int, set[str]] = defaultdict(set)
        for p, f in zip(pt.tolist(), fp.tolist()):
            out[p].add(self.crs[f])
        return out

    def containing(self, polygon, crs: str) -> list[str]:
        idx = self.tree.query(polygon, predicate="within")
        return sorted({self.ids[k] for k in idx if self.crs[k] == crs})


class _Occupied:
    """Accepted patch polygons in lon/lat buckets, to refuse overlaps (also across UTM zones)."""

    def __init__(self, size_deg: float):
        self.size, self.cells = size_deg, defaultdict(list)

    def _keys(self, geom):
        w, s, e, n = geom.bounds
        return [(a, b) for a in range(math.floor(w / self.size), math.floor(e / self.size) + 1)
                for b in range(math.floor(s / self.size), math.floor(n / self.size) + 1)]

    def overlaps(self, geom) -> bool:
        near = {id(g): g for k in self._keys(geom) for g in self.cells.get(k, ())}
        return bool(near) and bool(shapely.relate_pattern(geom, list(near.values()), "T********").any())

    def add(self, geom) -> None:
        for k in self._keys(geom):
            self.cells[k].append(geom)


def _preference(lon: float, lat: float, crses: set[str]) -> list[str]:
    """The point's own zone first, then the others by distance from their central meridian."""
    def rank(crs):
        zone, _ = parse_utm_crs(crs)
        own = crs == utm_crs(utm_zone(lon, lat), lat >= 0)
        return not own, abs((lon - central_meridian(zone) + 180) % 360 - 180), crs
    return sorted(crses, key=rank)


def exhaustive_count(domain, side_m: float) -> int:
    """Sequence points after which every cell inside ``domain`` holds one, so nothing is left to find.

    N = 2^a 3^b consecutive Halton points put exactly one point in each of the 2^a x 3^b boxes of
    the (rotated) unit square, whatever the offset; a cell at least two boxes wide and high
    contains a whole box. Cell extents are taken small (x1.5 margin for grid convergence).
    """
    w, s, e, n = domain
    cell_lon = side_m / 111_320 / 1.5  # degrees of longitude: narrowest at the equator
    cos_max = math.cos(math.radians(min(max(abs(s), abs(n)), 89.9)))
    cell_sin = side_m * cos_max / 6_400_000 / 1.5  # in sin(latitude): smallest at the highest latitude
    span_sin = abs(math.sin(math.radians(n)) - math.sin(math.radians(s)))
    a = max(0, math.ceil(math.log2(2 * (e - w) / cell_lon)))
    b = max(0, math.ceil(math.log(2 * span_sin / cell_sin, 3)))
    return 2**a * 3**b


def sample_patches(region, footprints, n: int, patch_size: int, scale: float, seed: int,
                   max_tries: int | None = None) -> list[tuple[Patch, list[str]]]:
    """Up to ``n`` non-overlapping patches inside ``region`` and inside an S2 footprint of their CRS.

    ``footprints`` is [(scene_id, crs, lon/lat polygon)]. Returns [(patch, ids of the scenes of
    that CRS containing it)] in sampling order. Reproducible from ``seed`` and independent of the
    order of ``footprints``. Fewer than ``n`` come back when the region holds fewer eligible cells
    (then every eligible cell was tried: see exhaustive_count) or ``max_tries`` sequence points
    (default max(200 n, 200,000)) were spent first.
    """
    fps = _Footprints(footprints)
    fb = fps.bounds()
    if fb is None or n < 1:
        return []
    rb = region.bounds
    domain = (max(rb[0], fb[0]), max(rb[1], fb[1]), min(rb[2], fb[2]), min(rb[3], fb[3]))
    if domain[0] >= domain[2] or domain[1] >= domain[3]:
        return []
    shapely.prepare(region)
    grids = {c: UtmGrid(c, patch_size, scale) for c in sorted(set(fps.crs))}
    occupied = _Occupied(2 * patch_size * scale / 111_000)
    budget = max_tries if max_tries is not None else max(200 * n, 200_000)
    budget = min(budget, exhaustive_count(domain, patch_size * scale))
    found, seen, tried = [], set(), 0
    while len(found) < n and tried < budget:
        count = min(_BATCH, budget - tried)
        lon, lat = halton_points(domain, seed, tried, count)
        tried += count
        inside = np.flatnonzero(shapely.contains_xy(region, lon, lat))
        lon, lat = lon[inside], lat[inside]
        crs_sets = fps.crs_at(lon, lat)
        cells = {c: g.cells_of(lon, lat) for c, g in grids.items()}
        for p in sorted(crs_sets):
            fresh = {c for c in crs_sets[p] if (c, *cells[c][p]) not in seen}
            if not fresh:
                continue
            hit = _try_point(float(lon[p]), float(lat[p]), fresh, cells, p, grids, region, fps, occupied, seen)
            if hit is not None:
                found.append(hit)
                if len(found) == n:
                    break
    log.info("sampled %d of %d patches after %d sequence points", len(found), n, tried)
    return found


def _try_point(lon, lat, crses, cells, p, grids, region, fps, occupied, seen):
    """The first acceptable cell holding point ``p``, trying its CRSes in order of preference."""
    for crs in _preference(lon, lat, crses):
        i, j = cells[crs][p]
        seen.add((crs, i, j))
        grid = grids[crs]
        poly = grid.polygons(i, j)[0]
        if not region.contains(poly):
            continue
        ids = fps.containing(poly, crs)
        if ids and not occupied.overlaps(poly):
            occupied.add(poly)
            return grid.patch(i, j, poly), ids
    return None
