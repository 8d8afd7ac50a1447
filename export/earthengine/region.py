"""The export region: a ``W,S,E,N`` box or a GeoJSON file, as one lon/lat (EPSG:4326) geometry.

Edges are straight lines in lon/lat (planar, as shapely and GeoJSON (RFC 7946) see them); the
Earth Engine side must build the region with ``geodesic=False`` to mean the same area.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape
from shapely.validation import make_valid

from senclr.errors import InputError


# Why 250,000 km² (about the United Kingdom): ``plan`` fetches the scene lists of the region with
# getInfo, and Earth Engine caps a response at 10 MB / 5 minutes of compute per request; a year
# of S2 + S1 footprints over a larger area (thousands of scenes, each a detailed polygon) gets
# close to that, and per-user request and task quotas make bigger jobs slow to plan and to run.
# Split a bigger area into several regions (one --out each) or pass --force knowingly.
MAX_REGION_KM2 = 250_000

_GEOJSON_POLYGONAL = ("Polygon", "MultiPolygon")
_FIX = "give a polygon in lon/lat degrees (EPSG:4326), e.g. drawn at geojson.io"


def parse_region(text: str):
    """A shapely (Multi)Polygon in lon/lat from a ``W,S,E,N`` box or a GeoJSON file path."""
    text = str(text).strip()
    if not text:
        raise InputError("--region is empty: give a W,S,E,N box in degrees (e.g. 2.2,48.7,2.5,48.95) "
                         "or the path of a GeoJSON file")
    if os.path.exists(text) or text.lower().endswith((".json", ".geojson")) or "," not in text:
        return _from_file(text)
    return _from_bbox(text)


def _from_bbox(text: str):
    parts = [p.strip() for p in text.split(",")]
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise InputError(f"--region {text!r} is not a box of 4 numbers W,S,E,N in degrees "
                         f"(got {len(parts)} values), e.g. 2.2,48.7,2.5,48.95; or give a GeoJSON file") from None
    if not all(map(math.isfinite, (w, s, e, n))):
        raise InputError(f"--region {text!r} holds a value that is not a finite number: give W,S,E,N in degrees")
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise InputError(f"--region {text!r} lies outside [-180, 180] x [-90, 90]: give W,S,E,N as longitude, "
                         "latitude in degrees (longitude first)")
    if w >= e or s >= n:
        raise InputError(f"--region {text!r} has zero area: west must be < east and south < north "
                         "(boxes across the antimeridian are not supported: split them in two)")
    return shapely.box(w, s, e, n)


def _read_json(path: str) -> dict:
    if not os.path.exists(path):
        raise InputError(f"--region {path!r}: no such file, and not a W,S,E,N box either; "
                         "give an existing GeoJSON file or four comma-separated numbers")
    if not os.path.isfile(path):
        raise InputError(f"--region {path!r} is a folder, not a GeoJSON file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise InputError(f"--region {path!r} is not valid JSON (line {err.lineno}, column {err.colno}: "
                         f"{err.msg}): {_FIX}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--region {path!r} cannot be read ({type(err).__name__}: {err}): check the file "
                         "and its permissions") from None


def _geometries(doc, path: str) -> list[dict]:
    """The GeoJSON geometry objects of a document, whatever its wrapping."""
    if not isinstance(doc, dict) or "type" not in doc:
        raise InputError(f"--region {path!r} is JSON but not GeoJSON (no 'type' member): {_FIX}")
    kind = doc["type"]
    if kind == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise InputError(f"--region {path!r}: FeatureCollection without a 'features' list")
        return [g for f in feats if isinstance(f, dict) for g in _geometries_of_feature(f)]
    if kind == "Feature":
        return _geometries_of_feature(doc)
    if kind == "GeometryCollection":
        return [g for g in doc.get("geometries") or [] if isinstance(g, dict)]
    return [doc]


def _geometries_of_feature(feature: dict) -> list[dict]:
    geom = feature.get("geometry")
    if not isinstance(geom, dict):
        return []
    if geom.get("type") == "GeometryCollection":
        return [g for g in geom.get("geometries") or [] if isinstance(g, dict)]
    return [geom]


def _check_crs(doc, path: str) -> None:
    """Old GeoJSON could name a CRS; RFC 7946 is lon/lat only. Refuse a projected one."""
    name = ((doc.get("crs") or {}).get("properties") or {}).get("name", "") if isinstance(doc, dict) else ""
    if name and not any(k in name.upper() for k in ("CRS84", "4326")):
        raise InputError(f"--region {path!r} declares CRS {name!r}: reproject it to lon/lat (EPSG:4326), "
                         "e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson")


def _polygonal(geom):
    """The polygons of a geometry, made valid; None when nothing with area is left."""
    if not geom.is_valid:
        geom = make_valid(geom)
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in _GEOJSON_POLYGONAL and not g.is_empty]
    if not parts:
        return None
    out = shapely.union_all(parts)
    return None if out.is_empty or out.area <= 0 else out


def _from_file(path: str):
    doc = _read_json(path)
    _check_crs(doc, path)
    polys = []
    for g in _geometries(doc, path):
        if g.get("type") not in _GEOJSON_POLYGONAL:
            continue
        try:
            poly = shapely.force_2d(shape(g))
            if not np.isfinite(shapely.get_coordinates(poly)).all():
                raise ValueError("NaN or infinite coordinates")
            polys.append(poly)
        except Exception as err:  # shapely raises several types for malformed coordinates
            raise InputError(f"--region {path!r}: a {g.get('type')} has malformed coordinates ({err}): "
                             "each ring must be a list of [lon, lat] positions, first = last") from None
    if not polys:
        raise InputError(f"--region {path!r} holds no Polygon or MultiPolygon (points and lines have no area): "
                         f"{_FIX}")
    valid = [v for v in map(_polygonal, polys) if v is not None]  # repair each before the union
    geom = _polygonal(shapely.union_all(valid)) if valid else None
    if geom is None:
        raise InputError(f"--region {path!r}: its polygons are empty or have zero area, even after repair "
                         "(make_valid): check that the rings are not degenerate")
    w, s, e, n = geom.bounds
    if not (-180 <= w and e <= 180 and -90 <= s and n <= 90):
        raise InputError(f"--region {path!r} has coordinates outside [-180, 180] x [-90, 90] (bounds "
                         f"{w:g},{s:g},{e:g},{n:g}): GeoJSON must be lon/lat degrees, longitude first; "
                         "reproject it to EPSG:4326")
    return geom


@lru_cache(maxsize=1)
def _equal_area() -> Transformer:
    """The ellipsoidal Lambert cylindrical equal-area projection: planar area there is area on WGS84."""
    return Transformer.from_crs("EPSG:4326", "+proj=cea +ellps=WGS84 +units=m", always_xy=True)


def area_km2(geom) -> float:
    """Area on the WGS84 ellipsoid in km², with lon/lat-straight edges, for any size or place.

    The polygon's edges are densified to 0.05° and mapped by PROJ's ellipsoidal cylindrical
    equal-area projection, where planar area equals ellipsoidal area: no zones, no sphere error.
    """
    dense = shapely.segmentize(geom, 0.05)
    flat = shapely.transform(dense, lambda xy: np.column_stack(_equal_area().transform(xy[:, 0], xy[:, 1])))
    return float(flat.area) / 1e6


def check_size(geom, force: bool) -> float:
    """The region's area in km²; InputError beyond MAX_REGION_KM2 unless ``force``."""
    km2 = area_km2(geom)
    if km2 > MAX_REGION_KM2 and not force:
        raise InputError(f"--region covers {km2:,.0f} km², more than the {MAX_REGION_KM2:,} km² limit (plan "
                         "fetches every scene of the region with getInfo, which Earth Engine caps in size and "
                         "time): split it into smaller regions, each with its own --out, or pass --force")
    return km2
