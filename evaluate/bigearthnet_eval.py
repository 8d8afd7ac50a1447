"""BigEarthNet multi-label land cover: a linear probe and fine-tuning, every encoder x fraction x seed.

The linear probe reads out what the frozen representation already separates (the usual
self-supervised read-out on BigEarthNet); fine-tuning measures how good a starting point the
weights are. Both follow the segmentation protocol (``senclr.evaluate.protocol``):

- a seeded subset of the train patches per (fraction, seed), the same for every encoder;
- one budget for every run: ``epochs`` passes' worth of steps over the *whole* train split,
  whatever the fraction; AdamW with cosine decay; sigmoid cross-entropy over the 19 classes;
- linear probe: the frozen encoder's globally average-pooled final feature map of every patch is
  computed once (per encoder, and per seed for the random baseline) into a float32 store, and
  only the linear head trains on it; fine-tuning trains encoder, pooling and Dense(19) end to end
  on the normalised patches (no augmentation in either mode, so both see the same inputs);
- val and test are scored from sigmoid probabilities: micro/macro mAP and F1
  (``senclr.evaluate.multilabel``);
- a recorded run is skipped (an interrupted evaluation resumes); a record made with another
  budget, input, model, dataset version or ``limit`` is refused rather than mixed into the tables.

Inputs are normalised with the statistics the model was pre-trained with where it has them, else
with those of a seeded sample of train patches. Normalised patches sit in float16 stores on
local disk, 28.8 KB per patch and band: mind the disk for the full splits (v2 has ~480k
patches), or try the protocol first with ``limit``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from senclr import storage
from senclr.errors import InputError
from senclr.evaluate import bigearthnet as ben
from senclr.evaluate import runs
from senclr.evaluate.bigearthnet_labels import CLASS_NAMES_19, NUM_CLASSES
from senclr.evaluate.bigearthnet_inputs import digest, patch_store, statistics_for
from senclr.evaluate.chipstore import ChipStore, batches, map_store
from senclr.evaluate.contenders import Contender, resolve
from senclr.evaluate.multilabel import multilabel_metrics
from senclr.evaluate import protocol
from senclr.evaluate.protocol import Budget, subset

BENCHMARK = "bigearthnet"
MODES = ("linear", "finetune")
VERSIONS = ("v1", "v2")
SCORED = ("val", "test")
HEADS = {"linear": "linear probe: BatchNorm (no scale or centre) + Dense(19) on the frozen encoder's pooled features",
         "finetune": "encoder + global average pooling + Dense(19), trained end to end"}
_MODE_OF_BASELINE = {"frozen": "linear"}  # contenders name the random baseline's mode "frozen"


# ---------------------------------------------------------------- checks, all before any work


def check_settings(fractions, seeds: int, modes, limit: int | None) -> None:
    protocol.check_settings(fractions, seeds, modes, MODES)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1 patches per split, got {limit}")


def open_dataset(version: str, root: str | None, inputs: str, splits_dir: str | None = None,
                 root_s1: str | None = None) -> ben.BigEarthNetV1 | ben.BigEarthNetV2:
    """The loader of ``version``; InputError for a root or flag the version does not use."""
    if version not in VERSIONS:
        raise InputError(f"unknown BigEarthNet version {version!r}: use v1 (BigEarthNet-S1/S2 v1.0) or v2 (reBEN)")
    ben.channels(inputs)  # a known --input
    if version == "v2":
        if root_s1 is not None or splits_dir is not None:
            raise InputError("--s1-root and --splits-dir are for v1: a v2 (reBEN) root holds BigEarthNet-S1/, "
                             "BigEarthNet-S2/ and metadata.parquet (the splits)")
        if root is None:
            raise InputError(f"give --data, the BigEarthNet v2 root ({ben.V2_LAYOUT})")
        return ben.BigEarthNetV2(root)
    if splits_dir is None:
        raise InputError("BigEarthNet v1 needs --splits-dir, the folder of train.csv, val.csv and test.csv "
                         "(and the cloud/snow lists)")
    for sensor, path, flag in (("s2", root, "--data (the BigEarthNet-S2 root)"), ("s1", root_s1, "--s1-root")):
        if sensor in inputs and path is None:
            raise InputError(f"--input {inputs} reads {sensor.upper()} patches: give {flag}")
    return ben.BigEarthNetV1(root, root_s1 if "s1" in inputs else None, splits_dir=splits_dir)


def list_splits(ds, inputs: str, limit: int | None) -> dict[str, list[dict]]:
    """The first ``limit`` patches of train, val and test (all when None); an empty scored split is left out."""
    listed = {s: ds.list_patches(s, inputs)[:limit] for s in ("train", *SCORED)}
    if not listed["train"]:
        raise InputError("the BigEarthNet train split lists no patches: nothing to train the heads on")
    if not any(listed[s] for s in SCORED):
        raise InputError("the BigEarthNet val and test splits list no patches: nothing to score")
    return {s: p for s, p in listed.items() if p}


def check_bands(contenders: list[Contender], inputs: str) -> None:
    """Every encoder's bands are in the patches, and every model's encoders load."""
    have = ben.channels(inputs)
    for c in contenders:
        missing = [b for b in c.bands if b not in have]
        if missing:
            l2a = "; B10 is not in the L2A patches" if "B10" in missing else ""
            raise InputError(f"{c.key} reads bands {missing} that BigEarthNet patches lack (with --input {inputs} "
                             f"they have {', '.join(have)}{l2a}); evaluate a model trained on those bands")
        if c.kind == "pretrained":
            c.encoders()


def modes_of(c: Contender, modes: Sequence[str]) -> list[str]:
    """The requested modes, or the one a baseline runs in (random: linear; scratch: finetune)."""
    return [_MODE_OF_BASELINE.get(m, m) for m in c.modes] if c.modes else list(modes)


@dataclass(frozen=True)
class Settings:
    """What every record of one evaluation shares, and a rerun must match."""

    out: str
    version: str
    inputs: str
    budget: Budget
    limit: int | None
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    modes: tuple[str, ...]

    def plan(self, contenders: list[Contender]) -> list[tuple[Contender, str, float, int]]:
        return [(c, m, f, s) for c in contenders for m in modes_of(c, self.modes) for f in self.fractions
                for s in self.seeds]

    def path(self, c: Contender, mode: str, fraction: float, seed: int) -> str:
        return runs.record_path(self.out, BENCHMARK, c.key, mode, fraction, seed)


def check_existing(settings: Settings, plan) -> int:
    """How many planned runs are recorded already; InputError when one was made differently."""
    return protocol.check_existing(settings.out, BENCHMARK, plan,
                                   {"budget": asdict(settings.budget), "input": settings.inputs,
                                    "version": settings.version, "limit": settings.limit})


# ---------------------------------------------------------------- models


def embedder(encoders: list, name: str = "embedder"):
    """[B, H, W, C] -> [B, D]: each encoder reads its channels (in order), its final feature map is
    globally average-pooled, and the pooled vectors of several encoders are concatenated."""
    import keras
    from keras import layers

    from senclr.evaluate.decoder import Channels

    sizes = [e.input_shape[-1] for e in encoders]
    x = keras.Input((None, None, sum(sizes)), name="image")
    pooled, start = [], 0
    for i, (enc, c) in enumerate(zip(encoders, sizes)):
        part = x if len(encoders) == 1 else Channels(start, start + c, name=f"bands{i}")(x)
        pooled.append(layers.GlobalAveragePooling2D(name=f"pool{i}")(enc(part)))
        start += c
    out = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="fuse")(pooled)
    return keras.Model(x, out, name=name)


def linear_head(dim: int):
    """BatchNorm without scale or centre, then Dense(19) logits.

    As in SimCLR's linear evaluation: the affine-free batch norm standardises the features, whose
    scale differs widely between encoders (a random init against a trained one), so one learning
    rate suits them all; it has no parameters of its own and folds into the Dense layer at
    inference, so the probe stays linear."""
    import keras
    from keras import layers

    from senclr.models.encoders import BN_MOMENTUM

    x = keras.Input((dim,), name="features")
    y = layers.BatchNormalization(center=False, scale=False, momentum=BN_MOMENTUM, name="standardise")(x)
    return keras.Model(x, layers.Dense(NUM_CLASSES, dtype="float32", name="logits")(y), name="linear_probe")


def classifier(features):
    """Encoder(s) + pooling (``embedder``) + Dense(19) logits, all trainable."""
    import keras
    from keras import layers

    features.trainable = True
    x = keras.Input((None, None, features.input_shape[-1]), name="image")
    return keras.Model(x, layers.Dense(NUM_CLASSES, dtype="float32", name="logits")(features(x)), name="classifier")


def compile_multilabel(model, budget: Budget, steps: int) -> None:
    """AdamW with cosine decay over ``steps``, sigmoid cross-entropy on the logits."""
    import keras

    lr = keras.optimizers.schedules.CosineDecay(budget.learning_rate, decay_steps=max(steps, 1))
    model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=budget.weight_decay),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=False)


def dataset(store: ChipStore, idx: np.ndarray, batch_size: int, seed: int):
    """Endless, reshuffled tf.data of (input float32, labels float32) batches of items ``idx``."""
    import tensorflow as tf

    sig = tuple(tf.TensorSpec((None, *s), d) for s, d in zip(store.shapes, store.dtypes))
    ds = tf.data.Dataset.from_generator(lambda: batches(store, np.asarray(idx), batch_size, seed), output_signature=sig)
    return ds.map(lambda x, y: (tf.cast(x, "float32"), tf.cast(y, "float32"))).prefetch(2)


def fit(model, store: ChipStore, idx: np.ndarray, budget: Budget, n_train: int, seed: int) -> None:
    """``budget.epochs`` x ceil(n_train / batch size) steps, whatever ``len(idx)``."""
    per_epoch = math.ceil(n_train / budget.batch_size)
    model.fit(dataset(store, idx, budget.batch_size, seed), steps_per_epoch=per_epoch, epochs=budget.epochs,
              verbose=0, shuffle=False)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z.astype(np.float64)))  # no overflow for large |z|


def score(model, store: ChipStore, batch_size: int) -> dict:
    """Multi-label metrics of the model's sigmoid probabilities on every item of ``store``."""
    probs, truth = [], []
    for x, y in batches(store, np.arange(store.n), batch_size):
        probs.append(_sigmoid(np.asarray(model(x.astype(np.float32), training=False))))
        truth.append(y)
    return {**multilabel_metrics(np.concatenate(truth), np.concatenate(probs)), "items": store.n}


