"""Scene footprints as Earth Engine sees them: edges along great circles, not straight in lon/lat.

Earth Engine's footprints are geodesic, and its ``contains`` follows the great circles between
vertices; a shapely test on the raw vertices uses straight lon/lat lines instead. A 250 km
east-west S1 edge bows ~1.2 km poleward at 45°N, so a patch near that edge can be inside for
Earth Engine and outside for the policy. Densifying every edge with points on its great circle
(``STEP_DEG`` apart, ~5.5 km: the chord's remaining error is well under a metre) makes the
planar test agree with the geodesic one.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

STEP_DEG = 0.05


def _unit(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lon), np.radians(lat)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


def great_circle(a: tuple[float, float], b: tuple[float, float], step_deg: float = STEP_DEG) -> np.ndarray:
    """Points from ``a`` to ``b`` (lon, lat; ``b`` excluded) along their great circle, ``step_deg`` apart at most."""
    p, q = _unit(np.array(a[0]), np.array(a[1])), _unit(np.array(b[0]), np.array(b[1]))
    angle = math.acos(float(np.clip(p @ q, -1.0, 1.0)))
    n = max(1, math.ceil(math.degrees(angle) / step_deg))
    if angle < 1e-12:
        return np.array([a], float)
    t = np.arange(n)[:, None] / n
    v = (np.sin((1 - t) * angle) * p + np.sin(t * angle) * q) / math.sin(angle)  # slerp
    lon = np.degrees(np.arctan2(v[:, 1], v[:, 0]))
    lat = np.degrees(np.arcsin(np.clip(v[:, 2], -1.0, 1.0)))
    lon = a[0] + (lon - a[0] + 180.0) % 360.0 - 180.0  # stay on a's side of the antimeridian
    out = np.stack([lon, lat], axis=-1)
    out[0] = a  # the vertex itself, not its round trip through the sphere (no sliver at each corner)
    return out


def _ring(coords, step_deg: float) -> np.ndarray:
    pts = np.asarray(coords, float)[:, :2]
    out = [great_circle(tuple(pts[i]), tuple(pts[i + 1]), step_deg) for i in range(len(pts) - 1)]
    return np.concatenate([*out, pts[:1]])


def densify(geom, step_deg: float = STEP_DEG):
    """``geom`` (Polygon or MultiPolygon, lon/lat) with every edge replaced by its great circle."""
    if isinstance(geom, MultiPolygon):
        return MultiPolygon([densify(g, step_deg) for g in geom.geoms])
    if not isinstance(geom, Polygon) or geom.is_empty:
        return geom
    return shapely.make_valid(Polygon(_ring(geom.exterior.coords, step_deg),
                                      [_ring(r.coords, step_deg) for r in geom.interiors]))
