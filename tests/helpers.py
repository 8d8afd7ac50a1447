"""Small builders shared by tests: random PatchPairs and a tiny dataset written without Beam."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from senclr import manifest as manifest_lib
from senclr import storage, tfrecord
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.pair import PairMeta, PatchPair, make_pair_id
from senclr.schema import encode_record


def random_pair(rng: np.random.Generator, size: int = 16, i: int = 0, labels: bool = True) -> PatchPair:
    lon, lat = float(rng.uniform(-10, 10)), float(rng.uniform(40, 50))
    s1_id, s2_id = f"S1A_IW_GRDH_{i:04d}", f"20200101T000000_T31TCJ_{i:04d}"
    meta = PairMeta(
        pair_id=make_pair_id(lon, lat, s1_id, s2_id), lon=lon, lat=lat, crs="EPSG:32631",
        transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 4500000.0), pixel_size=10.0,
        s1_id=s1_id, s2_id=s2_id, s1_time="2020-01-01T06:00:00+00:00", s2_time="2020-01-01T10:30:00+00:00",
        s1_orbit="ASCENDING", s1_relative_orbit=88, s2_cloud_pct=5.0, source="test",
    )
    water = (rng.random((size, size)) < 0.3).astype(np.int8)
    s1 = rng.normal(-12, 4, (size, size, 2)).astype(np.float32)
    s1[water == 1] -= 10
    pair = PatchPair(
        meta=meta,
        s1=s1,
        s2=rng.integers(100, 5000, (size, size, 13)).astype(np.uint16),
        cloud=rng.uniform(0.7, 1.0, (size, size)).astype(np.float32),
        s2_bands=S2_BANDS["l1c"],
    )
    if labels:
        pair.labels = {"water": water, "landcover": rng.integers(0, 6, (size, size)).astype(np.uint8)}
    return pair


def clear_pair(seed: int, size: int = 10) -> PatchPair:
    """A random pair without labels whose every pixel is clear (cs_cdf 1): filter tests start from it."""
    p = random_pair(np.random.default_rng(seed), size, 0, labels=False)
    p.cloud[:] = 1.0
    return p


def dataset_files(root: str) -> list[str]:
    """Every file of a local dataset, relative to its root (shards live in its build folder)."""
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def write_tiny_dataset(folder: str, n: int = 12, size: int = 16, seed: int = 0) -> dict:
    """A schema-v1 dataset of ``n`` random pairs, split train/val/test by index (tests only)."""
    rng = np.random.default_rng(seed)
    pairs = [random_pair(rng, size, i) for i in range(n)]
    splits = {"train": pairs[: n // 2], "val": pairs[n // 2 : 3 * n // 4], "test": pairs[3 * n // 4 :]}
    shards, stats = [], {}
    for split, items in splits.items():
        data = tfrecord.encode_file(encode_record(p, split) for p in items)
        name = f"{split}-00000-of-00001.tfrecord"
        storage.write_bytes(storage.join(folder, name), data)
        shards.append({"path": name, "split": split, "records": len(items), "sha256": hashlib.sha256(data).hexdigest()})
    for k, b in enumerate(S1_BANDS):
        v = np.concatenate([p.s1[..., k].ravel() for p in pairs]).astype(np.float64)
        stats[b] = {"mean": v.mean(), "std": v.std(), "p1": np.percentile(v, 1), "p99": np.percentile(v, 99)}
    for k, b in enumerate(S2_BANDS["l1c"]):
        v = np.concatenate([p.s2[..., k].ravel() for p in pairs]).astype(np.float64)
        stats[b] = {"mean": v.mean(), "std": v.std(), "p1": np.percentile(v, 1), "p99": np.percentile(v, 99)}
    stats = {b: {k: float(x) for k, x in s.items()} for b, s in stats.items()}
    m = manifest_lib.new(
        "dataset", "test", {"n": n}, seed=seed,
        bands={"s1": list(S1_BANDS), "s2": list(S2_BANDS["l1c"]), "s2_level": "l1c"},
        labels=["water", "landcover"], counts={"read": n, "kept": n, "rejected": {}},
        statistics=stats, splits={k: len(v) for k, v in splits.items()}, shards=shards,
    )
    manifest_lib.write(folder, m)
    return m


def write_raw_archive(folder: str, pairs: list[PatchPair], patch_size: int = 16) -> dict:
    """A raw archive holding ``pairs`` (tests only; the synthetic source is the real writer)."""
    from senclr import raw_archive

    for p in pairs:
        raw_archive.write_pair(folder, p)
    m = manifest_lib.new(
        "raw", "test", {"pairs": len(pairs)}, patch_size=patch_size, labels=["water", "landcover"],
        bands={"s1": list(S1_BANDS), "s2": list(S2_BANDS["l1c"]), "s2_level": "l1c"},
        counts={"read": len(pairs), "kept": len(pairs), "rejected": {}},
    )
    manifest_lib.write(folder, m)
    return m


def plan_entry(pair: PatchPair) -> dict:
    """The export plan's entry for a pair (the inverse of ``senclr.pair.meta_from_plan_entry``)."""
    m = pair.meta
    patch = {"crs": m.crs, "x0": m.transform[2], "y0": m.transform[5], "size_px": pair.shape[0], "scale": m.pixel_size,
             "lon": m.lon, "lat": m.lat, "transform": list(m.transform)}
    return {"pair_id": m.pair_id, "patch": patch, "dt_hours": m.dt_hours,
            "s1": {"id": m.s1_id, "time": m.s1_time, "orbit": m.s1_orbit, "relative_orbit": m.s1_relative_orbit},
            "s2": {"id": m.s2_id, "time": m.s2_time, "cloud_pct": m.s2_cloud_pct}}


