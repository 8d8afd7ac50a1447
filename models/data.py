"""The training input pipeline: a senclr dataset's TFRecords straight into ``model.fit``.

Shard files (local paths, or ``gs://`` read by TensorFlow's built-in GCS filesystem with the
machine's application-default credentials) are shuffled, read (local files one after another,
``gs://`` interleaved), shuffled again by record, repeated, batched to the global batch, parsed a
batch at a time (one ``parse_example`` per batch: see ``senclr.dataset_tf.record_parser``) and
prefetched. Normalisation with the
manifest statistics happens in the model's step for the multimodal method (on the accelerator:
measured, it was most of the pipeline's host time) and in the pipeline for SimCLR, whose
augmentations work in standardised units. Nothing is converted beforehand: the records stay the
dataset's.

The stream repeats, and ``fit`` takes a fixed number of steps per epoch, so every worker of a
multi-worker run takes the same number of steps even when files split unevenly. Under a
strategy ``fit`` hands each replica ``global_batch / replicas`` rows; across workers the data is
sharded by file (each worker reads its own shards) when there are at least as many shards as
workers, else by record.
"""

from __future__ import annotations

import numpy as np

from senclr import normalize, storage
from senclr.dataset import count, shard_uris
from senclr.dataset_tf import record_parser
from senclr.models import augment

SHUFFLE_BUFFER = 10_000  # records at most...
SHUFFLE_MB = 256  # ...and at most this much host memory: 7,700 32x32 L1C records, 480 of 128x128
AUGMENT_CHUNK = 128  # SimCLR: patches parsed and augmented per call, then batched to the global batch


