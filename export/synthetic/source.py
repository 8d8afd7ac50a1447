"""The synthetic source: a raw archive of plausible S1/S2 pairs with labels, no cloud account needed.

Pair i is made from its own seed (``SeedSequence(seed, spawn_key=(i,))``), so the output is
byte-identical for one seed whatever the order or timing, and pair i never depends on pair i-1.
Each pair is placed on a real UTM grid with real-looking product ids, so everything downstream
(pairing metadata, splits by place, manifests) runs exactly as on Earth Engine exports.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.errors import InputError
from senclr.export.utm import lonlat_to_utm, mgrs_tile, utm_epsg, utm_to_lonlat, utm_zone
from senclr.pair import PairMeta, PatchPair, make_pair_id
from senclr.raw_archive import PAIRS_DIR, write_pair

from . import render
from .world import labels, make_world

DEFAULT_REGION = (2.0, 43.0, 12.0, 51.0)  # W, S, E, N: France, Switzerland, southern Germany, N Italy
PIXEL_M = 10.0
COMMAND = "export synthetic"


def place(i: int, seed: int, region: tuple[float, float, float, float]) -> tuple[float, float]:
    """Centre of pair i: a Halton point in the region, so any number of pairs spreads out evenly."""
    offset = int(np.random.SeedSequence(seed).generate_state(1)[0] % 1_000_003)

    def halton(k: int, base: int) -> float:
        f, r = 1.0, 0.0
        while k > 0:
            f /= base
            r += f * (k % base)
            k //= base
        return r

    w, s, e, n = region
    return w + (e - w) * halton(i + offset + 1, 2), s + (n - s) * halton(i + offset + 1, 3)


def grid(lon: float, lat: float, size: int):
    """CRS, affine transform (on the 10 m S2 grid) and the exact centre of a size x size patch."""
    zone, north = utm_zone(lon, lat), lat >= 0
    e, n = lonlat_to_utm(lon, lat, zone, north)
    half = size * PIXEL_M / 2
    ulx, uly = round((e - half) / PIXEL_M) * PIXEL_M, round((n + half) / PIXEL_M) * PIXEL_M
    clon, clat = utm_to_lonlat(ulx + half, uly - half, zone, north)
    return f"EPSG:{utm_epsg(zone, lat)}", (PIXEL_M, 0.0, ulx, 0.0, -PIXEL_M, uly), clon, clat, zone, e, n


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def acquisitions(rng: np.random.Generator, lon: float, lat: float, tile: str) -> dict:
    """S1 and S2 ids and times: S2 near 10:30 local solar time, S1 at dawn or dusk, Δt <= 3 days."""
    day = datetime(2019, 1, 1, tzinfo=timezone.utc) + timedelta(days=int(rng.integers(0, 1060)))
    s2_t = day + timedelta(hours=10.5 - lon / 15 + rng.uniform(-0.3, 0.3))
    orbit = "DESCENDING" if rng.random() < 0.5 else "ASCENDING"
    local = 5.75 if orbit == "DESCENDING" else 17.75
    s1_t = day + timedelta(days=int(rng.integers(-2, 3)), hours=local - lon / 15 + rng.uniform(-0.3, 0.3))
    s2_t, s1_t = s2_t.replace(microsecond=0), s1_t.replace(microsecond=0)
    unit = "A" if rng.random() < 0.6 else "B"
    rel = int(rng.integers(1, 176))
    launch = datetime(2014, 4, 3, tzinfo=timezone.utc) if unit == "A" else datetime(2016, 4, 25, tzinfo=timezone.utc)
    approx = 1 + (s1_t - launch).days * 175 // 12  # 175 orbits per 12-day repeat cycle
    base = 73 if unit == "A" else 27  # relative = (absolute - base) % 175 + 1
    absolute = approx - (approx - base) % 175 + (rel - 1)
    start = s1_t - timedelta(seconds=int(rng.integers(0, 20)))
    stamp = "%Y%m%dT%H%M%S"
    s1_id = (f"S1{unit}_IW_GRDH_1SDV_{start:{stamp}}_{start + timedelta(seconds=25):{stamp}}_"
             f"{absolute:06d}_{int(rng.integers(0, 1 << 24)):06X}_{int(rng.integers(0, 1 << 16)):04X}")
    granule = s2_t - timedelta(seconds=int(rng.integers(0, 8)))
    s2_id = f"{s2_t:{stamp}}_{granule:{stamp}}_T{tile}"
    return dict(s1_id=s1_id, s2_id=s2_id, s1_time=_iso(s1_t), s2_time=_iso(s2_t), s1_orbit=orbit,
                s1_relative_orbit=rel)


def make_pair(seed: int, i: int, patch_size: int = 32, s2_level: str = "l1c",
              region=DEFAULT_REGION, sky: str | None = None) -> PatchPair:
    """Pair i of a seed. ``sky`` forces 'clear', 'partly' or 'overcast' (tests); S1 ignores it."""
    r_world, r_s1, r_sky, r_s2, r_meta = (np.random.default_rng(s) for s in
                                          np.random.SeedSequence(seed, spawn_key=(i,)).spawn(5))
    world = make_world(r_world, patch_size)
    s1 = render.render_s1(world, r_s1)
    clouds = render.make_sky(r_sky, patch_size, sky)
    s2 = render.render_s2(world, clouds, r_s2, s2_level)
    cs = render.cloud_score(clouds, r_sky)
    lon, lat = place(i, seed, region)
    crs, transform, lon, lat, zone, e, n = grid(lon, lat, patch_size)
    ids = acquisitions(r_meta, lon, lat, mgrs_tile(zone, lat, e, n))
    scene_pct = float(np.clip(100 * clouds.cloud_fraction() + r_meta.normal(0, 5), 0, 100))
    lon, lat = round(lon, 6), round(lat, 6)
    meta = PairMeta(
        pair_id=make_pair_id(lon, lat, ids["s1_id"], ids["s2_id"]), lon=lon, lat=lat, crs=crs,
        transform=transform, pixel_size=PIXEL_M, s2_cloud_pct=round(scene_pct, 2), source="synthetic", **ids,
    )
    return PatchPair(meta=meta, s1=s1, s2=s2, cloud=cs, s2_bands=S2_BANDS[s2_level], labels=labels(world))


def check_args(pairs, patch_size, s2_level, region) -> tuple[str, tuple[float, float, float, float]]:
    """Normalised (s2_level, region), or InputError saying what is wrong and how to fix it."""
    if isinstance(pairs, bool) or not isinstance(pairs, (int, np.integer)) or pairs < 1:
        raise InputError(f"--pairs must be a whole number >= 1, got {pairs!r}")
    if isinstance(patch_size, bool) or not isinstance(patch_size, (int, np.integer)) \
            or not 8 <= patch_size <= 1024 or patch_size % 2:
        raise InputError(f"--patch-size must be an even number of pixels from 8 to 1024 (e.g. 32), got {patch_size!r}")
    level = str(s2_level).lower()
    if level not in S2_BANDS:
        raise InputError(f"--s2-level must be one of {', '.join(S2_BANDS)}, got {s2_level!r}")
    try:
        w, s, e, n = (float(v) for v in region)
    except (TypeError, ValueError):
        raise InputError(f"region must be four numbers (west, south, east, north) in degrees, got {region!r}") from None
    if not all(map(math.isfinite, (w, s, e, n))) or not (-180 <= w < e <= 180 and -80 <= s < n <= 84):
        raise InputError(f"region {region!r} is not a box west < east in [-180, 180], south < north in "
                         "[-80, 84] (the UTM range; boxes across the antimeridian are not supported)")
    return level, (w, s, e, n)


def _params(pairs, seed, patch_size, s2_level, region) -> dict:
    return {"pairs": int(pairs), "seed": int(seed), "patch_size": int(patch_size), "s2_level": s2_level,
            "region": list(region)}


def _prepare(out: str, params: dict, overwrite: bool) -> bool:
    """Make ``out`` ready; True when what is written there may be removed again on failure."""
    if not storage.is_gcs(out) and storage.exists(out) and not storage.is_dir(out):
        raise InputError(f"--out {out} is a file, not a folder: give a new or empty folder")
    first = next(storage.list_files(out, limit=1), None) if storage.is_dir(out) else None
    if first is None:
        return True
    if overwrite:  # remove the manifest first: from then on the folder is visibly unfinished
        storage.remove_tree(manifest_lib.path(out))
        storage.remove_tree(storage.join(out, PAIRS_DIR))
        return True
    try:
        old = manifest_lib.read(out, "raw")
    except InputError:
        raise InputError(f"--out {out} is not empty (it holds {first}) and is not a finished synthetic "
                         "archive: choose a new or empty folder, or pass --overwrite to replace its pairs/ "
                         "and manifest.json") from None
    if old.get("command") != COMMAND or old.get("parameters") != params:
        raise InputError(f"--out {out} already holds a different raw archive ({old.get('command')!r} with "
                         f"{old.get('parameters')}): choose another folder, or pass --overwrite to replace it")
    return False  # the same archive again: rewriting gives identical files


def _cleanup(out: str, created: bool) -> None:
    storage.remove_tree(manifest_lib.path(out))
    storage.remove_tree(storage.join(out, PAIRS_DIR))
    if created and not storage.is_gcs(out) and storage.exists(out) and not any(True for _ in storage.list_files(out)):
        storage.remove_tree(out)


def generate(out: str, pairs: int, seed: int, patch_size: int = 32, s2_level: str = "l1c",
             region=DEFAULT_REGION, progress: bool = False, overwrite: bool = False) -> dict:
    """Write ``pairs`` synthetic pairs and then the manifest (last: it marks the archive finished).

    Returns the manifest. The same arguments always give byte-identical files.
    """
    from tqdm import tqdm

    s2_level, region = check_args(pairs, patch_size, s2_level, region)
    params = _params(pairs, seed, patch_size, s2_level, region)
    created = not storage.exists(out)
    removable = _prepare(out, params, overwrite)
    water_pairs, water_px, clear, clear_pairs = 0, 0.0, 0.0, 0
    try:
        storage.makedirs(out)
        for i in tqdm(range(pairs), disable=not progress, desc="synthetic", unit="pair"):
            pair = make_pair(seed, i, patch_size, s2_level, region)
            write_pair(out, pair)
            w = float(pair.labels["water"].mean())
            water_pairs, water_px = water_pairs + (w > 0), water_px + w
            c = pair.clear_fraction()
            clear, clear_pairs = clear + c, clear_pairs + (c >= 0.8)
        m = manifest_lib.new(
            "raw", COMMAND, params, source="synthetic", seed=int(seed), patch_size=int(patch_size),
            pixel_size=PIXEL_M, region=list(region), labels=["water", "landcover"],
            bands={"s1": list(S1_BANDS), "s2": list(S2_BANDS[s2_level]), "s2_level": s2_level},
            counts={"read": pairs, "kept": pairs, "rejected": {}},
            summary={"pairs_with_water": water_pairs, "water_pixel_fraction": round(water_px / pairs, 4),
                     "mean_clear_fraction": round(clear / pairs, 4), "pairs_clear_80": clear_pairs},
        )
        manifest_lib.write(out, m)
    except BaseException:
        if removable:
            _cleanup(out, created)
        raise
    return m
