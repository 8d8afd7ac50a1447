"""Read a senclr training dataset as a ``tf.data.Dataset`` (TensorFlow imported on first use).

Decoding and normalisation match ``senclr.dataset.iter_records`` bit for bit.
"""

from __future__ import annotations

from senclr import manifest as manifest_lib
from senclr import normalize
from senclr.dataset import band_indices, shard_uris
from senclr.errors import InputError
from senclr.schema import ARRAY_DTYPES

_TF_DTYPES = {"<f2": "float16", "<u2": "uint16", "i1": "int8", "u1": "uint8"}


def make_dataset(
    dataset: str,
    split: str | None = None,
    s1_bands: list[str] | None = None,
    s2_bands: list[str] | None = None,
    labels: tuple[str, ...] = (),
    normalized: bool = True,
    manifest: dict | None = None,
):
    """Records as dicts {"s1", "s2", labels..., "pair_id"}; s1/s2 float32 when ``normalized``."""
    import tensorflow as tf

    m = manifest or manifest_lib.read(dataset, kind="dataset")
    missing = [lab for lab in labels if lab not in m.get("labels", [])]
    if missing:
        raise InputError(f"the dataset has no labels {missing} (it has {m.get('labels', [])})")
    i1, i2 = band_indices(m, "s1", s1_bands), band_indices(m, "s2", s2_bands)
    c1, c2 = len(m["bands"]["s1"]), len(m["bands"]["s2"])
    params = {}
    if normalized:
        params["s1"] = normalize.band_params(m["statistics"], [m["bands"]["s1"][i] for i in i1])
        params["s2"] = normalize.band_params(m["statistics"], [m["bands"]["s2"][i] for i in i2])
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("pair_id", "s1", "s2", *labels)}
    spec.update(height=tf.io.FixedLenFeature([], tf.int64), width=tf.io.FixedLenFeature([], tf.int64))

    def decode(raw, key):
        return tf.io.decode_raw(raw, getattr(tf, _TF_DTYPES[ARRAY_DTYPES[key]]), little_endian=True)

    def parse(serialized):
        ex = tf.io.parse_single_example(serialized, spec)
        h, w = ex["height"], ex["width"]
        out = {"pair_id": ex["pair_id"]}
        for key, idx, c in (("s1", i1, c1), ("s2", i2, c2)):
            x = tf.gather(tf.reshape(decode(ex[key], key), [h, w, c]), idx, axis=-1)
            if normalized:
                p = params[key]
                x = (tf.clip_by_value(tf.cast(x, tf.float32), p["lo"], p["hi"]) - p["mean"]) / p["std"]
            out[key] = x
        for lab in labels:
            out[lab] = tf.reshape(decode(ex[lab], lab), [h, w])
        return out

    files = shard_uris(dataset, m, split)
    if not files:
        raise InputError(f"{dataset} has no records in split {split!r}; its splits: {m.get('splits')}")
    return tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