def ee_table_example(pair: PatchPair, drop: tuple[str, ...] = ()) -> bytes:
    """One feature of a batch export as Earth Engine's table export writes it: ``pair_id`` bytes and
    every band a float list of P x P values, row-major (what ``neighborhoodToArray`` samples hold)."""
    from senclr.example_proto import encode_example

    feats = {"pair_id": pair.pair_id.encode()}
    for i, b in enumerate(pair.s1_bands):
        feats[b] = pair.s1[..., i].ravel().astype(np.float32)
    for i, b in enumerate(pair.s2_bands):
        feats[b] = pair.s2[..., i].ravel().astype(np.float32)
    feats["cs_cdf"] = pair.cloud.ravel().astype(np.float32)
    return encode_example({k: v for k, v in feats.items() if k not in drop})


def write_batch_export(out: str, pairs: list[PatchPair], per_task: int = 10, s2_level: str = "l1c",
                       with_manifest: bool = True, extra_plan: list[dict] = ()) -> list[str]:
    """A finished batch-mode export of ``pairs``: ledger/plan.json, gzip'd TFRecord shards of
    ``per_task`` pairs under tasks/, and the raw manifest. Returns the shard URIs."""
    import gzip
    import json

    size = pairs[0].shape[0]
    params = {"mode": "batch", "s2_level": s2_level, "patch_size": size, "min_clear": 0.8, "cs_threshold": 0.6}
    plan = {"kind": "senclr-export-plan", "parameters": params, "pairs": [plan_entry(p) for p in pairs] + list(extra_plan)}
    storage.write_text(storage.join(out, "ledger", "plan.json"), json.dumps(plan, sort_keys=True))
    shards = []
    for t in range(0, len(pairs), per_task):
        uri = storage.join(out, "tasks", f"senclr-test-{t // per_task:05d}.tfrecord.gz")
        storage.write_bytes(uri, gzip.compress(tfrecord.encode_file(ee_table_example(p) for p in pairs[t : t + per_task])))
        shards.append(uri)
    if with_manifest:
        n = len(plan["pairs"])
        manifest_lib.write(out, manifest_lib.new(
            "raw", "export run --mode batch", params, patch_size=size, labels=[], source="ee-batch",
            format="tasks/*.tfrecord.gz", bands={"s1": list(S1_BANDS), "s2": list(S2_BANDS[s2_level]), "s2_level": s2_level},
            counts={"read": n, "kept": n, "rejected": {}}, filters={"min_clear": 0.8, "cs_threshold": 0.6},
        ))
    return shards


def write_chip(folder: str, stem: str, size: int = 64, s2_bands: int = 13, label: bool = True, crs: str = "EPSG:4326",
               seed: int = 0, layout: str = "flat", offset: tuple[int, int] = (0, 0)) -> dict:
    """A Sen1Floods11-style chip (S1 float32 dB with NaN no data, S2 int16, label int16 -1/0/1) on one
    grid; ``layout`` "flat" puts the files side by side, "bucket" in S1Hand/, S2Hand/, LabelHand/;
    ``offset`` moves its upper-left corner by (columns, rows) of 512 px chips.
    Returns {role: uri}. Local folders or gs:// prefixes."""
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    dx, dy = offset
    tr = (from_origin(-0.78 + dx * 512 * 9e-5, 38.13 - dy * 512 * 9e-5, 9e-5, 9e-5) if crs == "EPSG:4326"
          else from_origin(500000 + dx * 5120, 5000000 - dy * 5120, 10, 10))
    arrays = {
        "S1Hand": (rng.normal(-12, 3, (2, size, size)).astype(np.float32), float("nan")),
        "S2Hand": (rng.integers(100, 4000, (s2_bands, size, size)).astype(np.int16), 0),
    }
    if label:
        arrays["LabelHand"] = (rng.integers(-1, 2, (1, size, size)).astype(np.int16), None)
    uris = {}
    for kind, (arr, nodata) in arrays.items():
        sub = storage.join(folder, kind) if layout == "bucket" else folder
        uri = storage.join(sub, f"{stem}_{kind}.tif")
        profile = dict(driver="GTiff", width=size, height=size, count=arr.shape[0], dtype=arr.dtype.name, crs=crs, transform=tr, nodata=nodata)
        with MemoryFile() as mem:
            with mem.open(**profile) as d:
                d.write(arr)
            storage.write_bytes(uri, mem.read())
        uris[kind] = uri
    return uris
