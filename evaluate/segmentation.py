"""Water segmentation on a frozen S1 encoder: does pre-training help a small labelled task?

The pre-trained S1 encoder and a randomly initialised copy of the same architecture each get
the same small head, trained with the same budget and seed on the train split's water labels,
and are scored on the held-out split with one global confusion matrix (DESIGN.md section 4).
Only the head learns, so the gap between the two measures what pre-training put in the features.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from senclr import manifest as manifest_lib
from senclr.dataset import count
from senclr.errors import InputError
from senclr.evaluate import metrics
from senclr.evaluate.contenders import describe

NUM_CLASSES = 2  # 0 not water, 1 water; -1 (no data) is ignored everywhere
DEFAULT_EPOCHS = 10  # the head has converged by then on the demo data (~1 s an epoch per 1000 32x32 patches)
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 0.1  # a linear probe on standardised features tolerates a high rate


def head_description(downsample: int = 2, learning_rate: float = DEFAULT_LEARNING_RATE) -> str:
    return (f"frozen encoder -> BatchNorm without scale/offset -> 1x1 conv to {NUM_CLASSES} classes -> "
            f"bilinear upsampling x{downsample} to the input size; "
            f"Adam lr {learning_rate:g} with cosine decay, cross-entropy ignoring no-data pixels")


def masked_sparse_ce(y_true, logits):
    """Mean cross-entropy over labelled pixels only: -1 pixels add nothing to loss or gradient."""
    from keras import losses, ops

    y = ops.cast(y_true, "int32")
    valid = ops.cast(y >= 0, "float32")
    ce = losses.sparse_categorical_crossentropy(ops.maximum(y, 0), logits, from_logits=True)
    return ops.sum(ce * valid) / ops.maximum(ops.sum(valid), 1.0)


def build_segmenter(encoder):
    """Frozen ``encoder`` + the head every compared encoder gets; outputs logits at input size."""
    import keras

    encoder.trainable = False  # also puts its BatchNorm layers in inference mode
    x = keras.Input((None, None, encoder.input_shape[-1]), name="s1")
    f = encoder(x, training=False)
    # MAE-style linear probe: a parameter-free BatchNorm standardises the features, so the head
    # learns as easily on a random encoder's badly scaled features as on pre-trained ones.
    f = keras.layers.BatchNormalization(center=False, scale=False, momentum=0.9, name="head_norm")(f)
    logits = keras.layers.Conv2D(NUM_CLASSES, 1, name="head_conv")(f)
    return keras.Model(x, _BilinearTo()([logits, x]), name=f"segmenter_{encoder.name}")


def _BilinearTo():
    """Bilinear resize of logits to the input's H, W: x2 for even sizes, and odd sizes (where the
    encoder rounds up) still line up with the labels. UpSampling2D fails on unknown H, W here."""
    from senclr.evaluate.decoder import ResizeLike

    return ResizeLike(name="head_upsample")


def train_head(encoder, train_ds, epochs: int, learning_rate: float = DEFAULT_LEARNING_RATE,
               seed: int = 0, log=None):
    """Train a fresh head on ``train_ds`` (batches of (s1, water)); returns (model, final loss)."""
    import keras

    keras.utils.set_random_seed(seed)  # same head initialisation for every encoder compared
    model = build_segmenter(encoder)
    model.compile(optimizer=keras.optimizers.Adam(_schedule(learning_rate, epochs, train_ds)),
                  loss=masked_sparse_ce, jit_compile=False)
    callbacks = [_EpochLog(log, epochs)] if log else []
    history = model.fit(train_ds, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)  # ds shuffles
    return model, float(history.history["loss"][-1])


def _schedule(learning_rate: float, epochs: int, train_ds):
    """Cosine decay to 0 over the run: the head ends at a settled minimum, not wherever the last
    noisy step of a constant rate left it (seen: +-0.04 water IoU between neighbouring epochs)."""
    import keras

    steps = int(train_ds.cardinality())
    if steps <= 0:  # unknown length: constant rate
        return learning_rate
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)


def _EpochLog(log, epochs):
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            log(f"  epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}")

    return EpochLog()


def evaluate_encoder(model, test_ds, n_examples: int = 0) -> dict:
    """Score a segmenter (``train_head``'s model) on batches of (s1, water) with one global matrix.

    With ``n_examples``, that many patches come back under "examples" (numpy, for figures, not
    JSON): S1 input, truth and prediction, patches holding water first as they show the most.
    The choice depends on the labels only, so every encoder shows the same patches.
    """
    acc = metrics.ConfusionMatrix(NUM_CLASSES)
    patches, picked = 0, {True: [], False: []}
    for x, y in test_ds:
        pred = np.argmax(np.asarray(model(x, training=False)), axis=-1)
        y = np.asarray(y)
        acc.update(y, pred)
        patches += len(y)
        for i in range(len(y)):
            has_water = bool((y[i] == 1).any())
            if len(picked[has_water]) < n_examples:
                picked[has_water].append((np.asarray(x[i]), y[i], pred[i]))
    out = {**scores(acc.result()), "patches": patches}
    chosen = (picked[True] + picked[False])[:n_examples]
    if chosen:
        out["examples"] = {k: np.stack(v) for k, v in zip(("s1", "water", "pred"), zip(*chosen))}
    return out


def scores(cm: np.ndarray) -> dict:
    """The numbers we report, from a global [not water, water] confusion matrix."""
    iou = metrics.iou_per_class(cm)
    f = lambda v: None if np.isnan(v) else float(v)  # noqa: E731  (JSON has no NaN)
    return {
        "water_iou": f(iou[1]), "not_water_iou": f(iou[0]), "miou": f(metrics.miou(cm)),
        "pixel_accuracy": f(metrics.pixel_accuracy(cm)),
        "water_precision": f(metrics.precision_per_class(cm)[1]),
        "water_recall": f(metrics.recall_per_class(cm)[1]),
        "labelled_pixels": int(cm.sum()), "confusion_matrix": cm.tolist(),
    }


def check_inputs(data: str, m: dict, cfg: dict) -> None:
    """InputError naming what the dataset lacks for this model, and how to fix it."""
    if "water" not in m.get("labels", []):
        raise InputError(
            f"{data} has no 'water' label (its labels: {m.get('labels', [])}); evaluation needs per-pixel "
            "water masks: build the dataset from a labelled source (e.g. Sen1Floods11 chips or the synthetic export)")
    missing = [b for b in cfg["s1_bands"] if b not in m["bands"]["s1"]]
    if missing:
        raise InputError(
            f"{data} lacks the S1 bands {missing} the model was trained on (it has {m['bands']['s1']}); "
            "evaluate on a dataset with those bands, or train a model on the bands it has")


def held_out_split(m: dict) -> tuple[str, str | None]:
    """'test', or 'val' (with a note saying so) when the dataset has no test records."""
    if count(m, "test"):
        return "test", None
    if count(m, "val"):
        return "val", "the dataset has no test records: scored on the val split instead"
    raise InputError("the dataset has no test or val records to evaluate on; rebuild it with a held-out split")


def load_split(data: str, m: dict, split: str, s1_bands: list[str]):
    """Unbatched (s1, water int8) pairs of one split, cached in memory after the first pass.

    Only one S2 band is decoded (S2 is unused here, and may lack the model's S2 bands).
    """
    from senclr.dataset_tf import make_dataset

    ds = make_dataset(data, split, s1_bands=list(s1_bands), s2_bands=m["bands"]["s2"][:1],
                      labels=("water",), manifest=m)
    return ds.map(lambda r: (r["s1"], r["water"])).cache()


def describe_split(ds, split: str) -> dict:
    """Counts of one split (one pass, which also fills the cache); InputError on mixed patch sizes."""
    patches, labelled, water, shapes = 0, 0, 0, set()
    for _, y in ds.as_numpy_iterator():
        patches += 1
        labelled += int((y >= 0).sum())
        water += int((y == 1).sum())
        shapes.add(y.shape)
    if len(shapes) > 1:
        raise InputError(f"{split} patches have different sizes {sorted(shapes)}; evaluation batches equal sizes")
    return {"patches": patches, "labelled_pixels": labelled,
            "water_fraction": water / labelled if labelled else None}


def _batches(ds, batch_size: int, n: int, shuffle_seed: int | None = None):
    """Batches for fit/evaluation; the known length spares Keras an 'ran out of data' warning."""
    import tensorflow as tf

    ds = ds.apply(tf.data.experimental.assert_cardinality(n))
    if shuffle_seed is not None:
        ds = ds.shuffle(max(1, min(n, 10_000)), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _contenders(model_dir: str, baselines: dict, seed: int) -> list[tuple[str, str, object, dict]]:
    """(key, label, S1 encoder, config) of every compared encoder: the model, each baseline
    model, and a random initialisation of the model's architecture, in report order."""
    from senclr.models.saved import load_encoder

    pretrained, cfg = load_encoder(model_dir, "s1")
    out = [("pretrained", describe(cfg), pretrained, cfg)]
    for key, other_dir in (baselines or {}).items():
        encoder, other = load_encoder(other_dir, "s1")
        if list(other["s1_bands"]) != list(cfg["s1_bands"]):
            raise InputError(f"baseline {other_dir} was trained on S1 bands {other['s1_bands']}, the model on "
                             f"{cfg['s1_bands']}; compare encoders of the same bands")
        out.append((key, describe(other), encoder, other))
    out.append(("random", "random init", _random_encoder(cfg, seed), cfg))
    return out


def compare(data: str, model_dir: str, epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH_SIZE,
            seed: int = 0, learning_rate: float = DEFAULT_LEARNING_RATE, n_examples: int = 4,
            progress: bool = True, baselines: dict[str, str] | None = None) -> dict:
    """The model's S1 encoder vs each ``baselines`` model's ({key: model dir}, e.g. a SimCLR
    run) vs a randomly initialised one, same head and budget: metrics of each.

    Everything is validated before any training; nothing is written here (see report.py).
    """
    t0 = time.perf_counter()
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise InputError(f"epochs and batch size must be >= 1 and the learning rate > 0 "
                         f"(got {epochs}, {batch_size}, {learning_rate})")
    if baselines and ({"pretrained", "random"} & set(baselines)):
        raise InputError("baseline names 'pretrained' and 'random' are taken; name the baseline differently")
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if progress else None
    m = manifest_lib.read(data, kind="dataset")
    contenders = _contenders(model_dir, baselines, seed)
    cfg = contenders[0][3]
    for *_, c in contenders:
        check_inputs(data, m, c)
    split, note = held_out_split(m)
    if not count(m, "train"):
        raise InputError(f"{data} has no train records to train the head on; rebuild it with a train split")
    results, order, scalings, info, splits = {}, [], {}, {}, {}
    for key, label, encoder, c in contenders:
        mm, scalings[key] = with_model_statistics(m, c)
        scaling = json.dumps({b: mm["statistics"][b] for b in c["s1_bands"]}, sort_keys=True)
        if scaling not in splits:  # encoders normalised alike share one cached copy of the splits
            splits[scaling] = (load_split(data, mm, "train", c["s1_bands"]), load_split(data, mm, split, c["s1_bands"]))
        train, test = splits[scaling]
        if not info:
            info = {"train": describe_split(train, "train"), "test": describe_split(test, split)}
            if not info["train"]["labelled_pixels"]:
                raise InputError(f"the train split of {data} has no labelled water pixels (all -1): the head cannot learn")
        if log:
            log(f"training the head on the {label} S1 encoder ({epochs} epochs, {info['train']['patches']} patches)")
        model, loss = train_head(encoder, _batches(train, batch_size, info["train"]["patches"], seed),
                                 epochs, learning_rate, seed, log)
        scored = evaluate_encoder(model, _batches(test, batch_size, info["test"]["patches"]), n_examples)
        results[key] = {**scored, "train_loss": loss, "label": label,
                        "method": c.get("method") if key != "random" else None}
        order.append([key, label])
    return {
        "dataset": data, "model_dir": model_dir, "baselines": dict(baselines or {}), "split": split,
        "split_note": note, **info, "s1_bands": list(cfg["s1_bands"]), "s1_scaling": scalings["pretrained"],
        "head": head_description(int(cfg.get("downsample", 2)), learning_rate),
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
        "encoder": {k: cfg.get(k) for k in ("backbone", "width", "feature_channels", "downsample")},
        "encoders": order, "examples": _examples(results, cfg["s1_bands"]),
        **results, "seconds": round(time.perf_counter() - t0, 1),
    }


def with_model_statistics(m: dict, cfg: dict) -> tuple[dict, str]:
    """The manifest with the S1 statistics the encoder was pre-trained with, when the model has them.

    The encoder learned on inputs standardised with its training dataset's statistics; scaling
    another dataset (Sen1Floods11, say) with its own would shift what the encoder sees.
    """
    stats = cfg.get("statistics") or {}
    if not all(b in stats for b in cfg["s1_bands"]):
        return m, "the evaluation dataset's S1 statistics (the model stores none)"
    merged = {**m["statistics"], **{b: stats[b] for b in cfg["s1_bands"]}}
    return {**m, "statistics": merged}, "the pre-training dataset's S1 statistics (from the model)"


def _random_encoder(cfg: dict, seed: int):
    """The baseline: the same architecture, randomly initialised with ``seed``, never trained."""
    import keras

    from senclr.models.backbones import build_backbone

    keras.utils.set_random_seed(seed)
    return build_backbone(cfg.get("backbone", "small"), len(cfg["s1_bands"]), cfg["width"], name="random_s1")


def _examples(results: dict, s1_bands: list[str]) -> dict | None:
    """Example patches for the figure (numpy): S1 VV (or the first band), truth, each prediction."""
    ex = {name: r.pop("examples", None) for name, r in results.items()}
    if ex["pretrained"] is None:
        return None
    band = s1_bands.index("VV") if "VV" in s1_bands else 0
    return {"s1": ex["pretrained"]["s1"][..., band], "s1_band": s1_bands[band], "water": ex["pretrained"]["water"],
            **{name: e["pred"] for name, e in ex.items()}}