def _record_batches(files: list[str], batch: int, seed: int, deterministic: bool, shuffle: bool, buffer: int):
    """Batches of ``batch`` serialized records of ``files``, repeated forever; with ``shuffle``
    the file order changes every pass and records are shuffled one by one in ``buffer``.

    The batch copies its records on tf.data's threads (``num_parallel_calls``) instead of the
    reading thread, which is the pipeline's serial part: TFRecordDataset checks every record's
    CRC32C there (about 40 % of its time). Measured against raw reads in
    ``benchmarks/train_step.py`` on 2 cores (docs/performance.md).
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if any(storage.is_gcs(f) for f in files):
        # gs://: parallel reads through a read buffer pay off against Cloud Storage's latency.
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    else:
        # Local disk: one file after another, unbuffered. Parallel reads cost more CPU than they
        # bring on a busy host (0.69 against 0.81 of a raw read, 2 cores); reading files in turn
        # costs ~4 % over reading them one after another and mixes nothing that matters (every
        # shard is a pair-id hash partition of its split, stored in pair-id hash order); without
        # a read buffer each record is read straight into its string: one copy fewer (~+6 %).
        ds = tf.data.TFRecordDataset(ds, buffer_size=0)
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.repeat().batch(batch, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE,
                             deterministic=deterministic)


def patch_shape(files: list[str]) -> tuple[int, int]:
    """(H, W) of the first record, so the batches carry static shapes (XLA and TPUs need them)."""
    import tensorflow as tf

    spec = {k: tf.io.FixedLenFeature([], tf.int64) for k in ("height", "width")}
    first = next(iter(tf.data.TFRecordDataset(files[:1]).take(1)))
    ex = tf.io.parse_single_example(first, spec)
    return int(ex["height"]), int(ex["width"])


def shuffle_buffer(m: dict, h: int, w: int) -> int:
    """Records the shuffle buffer holds: SHUFFLE_BUFFER, or fewer for large patches so the buffer
    stays within SHUFFLE_MB (records are already in pair-id hash order, i.e. spatially mixed)."""
    record = h * w * (2 * len(m["bands"]["s1"]) + 2 * len(m["bands"]["s2"]) + 2 + len(m.get("labels", [])))
    return max(64, min(SHUFFLE_BUFFER, int(SHUFFLE_MB * 2**20 // record)))


def _with_options(ds, deterministic: bool, n_files: int, workers: int):
    import tensorflow as tf

    opts = tf.data.Options()
    opts.deterministic = deterministic
    policy = tf.data.experimental.AutoShardPolicy
    opts.experimental_distribute.auto_shard_policy = policy.FILE if n_files >= workers else policy.DATA
    return ds.with_options(opts)


def select(batch: dict, modality: str):
    """The encoder input of one modality: S1, S2 or both stacked as channels (S1 first)."""
    import tensorflow as tf

    if modality == "s1s2":
        return tf.concat([batch["s1"], batch["s2"]], axis=-1)
    return batch[modality]


def pretraining_dataset(data: str, m: dict, split: str, method: str, bands: dict, global_batch: int,
                        seed: int = 0, deterministic: bool = False, modality: str = "s1s2",
                        augment_cfg: augment.AugmentConfig | None = None, shuffle: bool = True,
                        workers: int = 1, buffer: int | None = None, float32: bool = False):
    """An endless stream of global batches for ``fit``: {"s1", "s2"} (multimodal) or
    {"view1", "view2"} (simclr, two augmented views of ``modality``, normalised: the
    augmentations work in standardised units).

    Multimodal batches are in physical units (``input_norm`` of ``norm_params`` normalises them
    in the model), in the stored dtypes unless ``float32``."""
    import tensorflow as tf

    files = shard_uris(data, m, split)
    h, w = patch_shape(files)
    buffer = max(1, min(count(m, split), buffer or shuffle_buffer(m, h, w)))
    records = lambda batch: _record_batches(files, batch, seed, deterministic, shuffle, buffer)  # noqa: E731
    shape = lambda x, n=None: tf.ensure_shape(x, [n, h, w, x.shape[-1]])  # noqa: E731  (n: batch, if known)
    if method == "multimodal":
        # Physical units in the stored dtypes (float16 dB, uint16 reflectance): the model casts
        # and normalises on the accelerator (``input_norm``), which keeps the arithmetic off the
        # host's cores and halves what is copied to the device. TPUs take no uint16: float32.
        parse = record_parser(m, bands["s1"], bands["s2"], normalized=False, batched=True, ids=False)
        dtype = tf.float32 if float32 else None

        def pairs(r):
            return {k: shape(v if dtype is None else tf.cast(v, dtype)) for k, v in parse(r).items()}

        ds = records(global_batch).map(pairs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    else:
        # Normalised (the augmentations work in standardised units) and augmented in chunks of at
        # most AUGMENT_CHUNK patches, then batched to the global batch: a call's float32 copies
        # stay small at paper-scale batches (4096 x 128 x 128 x 15 would be 4 GB each)
        chunk = min(global_batch, AUGMENT_CHUNK)
        parse = record_parser(m, bands["s1"], bands["s2"], batched=True, ids=False)
        patches = records(chunk).map(lambda r: shape(select(parse(r), modality), chunk),  # drop_remainder
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        s1_channels = len(bands["s1"]) if modality in ("s1", "s1s2") else 0
        s1_std = np.array([m["statistics"][b]["std"] for b in bands["s1"]], np.float32) if s1_channels else None
        ds = augment.views_dataset(patches, augment_cfg or augment.AugmentConfig(), seed,
                                   s1_channels=s1_channels, s1_db_std=s1_std, batch=global_batch)
    return _with_options(ds.prefetch(tf.data.AUTOTUNE), deterministic, len(files), workers)


def norm_params(m: dict, bands: dict) -> dict:
    """{"s1": ..., "s2": ...} ``senclr.normalize.band_params`` of the bands, for ``input_norm``."""
    return {key: normalize.band_params(m["statistics"], list(bands[key])) for key in ("s1", "s2")}


def steps_per_epoch(m: dict, split: str, global_batch: int) -> int:
    """Global steps in one pass over ``split`` (its last partial batch is not a step)."""
    return count(m, split) // global_batch
