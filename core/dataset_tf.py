"""Read a senclr training dataset as a ``tf.data.Dataset`` (TensorFlow imported on first use).

Decoding and normalisation match ``senclr.dataset.iter_records`` bit for bit. ``record_parser``
also parses whole batches of serialized records at once (one ``parse_example`` and one
``decode_raw`` per feature instead of one per record), which is what keeps a training input
pipeline ahead of the accelerator; the patches of one batch must then share one size.
"""

from __future__ import annotations

from senclr import manifest as manifest_lib
from senclr import normalize
from senclr.dataset import band_indices, shard_uris
from senclr.errors import InputError
from senclr.label_bands import EMBEDDING_BANDS
from senclr.schema import ARRAY_DTYPES

_TF_DTYPES = {"<f2": "float16", "<u2": "uint16", "i1": "int8", "u1": "uint8"}


def record_parser(
    m: dict,
    s1_bands: list[str] | None = None,
    s2_bands: list[str] | None = None,
    labels: tuple[str, ...] = (),
    normalized: bool = True,
    batched: bool = False,
    ids: bool = True,
):
    """A function serialized record(s) -> dict {"s1", "s2", labels..., "pair_id"}.

    With ``batched`` it takes a [B] string tensor and returns [B, H, W, C] arrays; without
    ``ids`` the pair ids are not parsed (training does not need them).
    """
    import tensorflow as tf

    missing = [lab for lab in labels if lab not in m.get("labels", [])]
    if missing:
        raise InputError(f"the dataset has no labels {missing} (it has {m.get('labels', [])})")
    idx = {"s1": band_indices(m, "s1", s1_bands), "s2": band_indices(m, "s2", s2_bands)}
    channels = {key: len(m["bands"][key]) for key in idx}
    params = {key: normalize.band_params(m["statistics"], [m["bands"][key][i] for i in idx[key]])
              for key in idx} if normalized else {}
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in (*(["pair_id"] if ids else []), "s1", "s2", *labels)}
    spec.update(height=tf.io.FixedLenFeature([], tf.int64), width=tf.io.FixedLenFeature([], tf.int64))

    def decode(raw, key, shape):
        flat = tf.io.decode_raw(raw, getattr(tf, _TF_DTYPES[ARRAY_DTYPES[key]]), little_endian=True)
        return tf.reshape(flat, shape)

    def parse(serialized):
        ex = (tf.io.parse_example if batched else tf.io.parse_single_example)(serialized, spec)
        lead = [-1] if batched else []
        h, w = (ex["height"][0], ex["width"][0]) if batched else (ex["height"], ex["width"])
        if batched:  # one reshape for the batch: every patch must have the first one's size
            same = tf.reduce_all(tf.equal(ex["height"], h) & tf.equal(ex["width"], w))
            tf.debugging.assert_equal(same, True, message="patches of different sizes in one batch")
        out = {"pair_id": ex["pair_id"]} if ids else {}
        for key in ("s1", "s2"):
            x = decode(ex[key], key, [*lead, h, w, channels[key]])
            if idx[key] != list(range(channels[key])):  # a gather costs as much as the parse
                x = tf.gather(x, idx[key], axis=-1)
            if normalized:
                # Constants broadcast to [1, H, W, C] first: TF's CPU kernels broadcast a
                # trailing [C] vector several times slower (same arithmetic, same values).
                full = [1, h, w, len(idx[key])] if batched else [h, w, len(idx[key])]
                p = {k: v if k == "nodata0" else tf.broadcast_to(v, full) for k, v in params[key].items()}
                x = standardize(tf.cast(x, tf.float32), p)
            out[key] = x
        for lab in labels:  # as stored: the embedding stays int8 (senclr.label_bands.dequantize_embedding)
            out[lab] = decode(ex[lab], lab, [*lead, h, w, *([len(EMBEDDING_BANDS)] if lab == "embedding" else [])])
        return out

    return parse


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
    parse = record_parser(m, s1_bands, s2_bands, labels, normalized)
    files = shard_uris(dataset, m, split)
    if not files:
        raise InputError(f"{dataset} has no records in split {split!r}; its splits: {m.get('splits')}")
    return tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def standardize(x, p: dict):
    """``senclr.normalize.apply`` in TensorFlow, bit for bit: float32 ``x`` [..., C] clipped to
    [lo, hi] and standardised; 0.0 where ``x`` is 0 in a channel whose ``nodata0`` (numpy bool) is set."""
    import tensorflow as tf

    y = (tf.clip_by_value(x, p["lo"], p["hi"]) - p["mean"]) / p["std"]
    if not p["nodata0"].any():  # no S2 band: nothing to mask
        return y
    return tf.where(tf.logical_and(tf.equal(x, 0.0), tf.constant(p["nodata0"])), tf.zeros_like(y), y)
