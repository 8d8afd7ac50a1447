"""Pre-train the S1/S2 dual encoder on a senclr dataset and save the encoders.

Every argument is checked (``checks.preflight``) before any training, with a message saying how to
fix it, and nothing is written to the model dir until training is done.
"""

from __future__ import annotations

import os
import sys

import keras
import tensorflow as tf

from senclr import __version__, storage
from senclr.dataset import count
from senclr.dataset_tf import make_dataset
from senclr.models import saved
from senclr.models.checks import check_split_size, preflight
from senclr.models.dual_encoder import DualEncoder
from senclr.models.encoders import DOWNSAMPLE, build_encoder, feature_channels


def pair_batches(data, split, manifest, s1_bands, s2_bands, batch_size, seed=None):
    """Batches of {"s1", "s2"} for ``fit``; shuffled when ``seed`` is given, last partial batch dropped."""
    n = count(manifest, split)
    ds = make_dataset(data, split, s1_bands, s2_bands, manifest=manifest)
    ds = ds.map(lambda r: {"s1": r["s1"], "s2": r["s2"]}, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.apply(tf.data.experimental.assert_cardinality(n))  # lets the progress bar know the steps
    if seed is not None:
        ds = ds.shuffle(min(n, 10_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def build_dual_encoder(n1: int, n2: int, width: int, proj_dim: int, temperature: float) -> DualEncoder:
    """A DualEncoder with its variables created (call inside the strategy's scope)."""
    model = DualEncoder(
        build_encoder(n1, width, name="s1_encoder"),
        build_encoder(n2, width, name="s2_encoder"),
        proj_dim=proj_dim,
        temperature=temperature,
        name="dual_encoder",
    )
    model({"s1": tf.zeros([1, 8, 8, n1]), "s2": tf.zeros([1, 8, 8, n2])})
    return model


def history_lists(history: keras.callbacks.History) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def _verbosity(progress: bool) -> int:
    # The live bar on a terminal; one line per epoch in logs, where a bar would be noise.
    if not progress:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _dataset_uri(data: str) -> str:
    return data if storage.is_gcs(data) else os.path.abspath(data)


def train(
    data: str,
    model_dir: str,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    temperature: float = 0.1,
    width: int = 32,
    proj_dim: int = 64,
    s1_bands=None,
    s2_bands=None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Train the dual encoder on ``data``'s train split and save it to ``model_dir``.

    Validation runs on the val split when it holds at least one batch. Returns the saved config
    (with ``history``, per-epoch metrics) plus ``model_dir``.
    """
    m, b1, b2 = preflight(data, model_dir, overwrite, batch_size, s1_bands, s2_bands, epochs=epochs,
                          learning_rate=learning_rate, temperature=temperature, width=width, proj_dim=proj_dim)
    strategy = strategy or tf.distribute.get_strategy()
    n_train = check_split_size(m, data, batch_size, strategy.num_replicas_in_sync)

    keras.utils.set_random_seed(seed)
    train_ds = pair_batches(data, "train", m, b1, b2, batch_size, seed=seed)
    val_ds = None
    if count(m, "val") >= batch_size:
        val_ds = pair_batches(data, "val", m, b1, b2, batch_size)
    with strategy.scope():
        model = build_dual_encoder(len(b1), len(b2), width, proj_dim, temperature)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    history = model.fit(
        train_ds, validation_data=val_ds, epochs=epochs, shuffle=False, verbose=_verbosity(progress)
    )  # shuffle=False: the pipeline shuffles already

    config = {
        "kind": "senclr-dual-encoder",
        "senclr_version": __version__,
        "dataset": _dataset_uri(data),
        "s1_bands": b1,
        "s2_bands": b2,
        "s2_level": m["bands"].get("s2_level"),
        "statistics": {b: m["statistics"][b] for b in b1 + b2},
        "width": width,
        "feature_channels": feature_channels(width),
        "downsample": DOWNSAMPLE,
        "proj_dim": proj_dim,
        "temperature": temperature,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "train_pairs": n_train,
        "replicas": strategy.num_replicas_in_sync,
        "history": history_lists(history),
    }
    if overwrite:
        storage.remove_tree(model_dir)  # also an old evaluation/ that no longer describes this model
    saved.save(model_dir, model.s1_encoder, model.s2_encoder, config)
    return {**config, "model_dir": model_dir}
