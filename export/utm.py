"""UTM zones, EPSG codes and S2 tile names, with the projection itself done by pyproj (PROJ).

Sentinel-2 tiles live on UTM grids, and senclr cuts both sensors on the S2 tile's grid, so both
sources need these conversions. Which zone a place belongs to (with the Norway and Svalbard
exceptions) and which 100 km square names its tile are conventions, written out here; the
transverse Mercator projection is PROJ's (exact to well under a millimetre in a zone), through
one cached, thread-safe ``pyproj.Transformer`` per zone and direction.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from pyproj import Transformer

from senclr.errors import InputError

_CRS_RE = re.compile(r"^EPSG:(32[67])(\d\d)$")


def utm_zone(lon: float, lat: float) -> int:
    """UTM zone number, with the Norway and Svalbard exceptions."""
    zone = int((lon + 180) // 6) % 60 + 1
    if 56 <= lat < 64 and 3 <= lon < 12:
        return 32
    if 72 <= lat < 84 and 0 <= lon < 42:
        return {0: 31, 1: 33, 2: 33, 3: 35, 4: 35, 5: 37, 6: 37}[int(lon // 6)]
    return zone


def utm_epsg(zone: int, lat: float) -> int:
    return (32600 if lat >= 0 else 32700) + zone


def utm_crs(zone: int, north: bool) -> str:
    """'EPSG:326zz' (north) or 'EPSG:327zz' (south): how Earth Engine names an S2 tile's CRS."""
    return f"EPSG:{(32600 if north else 32700) + zone}"


def parse_utm_crs(crs: str) -> tuple[int, bool]:
    """(zone, north) of a WGS84 UTM CRS string; InputError for anything else."""
    m = _CRS_RE.match(str(crs).strip().upper())
    if not m or not 1 <= int(m.group(2)) <= 60:
        raise InputError(f"CRS {crs!r} is not a WGS84 UTM zone: expected 'EPSG:326zz' (north) or "
                         "'EPSG:327zz' (south) with zone zz from 01 to 60")
    return int(m.group(2)), m.group(1) == "326"


def central_meridian(zone: int) -> float:
    return 6.0 * zone - 183.0


@lru_cache(maxsize=None)
def _transformer(zone: int, north: bool, inverse: bool) -> Transformer:
    src, dst = "EPSG:4326", utm_crs(zone, north)
    if inverse:
        src, dst = dst, src
    return Transformer.from_crs(src, dst, always_xy=True)


def lonlat_to_utm(lon: float, lat: float, zone: int, north: bool) -> tuple[float, float]:
    """(easting, northing) in metres of a WGS84 lon/lat in the given UTM zone."""
    e, n = _transformer(zone, north, False).transform(lon, lat, errcheck=True)
    return float(e), float(n)


def utm_to_lonlat(easting: float, northing: float, zone: int, north: bool) -> tuple[float, float]:
    """Inverse of ``lonlat_to_utm``: (lon, lat) in degrees."""
    lon, lat = _transformer(zone, north, True).transform(easting, northing, errcheck=True)
    return float(lon), float(lat)


def lonlat_to_utm_np(lon, lat, zone: int, north: bool) -> tuple[np.ndarray, np.ndarray]:
    """``lonlat_to_utm`` over arrays: (eastings, northings); points PROJ cannot project become inf."""
    e, n = _transformer(zone, north, False).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(e, float), np.asarray(n, float)


def utm_to_lonlat_np(easting, northing, zone: int, north: bool) -> tuple[np.ndarray, np.ndarray]:
    """``utm_to_lonlat`` over arrays: (lons, lats) in degrees."""
    lon, lat = _transformer(zone, north, True).transform(np.asarray(easting, float), np.asarray(northing, float))
    return np.asarray(lon, float), np.asarray(lat, float)


def mgrs_tile(zone: int, lat: float, easting: float, northing: float) -> str:
    """Sentinel-2 tile name (MGRS 100 km square), e.g. '31UDQ' for Paris."""
    band = "CDEFGHJKLMNPQRSTUVWX"[min(max(int((lat + 80) // 8), 0), 19)]
    col = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3][int(easting // 100000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(northing // 100000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}"
