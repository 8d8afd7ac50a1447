"""Pre-train encoders on a senclr dataset with ``model.fit`` and save them with their config.

Order matters: arguments and the model dir are checked first (no TensorFlow), then the
tf.distribute strategy is created (collective strategies must come before any other TF op),
the replica count is checked against the global batch, the datasets and the model are built,
and only then is anything written to the model dir. Training backs up at every epoch (or every
``--checkpoint-steps`` steps), so a killed run rerun with the same flags resumes there and ends
after the same number of steps.
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile

import keras
import tensorflow as tf

from senclr import __version__, storage
from senclr.models import backbones, backup, optim, run_state, saved
from senclr.models import strategy as strategy_lib
from senclr.models.checks import check_split_size, preflight_run
from senclr.models.data import norm_params, pretraining_dataset, steps_per_epoch
from senclr.models.dual_encoder import DualEncoder
from senclr.models.heads import set_global_batch_norm
from senclr.models.simclr import SimCLR
from senclr.models.spec import PRECISIONS, TrainSpec


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite (TerminateOnNaN stopped the run)."""


def _log(message: str) -> None:
    print(f"senclr train: {message}", file=sys.stderr, flush=True)


def encoder_channels(spec: TrainSpec, bands: dict) -> dict[str, int]:
    """{encoder key: input channels} of the run's encoders."""
    keys = ("s1", "s2") if spec.method == "multimodal" else (spec.modality,)
    cfg = {"s1_bands": list(bands["s1"]), "s2_bands": list(bands["s2"])}
    return {k: len(saved.encoder_bands(cfg, k)) for k in keys}


def build_model(spec: TrainSpec, bands: dict, input_norm: dict | None = None):
    """The method's keras.Model with its variables created (call inside the strategy's scope).
    ``input_norm`` (multimodal): normalisation the model applies to raw-unit inputs."""
    enc = {k: backbones.build_backbone(spec.backbone, c, spec.width, name=f"{k}_encoder")
           for k, c in encoder_channels(spec, bands).items()}
    common = dict(proj_dim=spec.proj_dim, temperature=spec.temperature, head_layers=spec.head_layers)
    if spec.method == "multimodal":
        model = DualEncoder(enc["s1"], enc["s2"], intra_negatives=spec.intra_modal_negatives, name="dual_encoder",
                            input_norm=input_norm, **common)
        model({"s1": tf.zeros([2, 8, 8, len(bands["s1"])]), "s2": tf.zeros([2, 8, 8, len(bands["s2"])])})
    else:
        (key, encoder), = enc.items()
        model = SimCLR(encoder, key, name="simclr", **common)
        x = tf.zeros([2, 8, 8, encoder_channels(spec, bands)[key]])
        model({"view1": x, "view2": x})
    return model


def float32_copies(spec: TrainSpec, model) -> dict:
    """The trained encoders rebuilt in float32 with plain BN: what evaluation loads, whatever
    precision and strategy trained them."""
    out = {}
    with _policy("float32"):
        for key, enc in model.encoders.items():
            copy = backbones.build_backbone(spec.backbone, enc.input_shape[-1], spec.width, name=f"{key}_encoder")
            copy.set_weights(enc.get_weights())
            out[key] = copy
    return out


class _policy:
    """Keras' global dtype policy for a block, restored afterwards (it is process-wide)."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.old = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.name)

    def __exit__(self, *exc):
        keras.config.set_dtype_policy(self.old)


@contextlib.contextmanager
def _op_determinism(on: bool):
    """TensorFlow's op determinism for a block when ``on``, then as it was before: it is
    process-wide, and without this a deterministic run would leave every later one in the
    process (a notebook) deterministic and without XLA (Keras drops ``jit_compile`` under it).
    TensorFlow's only switch back is private; where it is missing, determinism stays on."""
    config = _private_determinism_config() if on else None
    was = not on or config is None or config.is_op_determinism_enabled()
    if on:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            config.disable_op_determinism()


def _private_determinism_config():
    try:
        from tensorflow.python.framework import config  # private: is_/disable_op_determinism
    except ImportError:
        return None
    return config if hasattr(config, "disable_op_determinism") and hasattr(config, "is_op_determinism_enabled") else None


class HistoryCSV(keras.callbacks.Callback):
    """history.csv rewritten whole after every epoch (append is not possible on gs://).

    Listed before the backup, so an epoch's row is written before a backup claims the epoch; the
    rows of earlier epochs are read back when the first epoch begins, when the backup has set it.
    """

    def __init__(self, model_dir: str):
        super().__init__()
        self.model_dir, self.rows = model_dir, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:
            self.rows = run_state.read_history(self.model_dir, epoch)

    def on_epoch_end(self, epoch, logs=None):
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}, "learning_rate": lr})
        run_state.write_history(self.model_dir, self.rows)


def _check_finished(rows: list[dict], epochs: int, backup_dir: str) -> None:
    """TrainingDiverged when TerminateOnNaN stopped the run; RuntimeError when epochs are unaccounted."""
    if rows and not all(math.isfinite(v) for v in rows[-1].values()):
        raise TrainingDiverged(
            f"the loss became NaN or infinite in epoch {len(rows)}; rerun with --overwrite and a lower "
            f"--learning-rate, more --warmup-epochs or --precision fp32 (the last good backup is in {backup_dir})")
    missing = sorted(set(range(epochs)) - {r["epoch"] for r in rows})
    if missing:
        raise RuntimeError(f"training ended without a history row for epoch(s) {missing[:10]} of {epochs}; "
                           f"the backup is kept in {backup_dir}")