def features(model, image: ChipStore, folder: str, batch_size: int) -> ChipStore:
    """(pooled features float32 [D], labels uint8 [19]) of every patch of ``image``, in ``folder``."""
    return map_store(lambda x: [model(x, training=False)], image, folder, batch_size, "float32")


# ---------------------------------------------------------------- the runs


def _own_seed(c: Contender, seed: int) -> int | None:
    """The seed an encoder's weights depend on: a baseline's init seed; None for a trained model."""
    return seed if c.kind != "pretrained" else None


class _Evaluation:
    """Patch stores per (bands, statistics), feature stores per (encoder, seed), one record per run."""

    def __init__(self, ds, patches: dict[str, list[dict]], settings: Settings, cache_dir: str, source: list,
                 progress: bool):
        self.ds, self.patches, self.s, self.cache_dir = ds, patches, settings, cache_dir
        self.source, self.progress = source, progress
        self.scored = [k for k in SCORED if k in patches]
        self.images: dict[str, dict[str, ChipStore]] = {}
        self.feature_seconds: dict = {}  # (encoder, seed or None) -> seconds of its one feature pass

    def image_stores(self, c: Contender) -> dict[str, ChipStore]:
        """Normalised patches of every split; encoders of the same bands and statistics share them."""
        given = digest(list(c.bands), {b: c.statistics.get(b) for b in c.bands})
        if given not in self.images:
            stats = statistics_for(self.ds, self.patches["train"], c)
            key = digest(self.source, list(c.bands), stats)
            self.images[given] = {
                split: patch_store(self.ds, patches, c.bands, stats,
                                   os.path.join(self.cache_dir, f"bigearthnet-{split}-{key}"), split, self.progress)
                for split, patches in self.patches.items()}
        return self.images[given]

    def feature_stores(self, c: Contender, seed: int, images: dict[str, ChipStore]) -> dict[str, ChipStore]:
        """The frozen encoder's pooled features of every split, computed once and cached."""
        ident = [c.key, c.model_dir, c.kind, _own_seed(c, seed)]
        if c.model_dir:
            ident.append(storage.read_text(storage.join(c.model_dir, "config.json")))
        folders = {k: os.path.join(self.cache_dir, f"features-{k}-{digest(ident, im.folder)}")
                   for k, im in images.items()}
        out = {k: ChipStore.open(f) for k, f in folders.items()}
        if all(out.values()):
            return out
        t0 = time.perf_counter()
        model = embedder(c.encoders(seed))
        model.trainable = False
        for k, image in images.items():
            out[k] = out[k] or features(model, image, folders[k], self.s.budget.batch_size)
        self.feature_seconds[(c.key, _own_seed(c, seed))] = round(time.perf_counter() - t0, 2)
        return out

    def run(self, c: Contender, mode: str, fraction: float, seed: int) -> dict:
        path = self.s.path(c, mode, fraction, seed)
        if storage.exists(path):
            return runs.read_record(path)
        import keras

        t0 = time.perf_counter()
        budget, images = self.s.budget, self.image_stores(c)
        n_train = images["train"].n
        idx, steps = subset(n_train, fraction, seed), budget.steps(n_train)
        if mode == "linear":
            stores = self.feature_stores(c, seed, images)
            keras.utils.set_random_seed(seed)
            model = linear_head(stores["train"].shapes[0][0])
        else:
            stores = images
            encoders = c.encoders(seed)
            keras.utils.set_random_seed(seed)
            model = classifier(embedder(encoders))
        t1 = time.perf_counter()
        compile_multilabel(model, budget, steps)
        fit(model, stores["train"], idx, budget, n_train, seed)
        t2 = time.perf_counter()
        splits = {k: score(model, stores[k], budget.batch_size) for k in self.scored}
        record = {
            "schema": runs.SCHEMA, "benchmark": BENCHMARK, "task": "multilabel", "encoder": c.key, "label": c.label,
            "kind": c.kind, "model_dir": c.model_dir, "input": self.s.inputs, "bands": list(c.bands), "mode": mode,
            "fraction": fraction, "seed": seed, "train_items": int(len(idx)), "budget": asdict(budget),
            "steps": steps, "head": HEADS[mode], "class_names": list(CLASS_NAMES_19), "splits": splits,
            "version": self.s.version, "limit": self.s.limit,
            "seconds": {"setup": round(t1 - t0, 2), "train": round(t2 - t1, 2),
                        "score": round(time.perf_counter() - t2, 2)},
        }
        if mode == "linear":  # the one encoder pass every linear run of this encoder reuses
            record["seconds"]["features_once"] = self.feature_seconds.get((c.key, _own_seed(c, seed)))
        runs.write_record(self.s.out, record)
        keras.backend.clear_session(free_memory=True)
        return record


