"""Training-record schema v1: one ``tf.train.Example`` per kept pair.

Values stay in physical units in a compact dtype (normalisation happens at read time from the
manifest's statistics, so one dataset serves any model). Arrays are raw little-endian bytes in
row-major [H, W, C] order; ``height`` and ``width`` give the shape, the manifest gives band names.

| feature     | proto kind | content                                                   |
|-------------|------------|-----------------------------------------------------------|
| pair_id     | bytes      | stable pair id                                            |
| split       | bytes      | train / val / test                                        |
| height      | int64      | H                                                         |
| width       | int64      | W                                                         |
| lon, lat    | float      | patch centre, degrees (WGS84)                             |
| dt_hours    | float      | Δt = S1 time - S2 time                                    |
| s1          | bytes      | float16 [H, W, 2], VV and VH in dB                        |
| s2          | bytes      | uint16 [H, W, C], reflectance x 10000                     |
| cloud       | bytes      | float16 [H, W], Cloud Score+ cs_cdf                       |
| water       | bytes      | int8 [H, W], 1 water, 0 not, -1 no data (labelled only)   |
| landcover   | bytes      | uint8 [H, W], class index, 255 no data (labelled only)    |
| worldcover  | bytes      | uint8 [H, W], ESA WorldCover class index, 255 no data     |
| dynamicworld| bytes      | uint8 [H, W], Dynamic World class index, 255 no data      |
| embedding   | bytes      | int8 [H, W, 64], AlphaEarth embedding x 127, -128 no data |

The last three are there when the export asked for them (``senclr.label_bands``).
"""

from __future__ import annotations

import numpy as np

from senclr.example_proto import decode_example, encode_example
from senclr.pair import PatchPair

SCHEMA_VERSION = 1
ARRAY_DTYPES = {"s1": "<f2", "s2": "<u2", "cloud": "<f2", "water": "i1", "landcover": "u1", "worldcover": "u1",
                "dynamicworld": "u1", "embedding": "i1"}
LABELS = ("water", "landcover", "worldcover", "dynamicworld", "embedding")
CHANNELLED = ("s1", "s2", "embedding")  # stored [H, W, C]; the others [H, W]
SPLITS = ("train", "val", "test")


def encode_record(pair: PatchPair, split: str) -> bytes:
    """Serialise a pair as a schema-v1 tf.train.Example."""
    h, w = pair.shape
    feats = {
        "pair_id": pair.pair_id,
        "split": split,
        "height": [h],
        "width": [w],
        "lon": [float(pair.meta.lon)],
        "lat": [float(pair.meta.lat)],
        "dt_hours": [float(pair.meta.dt_hours)],
        "s1": np.ascontiguousarray(pair.s1, ARRAY_DTYPES["s1"]).tobytes(),
        "s2": np.ascontiguousarray(pair.s2, ARRAY_DTYPES["s2"]).tobytes(),
        "cloud": np.ascontiguousarray(pair.cloud, ARRAY_DTYPES["cloud"]).tobytes(),
    }
    for name in LABELS:
        if name in pair.labels:
            feats[name] = np.ascontiguousarray(pair.labels[name], ARRAY_DTYPES[name]).tobytes()
    return encode_example(feats)


def decode_record(buf: bytes) -> dict:
    """Parse a schema-v1 record into numpy arrays and scalars (no TensorFlow needed)."""
    ex = decode_example(buf)
    h, w = ex["height"][0], ex["width"][0]
    out = {
        "pair_id": ex["pair_id"][0].decode(),
        "split": ex["split"][0].decode(),
        "lon": np.float32(ex["lon"][0]),
        "lat": np.float32(ex["lat"][0]),
        "dt_hours": np.float32(ex["dt_hours"][0]),
    }
    for name, dtype in ARRAY_DTYPES.items():
        if name in ex:
            arr = np.frombuffer(ex[name][0], dtype)
            out[name] = arr.reshape(h, w, -1) if name in CHANNELLED else arr.reshape(h, w)
    return out
