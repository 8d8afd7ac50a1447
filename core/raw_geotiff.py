"""GeoTIFF pairs (how Sen1Floods11-style chips arrive) read as one PatchPair on one grid.

S1 and S2 files must share CRS, transform and size: a pair that is not on one grid is refused,
never silently resampled. GeoTIFF chips carry no Cloud Score+, so ``cloud`` is set to 1 (clear)
and the pair's ``source`` says so.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import numpy as np

from senclr.bands import S2_BANDS, WATER_NODATA
from senclr.pair import PairMeta, PatchPair, make_pair_id

SOURCE = "geotiff (no Cloud Score+: cs_cdf set to 1)"


def _read(path: str):
    import rasterio  # GDAL is heavy: load it only when GeoTIFFs are read

    with rasterio.open(path) as r:
        return r.read(), r.crs, r.transform, r.descriptions, r.nodata


def _event_info(stem: str, metadata_geojson: str | None) -> dict:
    """Sen1Floods11 event properties (dates, orbit) for a chip stem like 'Spain_7370579'."""
    if not metadata_geojson or not os.path.exists(metadata_geojson):
        return {}
    event = stem.split("_")[0]
    with open(metadata_geojson) as f:
        for feat in json.load(f)["features"]:
            if feat["properties"].get("location", "").replace("-", "") == event.replace("-", ""):
                return feat["properties"]
    return {}


def _centre_lonlat(crs, transform, w: int, h: int) -> tuple[float, float]:
    """Patch centre in WGS84 degrees, from a grid in any CRS (UTM chips included)."""
    from rasterio.warp import transform as warp

    x, y = transform @ (w / 2, h / 2)
    lons, lats = warp(crs, "EPSG:4326", [x], [y])
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
        raise ValueError(f"{s1_path} and {s2_path} are not on one grid: {crs1} {tr1} {s1.shape} vs {crs2} {tr2} {s2.shape}")
    if s1.shape[0] != 2:
        raise ValueError(f"{s1_path}: expected 2 bands (VV, VH), found {s1.shape[0]}")
    level = {13: "l1c", 12: "l2a"}.get(s2.shape[0])
    if level is None:
        raise ValueError(f"{s2_path}: expected 13 (L1C) or 12 (L2A) bands, found {s2.shape[0]}")
    s1 = np.moveaxis(s1, 0, -1).astype(np.float32)
    if nodata1 is not None and not np.isnan(nodata1):
        s1[s1 == nodata1] = np.nan
    s2 = np.clip(np.moveaxis(s2, 0, -1), 0, 65535).astype(np.uint16)
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
            raise ValueError(f"{label_path} is not on the grid of {s1_path}")
        labels["water"] = np.where(np.isin(lab[0], (0, 1)), lab[0], WATER_NODATA).astype(np.int8)
    return PatchPair(meta=meta, s1=s1, s2=s2, cloud=np.ones((h, w), np.float32), s2_bands=S2_BANDS[level], labels=labels, origin=s1_path)
