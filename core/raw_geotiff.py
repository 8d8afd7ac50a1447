"""GeoTIFF pairs (how Sen1Floods11-style chips arrive) read as one PatchPair on one grid.

S1 and S2 files must share CRS, transform and size: a pair that is not on one grid is refused,
never silently resampled. GeoTIFF chips carry no Cloud Score+, so ``cloud`` is set to 1 (clear)
and the pair's ``source`` says so. Files are local paths or gs:// objects (read whole into memory:
chips are a few MB). A file that cannot be a pair raises ReadError with the rejection reason.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from datetime import datetime, timezone

import numpy as np

from senclr import storage
from senclr.bands import S2_BANDS, WATER_NODATA
from senclr.casualty import ReadError
from senclr.pair import PairMeta, PatchPair, make_pair_id

SOURCE = "geotiff (no Cloud Score+: cs_cdf set to 1)"


@contextlib.contextmanager
def _open(uri: str):
    import rasterio  # GDAL is heavy: load it only when GeoTIFFs are read
    from rasterio.io import MemoryFile

    if not storage.is_gcs(uri):
        with rasterio.open(uri) as r:
            yield r
        return
    with MemoryFile(storage.read_bytes(uri)) as mem, mem.open() as r:
        yield r


def _read(uri: str):
    from rasterio.errors import RasterioError

    try:
        with _open(uri) as r:
            return r.read(), r.crs, r.transform, r.descriptions, r.nodata
    except RasterioError as e:  # GDAL's own words are in the cause: name the file and say them
        raise ReadError(f"{uri} cannot be read as a GeoTIFF: {e.__cause__ or e}") from None


def header(uri: str) -> tuple[int, int, int]:
    """(bands, height, width) of a GeoTIFF without reading its pixels (local files)."""
    with _open(uri) as r:
        return r.count, r.height, r.width


@functools.lru_cache(maxsize=8)
def _event_table(metadata_geojson: str) -> tuple[dict, ...]:
    """The event properties of a Sen1Floods11 metadata file, read once per process."""
    return tuple(f["properties"] for f in json.loads(storage.read_text(metadata_geojson))["features"])


def _event_info(stem: str, metadata_geojson: str | None) -> dict:
    """Sen1Floods11 event properties (dates, orbit) for a chip stem like 'Spain_7370579'."""
    if not metadata_geojson:
        return {}
    try:
        table = _event_table(metadata_geojson)
    except OSError:
        return {}  # dates and orbit stay unknown: the pair is still usable
    event = stem.split("_")[0]
    for props in table:
        if props.get("location", "").replace("-", "") == event.replace("-", ""):
            return props
    return {}


def lonlat(crs, xs, ys) -> tuple[list[float], list[float]]:
    """Points of a grid in any CRS (UTM chips included) as WGS84 degrees, in one call."""
    from rasterio.warp import transform as warp

    return warp(crs, "EPSG:4326", list(xs), list(ys))


def _centre_lonlat(crs, transform, w: int, h: int) -> tuple[float, float]:
    x, y = transform @ (w / 2, h / 2)
    lons, lats = lonlat(crs, [x], [y])
    return lons[0], lats[0]


def _iso(date: str | None) -> str:
    if not date:
        return ""
    return datetime.strptime(date, "%Y/%m/%d").replace(tzinfo=timezone.utc).isoformat()


def read_geotiff_pair(s1_path: str, s2_path: str, label_path: str | None = None, metadata_geojson: str | None = None) -> PatchPair:
    """Read S1 (VV, VH dB), S2 (13 or 12 bands) and an optional water label into a PatchPair."""
    s1, crs1, tr1, desc1, nodata1 = _read(s1_path)
    s2, crs2, tr2, desc2, _ = _read(s2_path)
    if crs1 != crs2 or not tr1.almost_equals(tr2) or s1.shape[1:] != s2.shape[1:]:
        raise ReadError(f"{s1_path} and {s2_path} are not on one grid: {crs1} {tr1} {s1.shape} vs {crs2} {tr2} {s2.shape}", "bad_shape")
    if s1.shape[0] != 2:
        raise ReadError(f"{s1_path}: expected 2 bands (VV, VH), found {s1.shape[0]}", "bad_shape")
    level = {13: "l1c", 12: "l2a"}.get(s2.shape[0])
    if level is None:
        raise ReadError(f"{s2_path}: expected 13 (L1C) or 12 (L2A) bands, found {s2.shape[0]}", "bad_shape")
    s1 = np.moveaxis(s1, 0, -1).astype(np.float32)
    if nodata1 is not None and not np.isnan(nodata1):
        s1[s1 == nodata1] = np.nan
    s2 = np.moveaxis(s2, 0, -1).astype(np.float64)
    s2 = np.clip(np.rint(np.nan_to_num(s2, nan=0.0)), 0, 65535).astype(np.uint16)  # NaN: no data, 0
    stem = os.path.basename(s1_path).rsplit("_S1", 1)[0]
    info = _event_info(stem, metadata_geojson)
    h, w = s1.shape[:2]
    lon, lat = _centre_lonlat(crs1, tr1, w, h)
    s1_id, s2_id = os.path.basename(s1_path), os.path.basename(s2_path)
    meta = PairMeta(
        pair_id=make_pair_id(lon, lat, s1_id, s2_id), lon=float(lon), lat=float(lat), crs=str(crs1),
        transform=tuple(float(x) for x in tuple(tr1)[:6]), pixel_size=float(abs(tr1.a)),
        s1_id=s1_id, s2_id=s2_id, s1_time=_iso(info.get("s1_date")), s2_time=_iso(info.get("s2_date")),
        s1_orbit=str(info.get("orbit", "")), s1_relative_orbit=int(info.get("rel_orbit_num", 0) or 0),
        s2_cloud_pct=float("nan"), source=SOURCE,
    )
    labels = {}
    if label_path:
        lab, crs3, tr3, _, _ = _read(label_path)
        if crs3 != crs1 or not tr3.almost_equals(tr1) or lab.shape[1:] != (h, w):
            raise ReadError(f"{label_path} is not on the grid of {s1_path}", "bad_shape")
        labels["water"] = np.where(np.isin(lab[0], (0, 1)), lab[0], WATER_NODATA).astype(np.int8)
    return PatchPair(meta=meta, s1=s1, s2=s2, cloud=np.ones((h, w), np.float32), s2_bands=S2_BANDS[level], labels=labels, origin=s1_path)
