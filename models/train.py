"""Pre-train the S1/S2 dual encoder on a senclr dataset and save the encoders.

Every argument is checked before TensorFlow does any work, so bad input fails in a second with
a message saying how to fix it, and nothing is written to the model dir until training is done.
"""

from __future__ import annotations

import os
import sys

import keras
import tensorflow as tf

from senclr import __version__, storage
from senclr import manifest as manifest_lib
from senclr.dataset import band_indices, count
from senclr.dataset_tf import make_dataset
from senclr.errors import InputError
from senclr.models import saved
from senclr.models.dual_encoder import DualEncoder
from senclr.models.encoders import DOWNSAMPLE, build_encoder, feature_channels


def check_hyperparameters(epochs, batch_size, learning_rate, temperature, width, proj_dim) -> None:
    """InputError naming the first out-of-range value and what would be valid."""
    rules = [
        (epochs >= 1, f"epochs must be >= 1, got {epochs}"),
        (batch_size >= 2, f"batch size must be >= 2 (a pair needs another pair as negative), got {batch_size}"),
        (learning_rate > 0, f"learning rate must be > 0, got {learning_rate}"),
        (temperature > 0, f"temperature must be > 0 (0.1 is usual), got {temperature}"),
        (width >= 1, f"width must be >= 1, got {width}"),
        (proj_dim >= 1, f"projection dim must be >= 1, got {proj_dim}"),
    ]
    for ok, message in rules:
        if not ok:
            raise InputError(message)


def resolve_bands(manifest: dict, sensor: str, wanted) -> list[str]:
    """Band names to train on: all of the dataset's when ``wanted`` is None; InputError if absent."""
    if wanted is not None and not list(wanted):
        raise InputError(f"no {sensor.upper()} bands given; name at least one, or leave the option out for all")
    idx = band_indices(manifest, sensor, None if wanted is None else list(wanted))
    return [manifest["bands"][sensor][i] for i in idx]


def check_split_size(manifest: dict, data: str, batch_size: int, replicas: int) -> int:
    """Records in the train split, which must fill at least one batch evenly split over replicas."""
    n = count(manifest, "train")
    if n < batch_size:
        raise InputError(
            f"{data} has {n} training pairs, fewer than one batch of {batch_size}; "
            f"lower --batch-size or build a larger dataset"
        )
    if batch_size % replicas:
        raise InputError(f"batch size {batch_size} does not split evenly over {replicas} replicas")
    return n


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
    progress: bool = True,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Train the dual encoder on ``data``'s train split and save it to ``model_dir``.

    Validation runs on the val split when it holds at least one batch. Returns the saved config
    (with ``history``, per-epoch metrics) plus ``model_dir``.
    """
    check_hyperparameters(epochs, batch_size, learning_rate, temperature, width, proj_dim)
    saved.check_model_dir(model_dir)
    m = manifest_lib.read(data, kind="dataset")
    b1, b2 = resolve_bands(m, "s1", s1_bands), resolve_bands(m, "s2", s2_bands)
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
    saved.save(model_dir, model.s1_encoder, model.s2_encoder, config)
    return {**config, "model_dir": model_dir}