def _verbosity(progress: bool) -> int:
    # The live bar on a terminal; one line per epoch in logs, where a bar would be noise.
    if not progress:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _schedule(spec: TrainSpec, epoch_steps: int, total_steps: int):
    peak = optim.scaled_learning_rate(spec.learning_rate, spec.batch_size, spec.lr_scaling)
    warmup = min(int(round(spec.warmup_epochs * epoch_steps)), total_steps - 1)
    return optim.warmup_cosine(peak, total_steps, warmup), peak


def _datasets(data, m, spec, bands, workers, on_tpu: bool):
    common = dict(method=spec.method, bands=bands, global_batch=spec.batch_size, seed=spec.seed,
                  deterministic=spec.deterministic, modality=spec.modality, augment_cfg=spec.augment, workers=workers,
                  float32=on_tpu)
    train_ds = pretraining_dataset(data, m, "train", **common)
    val_steps = steps_per_epoch(m, "val", spec.batch_size)
    val_ds = pretraining_dataset(data, m, "val", shuffle=False, **common) if val_steps else None
    return train_ds, val_ds, val_steps


def train(data: str, model_dir: str, spec: TrainSpec | None = None, overwrite: bool = False,
          strategy: tf.distribute.Strategy | None = None, **changes) -> dict:
    """Pre-train on ``data``'s train split (val for validation when it fills a batch) and save
    the encoders to ``model_dir``. ``changes`` override fields of ``spec`` (e.g. ``epochs=2``).

    Returns the saved config (with ``history``) plus ``model_dir``.
    """
    spec = (spec or TrainSpec()).replace(**changes)
    with _op_determinism(spec.deterministic):
        return _train(data, model_dir, spec, overwrite, strategy)


def _train(data: str, model_dir: str, spec: TrainSpec, overwrite: bool, strategy) -> dict:
    m, spec, fingerprint, state = preflight_run(data, model_dir, spec, overwrite)
    b1, b2 = list(spec.s1_bands), list(spec.s2_bands)
    chief = strategy_lib.is_chief()
    if strategy is None:
        strategy, concrete = strategy_lib.make(spec.strategy, spec.tpu)
    else:
        concrete = type(strategy).__name__
    replicas = strategy.num_replicas_in_sync
    n_train = check_split_size(m, data, spec.batch_size, replicas)

    keras.utils.set_random_seed(spec.seed)
    bands = {"s1": b1, "s2": b2}
    train_ds, val_ds, val_steps = _datasets(data, m, spec, bands, strategy_lib.worker_count(),
                                            isinstance(strategy, tf.distribute.TPUStrategy))
    epoch_steps = steps_per_epoch(m, "train", spec.batch_size)
    chunk = spec.checkpoint_steps or epoch_steps
    chunks = math.ceil(spec.epochs * epoch_steps / chunk)
    schedule, peak_lr = _schedule(spec, epoch_steps, chunks * chunk)
    with _policy(PRECISIONS[spec.precision]), strategy.scope():
        model = build_model(spec, bands, norm_params(m, bands) if spec.method == "multimodal" else None)
        set_global_batch_norm(model, spec.global_bn and replicas > 1)
        model.compile(optimizer=optim.build_optimizer(spec.optimizer, schedule, spec.weight_decay,
                                                      model.trainable_variables),
                      steps_per_execution=spec.steps_per_execution)

    if chief:
        run_state.start(model_dir, state, fingerprint)
    out_dir = model_dir if chief else tempfile.mkdtemp(prefix="senclr-worker-")  # only the chief's files count
    backup_dir = storage.join(model_dir, run_state.BACKUP, strategy_lib.task_id())
    history = HistoryCSV(out_dir)
    callbacks = [
        history,
        backup.ResumableBackup(backup_dir, chunks, _log),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.TensorBoard(storage.join(out_dir, run_state.LOGS)),
    ]
    _log(f"{spec.method} / {spec.backbone} on {concrete} ({replicas} replica(s)): {chunks} epochs of {chunk} steps, "
         f"global batch {spec.batch_size}, {spec.optimizer} peak lr {peak_lr:g}, {spec.precision}")
    model.fit(train_ds, steps_per_epoch=chunk, epochs=chunks, validation_data=val_ds,
              validation_steps=val_steps or None, callbacks=callbacks, shuffle=False, verbose=_verbosity(spec.progress))
    rows = history.rows if history.rows is not None else run_state.read_history(out_dir, chunks)  # none left to run
    _check_finished(rows, chunks, backup_dir)

    config = {
        "kind": "senclr-encoder",
        "senclr_version": __version__,
        **{k: v for k, v in fingerprint.items() if k != "data"},
        "dataset": fingerprint["data"],
        "s1_bands": b1,
        "s2_bands": b2,
        "s2_level": m["bands"].get("s2_level"),
        "statistics": {b: m["statistics"][b] for b in b1 + b2},
        "encoders": sorted(model.encoders),
        "feature_channels": backbones.feature_channels(spec.backbone, spec.width),
        "downsample": backbones.output_stride(spec.backbone),
        "feature_layers": backbones.FEATURE_LAYERS[spec.backbone],
        "train_pairs": n_train,
        "steps": chunks * chunk,
        # Updates applied, counted by the optimizer: fewer than steps only where fp16 loss scaling skipped some.
        "optimizer_steps": int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
        "peak_learning_rate": peak_lr,
        "strategy": concrete,
        "replicas": replicas,
        "history": {k: [r[k] for r in rows if k in r] for k in rows[0] if k != "epoch"},
    }
    saved.save(out_dir, float32_copies(spec, model), config)
    storage.remove_tree(storage.join(model_dir, run_state.BACKUP) if chief else backup_dir)
    return {**config, "model_dir": model_dir}
