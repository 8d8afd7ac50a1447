"""Read a senclr training dataset with numpy alone (no TensorFlow, no Beam, no Earth Engine).

Shards are read one at a time, so memory is bounded by the largest shard (``--shard-mb``), not by
the size of the dataset.
"""

from __future__ import annotations

from typing import Iterator


from senclr import manifest as manifest_lib
from senclr import normalize, storage, tfrecord
from senclr.errors import InputError
from senclr.schema import decode_record


def band_indices(manifest: dict, sensor: str, wanted: list[str] | None) -> list[int]:
    """Positions of the ``wanted`` bands in the dataset's ``sensor`` band list (all when None)."""
    have = list(manifest["bands"][sensor])
    if wanted is None:
        return list(range(len(have)))
    missing = [b for b in wanted if b not in have]
    if missing:
        raise InputError(
            f"the dataset has no {sensor.upper()} bands {missing} (it has {have}); "
            f"choose bands it has, or rebuild it with them"
        )
    return [have.index(b) for b in wanted]


def shard_uris(dataset: str, manifest: dict, split: str | None) -> list[str]:
    """The split's shard files; InputError naming any the manifest lists but the folder lacks."""
    uris = [storage.join(dataset, s["path"]) for s in manifest["shards"] if split is None or s["split"] == split]
    missing = [u for u in uris if not storage.exists(u)]
    if missing:
        raise InputError(f"{dataset} is incomplete: {len(missing)} shard(s) listed in its manifest are missing, "
                         f"e.g. {missing[0]}; copy the whole dataset or rebuild it with `senclr preprocess`")
    return uris


def iter_records(
    dataset: str,
    split: str | None = None,
    normalized: bool = False,
    s1_bands: list[str] | None = None,
    s2_bands: list[str] | None = None,
) -> Iterator[dict]:
    """Yield records as dicts of numpy arrays, in shard order.

    With ``normalized`` the s1/s2 arrays are float32, clipped and standardised with the
    manifest's statistics; otherwise they keep their stored dtypes (float16 dB, uint16).
    """
    m = manifest_lib.read(dataset, kind="dataset")
    i1, i2 = band_indices(m, "s1", s1_bands), band_indices(m, "s2", s2_bands)
    names1 = [m["bands"]["s1"][i] for i in i1]
    names2 = [m["bands"]["s2"][i] for i in i2]
    p1 = normalize.band_params(m["statistics"], names1) if normalized else None
    p2 = normalize.band_params(m["statistics"], names2) if normalized else None
    for uri in shard_uris(dataset, m, split):
        for raw in tfrecord.iter_records(storage.read_bytes(uri), name=uri):
            rec = decode_record(raw)
            rec["s1"], rec["s2"] = rec["s1"][..., i1], rec["s2"][..., i2]
            if normalized:
                rec["s1"], rec["s2"] = normalize.apply(rec["s1"], p1), normalize.apply(rec["s2"], p2)
            yield rec


def count(manifest: dict, split: str | None = None) -> int:
    return sum(s["records"] for s in manifest["shards"] if split is None or s["split"] == split)
