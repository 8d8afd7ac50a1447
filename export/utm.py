"""UTM on WGS84 without pyproj: zones, EPSG codes, forward/inverse projection, S2 tile names.

Sentinel-2 tiles live on UTM grids, and senclr cuts both sensors on the S2 tile's grid, so every
export path needs these conversions. The Krüger series used here is exact to about a millimetre
inside a zone (checked against rasterio in the tests). The scalar functions are what the synthetic
source has always used (its archives must stay byte-identical); the ``*_np`` twins evaluate the
same series on numpy arrays for the patch grid, where thousands of corners are projected at once.
"""

from __future__ import annotations

import math
import re

import numpy as np

from senclr.errors import InputError

# WGS84 and the Krüger series of the transverse Mercator projection (exact to ~1 mm in a zone).
WGS84_A, WGS84_F = 6378137.0, 1 / 298.257223563  # semi-major axis (m), flattening
_A, _F, _K0 = WGS84_A, WGS84_F, 0.9996
_N = _F / (2 - _F)
_RECT = _A / (1 + _N) * (1 + _N**2 / 4 + _N**4 / 64)
_ALPHA = (_N / 2 - 2 * _N**2 / 3 + 5 * _N**3 / 16, 13 * _N**2 / 48 - 3 * _N**3 / 5, 61 * _N**3 / 240)
_BETA = (_N / 2 - 2 * _N**2 / 3 + 37 * _N**3 / 96, _N**2 / 48 + _N**3 / 15, 17 * _N**3 / 480)
_DELTA = (2 * _N - 2 * _N**2 / 3 - 2 * _N**3, 7 * _N**2 / 3 - 8 * _N**3 / 5, 56 * _N**3 / 15)
_FALSE_EASTING, _FALSE_NORTHING_SOUTH = 500000.0, 10_000_000.0
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


def lonlat_to_utm(lon: float, lat: float, zone: int, north: bool) -> tuple[float, float]:
    """(easting, northing) in metres of a WGS84 lon/lat in the given UTM zone."""
    phi, dlam = math.radians(lat), math.radians(lon - (6 * zone - 183))
    c = 2 * math.sqrt(_N) / (1 + _N)
    t = math.sinh(math.atanh(math.sin(phi)) - c * math.atanh(c * math.sin(phi)))
    xi, eta = math.atan2(t, math.cos(dlam)), math.atanh(math.sin(dlam) / math.sqrt(1 + t * t))
    e = eta + sum(a * math.cos(2 * j * xi) * math.sinh(2 * j * eta) for j, a in enumerate(_ALPHA, 1))
    n = xi + sum(a * math.sin(2 * j * xi) * math.cosh(2 * j * eta) for j, a in enumerate(_ALPHA, 1))
    return 500000.0 + _K0 * _RECT * e, (0.0 if north else 10_000_000.0) + _K0 * _RECT * n


def utm_to_lonlat(easting: float, northing: float, zone: int, north: bool) -> tuple[float, float]:
    """Inverse of ``lonlat_to_utm``."""
    xi = (northing - (0.0 if north else 10_000_000.0)) / (_K0 * _RECT)
    eta = (easting - 500000.0) / (_K0 * _RECT)
    xi1 = xi - sum(b * math.sin(2 * j * xi) * math.cosh(2 * j * eta) for j, b in enumerate(_BETA, 1))
    eta1 = eta - sum(b * math.cos(2 * j * xi) * math.sinh(2 * j * eta) for j, b in enumerate(_BETA, 1))
    chi = math.asin(math.sin(xi1) / math.cosh(eta1))
    phi = chi + sum(d * math.sin(2 * j * chi) for j, d in enumerate(_DELTA, 1))
    return (6 * zone - 183) + math.degrees(math.atan2(math.sinh(eta1), math.cos(xi1))), math.degrees(phi)


def lonlat_to_utm_np(lon, lat, zone: int, north: bool) -> tuple[np.ndarray, np.ndarray]:
    """``lonlat_to_utm`` over arrays: (eastings, northings)."""
    phi = np.radians(np.asarray(lat, dtype=float))
    dlam = np.radians(np.asarray(lon, dtype=float) - central_meridian(zone))
    c = 2 * math.sqrt(_N) / (1 + _N)
    sphi = np.sin(phi)
    with np.errstate(divide="ignore", invalid="ignore"):  # the poles project to +-inf, as they should
        t = np.sinh(np.arctanh(sphi) - c * np.arctanh(c * sphi))
    xi, eta = np.arctan2(t, np.cos(dlam)), np.arctanh(np.sin(dlam) / np.sqrt(1 + t * t))
    e, n = eta.copy(), xi.copy()
    for j, a in enumerate(_ALPHA, 1):
        e += a * np.cos(2 * j * xi) * np.sinh(2 * j * eta)
        n += a * np.sin(2 * j * xi) * np.cosh(2 * j * eta)
    return _FALSE_EASTING + _K0 * _RECT * e, (0.0 if north else _FALSE_NORTHING_SOUTH) + _K0 * _RECT * n


def utm_to_lonlat_np(easting, northing, zone: int, north: bool) -> tuple[np.ndarray, np.ndarray]:
    """``utm_to_lonlat`` over arrays: (lons, lats) in degrees."""
    xi = (np.asarray(northing, dtype=float) - (0.0 if north else _FALSE_NORTHING_SOUTH)) / (_K0 * _RECT)
    eta = (np.asarray(easting, dtype=float) - _FALSE_EASTING) / (_K0 * _RECT)
    xi1, eta1 = xi.copy(), eta.copy()
    for j, b in enumerate(_BETA, 1):
        xi1 -= b * np.sin(2 * j * xi) * np.cosh(2 * j * eta)
        eta1 -= b * np.cos(2 * j * xi) * np.sinh(2 * j * eta)
    chi = np.arcsin(np.sin(xi1) / np.cosh(eta1))
    phi = chi.copy()
    for j, d in enumerate(_DELTA, 1):
        phi += d * np.sin(2 * j * chi)
    return central_meridian(zone) + np.degrees(np.arctan2(np.sinh(eta1), np.cos(xi1))), np.degrees(phi)


def mgrs_tile(zone: int, lat: float, easting: float, northing: float) -> str:
    """Sentinel-2 tile name (MGRS 100 km square), e.g. '31UDQ' for Paris."""
    band = "CDEFGHJKLMNPQRSTUVWX"[min(max(int((lat + 80) // 8), 0), 19)]
    col = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3][int(easting // 100000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(northing // 100000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}"
