"""The raw archive: what every export path writes and preprocessing reads.

Layout (local folder or gs:// prefix)::

    RAW/manifest.json              kind "raw": parameters, band lists, counts
    RAW/pairs/<pair_id>.npy        one structured array [H, W]: a field per band
    RAW/pairs/<pair_id>.json       PairMeta of that pair

The .npy is exactly the NPY_NDARRAY payload that Earth Engine's ``computePixels`` returns for an
image with S1, S2, cs_cdf and label bands stacked (``senclr.label_bands``), so the high-volume export stores responses as
they come. The .json is written after the .npy and marks the pair complete: a reader lists pairs by
their .json, so an interrupted export never leaves a pair that looks whole but is not.
"""

from __future__ import annotations

import io
import json

import numpy as np

from senclr import storage
from senclr.bands import S1_BANDS
from senclr.casualty import ReadError
from senclr.label_bands import EMBEDDING, EMBEDDING_BANDS
from senclr.pair import PairMeta, PatchPair

PAIRS_DIR = "pairs"
CLOUD_FIELD = "cs_cdf"
# Single-band labels; the embedding is 64 int8 fields A00..A63, as computePixels returns them.
LABEL_DTYPES = {"water": np.int8, "landcover": np.uint8, "worldcover": np.uint8, "dynamicworld": np.uint8}


def pair_uris(archive: str, pair_id: str) -> tuple[str, str]:
    base = storage.join(archive, PAIRS_DIR, pair_id)
    return base + ".npy", base + ".json"


def to_structured(pair: PatchPair) -> np.ndarray:
    """Stack a pair's bands into one structured [H, W] array (the computePixels layout)."""
    h, w = pair.shape
    fields = [(b, np.float32) for b in pair.s1_bands]
    fields += [(b, np.uint16) for b in pair.s2_bands]
    fields += [(CLOUD_FIELD, np.float32)]
    for name, lab in pair.labels.items():
        fields += ([(b, np.int8) for b in EMBEDDING_BANDS] if name == EMBEDDING
                   else [(name, LABEL_DTYPES.get(name, lab.dtype))])
    out = np.empty((h, w), dtype=np.dtype(fields))
    for i, b in enumerate(pair.s1_bands):
        out[b] = pair.s1[..., i]
    for i, b in enumerate(pair.s2_bands):
        out[b] = pair.s2[..., i]
    out[CLOUD_FIELD] = pair.cloud
    for name, lab in pair.labels.items():
        if name == EMBEDDING:
            for i, b in enumerate(EMBEDDING_BANDS):
                out[b] = lab[..., i]
        else:
            out[name] = lab
    return out


def from_structured(arr: np.ndarray, meta: PairMeta) -> PatchPair:
    """Split a structured [H, W] array back into a PatchPair, by field name."""
    names = arr.dtype.names or ()
    missing = [b for b in (*S1_BANDS, CLOUD_FIELD) if b not in names]
    if missing:
        raise ReadError(f"pair {meta.pair_id}: missing bands {missing} (has {list(names)})", "missing_bands")
    s2_bands = tuple(n for n in names if n.startswith("B"))
    if not s2_bands:
        raise ReadError(f"pair {meta.pair_id}: no Sentinel-2 bands (has {list(names)})", "missing_bands")
    return PatchPair(
        meta=meta,
        s1=np.stack([arr[b].astype(np.float32) for b in S1_BANDS], axis=-1),
        s2=np.stack([arr[b].astype(np.uint16) for b in s2_bands], axis=-1),
        cloud=arr[CLOUD_FIELD].astype(np.float32),
        s2_bands=s2_bands,
        labels=_labels(arr, meta),
    )


def _labels(arr: np.ndarray, meta: PairMeta) -> dict[str, np.ndarray]:
    names = arr.dtype.names
    out = {n: np.asarray(arr[n]) for n in names if n in LABEL_DTYPES}
    present = [b for b in EMBEDDING_BANDS if b in names]
    if len(present) == len(EMBEDDING_BANDS):
        out[EMBEDDING] = np.stack([arr[b].astype(np.int8) for b in EMBEDDING_BANDS], axis=-1)
    elif present:
        raise ReadError(f"pair {meta.pair_id}: embedding bands incomplete ({len(present)} of 64)", "missing_bands")
    return out


def encode_npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def write_pair(archive: str, pair: PatchPair) -> None:
    """Write one pair (array first, metadata last) so the .json marks it complete."""
    npy_uri, json_uri = pair_uris(archive, pair.pair_id)
    storage.write_bytes(npy_uri, encode_npy(to_structured(pair)))
    storage.write_text(json_uri, json.dumps(pair.meta.to_json(), sort_keys=True, indent=1))


def list_pairs(archive: str) -> list[str]:
    """Metadata URIs of the complete pairs in an archive, sorted."""
    return list(storage.list_files(storage.join(archive, PAIRS_DIR), "*.json"))


def read_pair(json_uri: str) -> PatchPair:
    """Read one pair from its metadata URI. Raises ValueError (or OSError) when it is broken."""
    meta = PairMeta.from_json(json.loads(storage.read_text(json_uri)))
    arr = np.load(io.BytesIO(storage.read_bytes(json_uri[: -len(".json")] + ".npy")), allow_pickle=False)
    if arr.ndim != 2 or arr.dtype.names is None:
        raise ValueError(f"pair {meta.pair_id}: expected a structured [H, W] array, got {arr.dtype} {arr.shape}")
    pair = from_structured(arr, meta)
    pair.origin = json_uri
    return pair
