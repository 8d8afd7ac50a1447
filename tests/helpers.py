"""Small builders shared by tests: random PatchPairs and a tiny dataset written without Beam."""

from __future__ import annotations

import hashlib

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