def evaluate_bigearthnet(root: str | None, models: dict[str, str], out: str, version: str = "v2", inputs: str = "s2",
                         modes: Sequence[str] = MODES, fractions: Sequence[float] = (0.01, 0.1, 1.0), seeds: int = 3,
                         budget: Budget = Budget(), splits_dir: str | None = None, root_s1: str | None = None,
                         limit: int | None = None, cache_dir: str | None = None, progress: bool = True) -> list[dict]:
    """Run (or resume) the protocol into ``out``/runs; returns every run record of the plan.

    ``root`` is the v2 (reBEN) root, or for v1 the BigEarthNet-S2 root (``root_s1`` the S1 one,
    ``splits_dir`` the split CSVs). ``limit`` keeps the first N patches of each split: for quick
    trials of the whole chain, recorded in every record (a rerun must use the same).
    Everything is checked before anything is written; the cache of normalised patches and
    features goes to a temporary folder removed at the end, unless ``cache_dir`` keeps it.
    """
    from tqdm import tqdm

    check_settings(fractions, seeds, modes, limit)
    storage.refuse_file(out, "--out")
    ds = open_dataset(version, root, inputs, splits_dir, root_s1)
    patches = list_splits(ds, inputs, limit)
    contenders = resolve(models, inputs)
    check_bands(contenders, inputs)
    settings = Settings(out, version, inputs, budget, limit, tuple(sorted({float(f) for f in fractions})),
                        tuple(range(seeds)), tuple(modes))
    plan = settings.plan(contenders)
    done = check_existing(settings, plan)
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    if done:
        log(f"{done} of {len(plan)} runs are recorded in {out} already: skipping them")
    if done == len(plan):
        return [runs.read_record(settings.path(*p)) for p in plan]
    source = [version, *(os.path.abspath(p) if p and "://" not in p else p for p in (root, root_s1, splits_dir)),
              inputs, limit]
    with protocol.working_cache(cache_dir, "senclr-bigearthnet-") as cache_dir:
        ev = _Evaluation(ds, patches, settings, cache_dir, source, progress)
        records = []
        with tqdm(total=len(plan), desc=f"{BENCHMARK} runs", unit="run", disable=not progress) as bar:
            for c, m, f, s in plan:
                bar.set_postfix_str(f"{c.key} {m} {f:g} seed {s}")
                records.append(ev.run(c, m, f, s))
                bar.update(1)
        return records
