"""The segmentation protocol: every encoder x mode x label fraction x seed, one run record each.

- Label fractions take a seeded subset of the training chips (at least one): the same chips for
  every encoder at one (fraction, seed), other chips for another seed.
- The budget is the same for every run: ``epochs`` passes' worth of steps over the *whole* train
  split, whatever the fraction, so a 1 % run takes as many optimizer steps as a 100 % run.
- Frozen runs never recompute the encoder: its feature pyramid of every chip is computed once
  (per encoder, and per seed for the random baseline) into a float16 store, and only the
  decoder trains on it, for every fraction and seed. Fine-tuned runs train encoder and decoder
  on the normalised chips (no augmentation in either mode, so both see the same inputs).
- Scores come from one global confusion matrix per split (labels -1 ignored).
- A run whose record exists is skipped, so an interrupted evaluation resumes; a record made
  with another budget or input is refused rather than mixed into the tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

from senclr import storage
from senclr.errors import InputError
from senclr.evaluate import metrics, runs
from senclr.evaluate.chipstore import ChipStore, batches, map_store
from senclr.evaluate.contenders import Contender

DEFAULT_FRACTIONS = (0.01, 0.1, 1.0)


@dataclass(frozen=True)
class Budget:
    """What every run of one evaluation shares (docs/evaluate.md explains each)."""

    epochs: int = 20
    batch_size: int = 8
    learning_rate: float = 5e-4
    weight_decay: float = 1e-4
    decoder_width: int = 32

    def steps(self, n_train: int) -> int:
        return self.epochs * math.ceil(n_train / self.batch_size)


@dataclass
class SegData:
    """One benchmark's chips for one encoder's inputs: the train store and the scored splits."""

    benchmark: str
    class_names: list[str]
    inputs: str
    train: ChipStore
    scored: dict[str, ChipStore]
    example_split: str | None = None
    example_idx: tuple[int, ...] = ()


def check_settings(fractions, seeds: int, modes, allowed) -> None:
    """InputError for label fractions outside (0, 1], fewer than one seed, or a mode not ``allowed``."""
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad or not fractions:
        raise InputError(f"label fractions must lie in (0, 1], got {list(fractions)}; e.g. --fractions 0.01,0.1,1")
    if seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {seeds} (the protocol asks for at least 3)")
    unknown = [m for m in modes if m not in allowed]
    if unknown or not modes:
        raise InputError(f"unknown --modes {unknown or list(modes)}: use {', '.join(allowed)}")


@contextlib.contextmanager
def working_cache(cache_dir: str | None, prefix: str):
    """The user's --cache-dir (kept for a later run), or a temporary folder removed at the end."""
    if cache_dir and (storage.is_gcs(cache_dir) or os.path.isfile(cache_dir)):
        raise InputError(f"--cache-dir {cache_dir} must be a local folder (the stores are memory-mapped files)")
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        yield cache_dir
        return
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_examples(out: str, benchmark: str, figure: dict) -> None:
    """The figure's example chips (runs.py's examples.npz), beside the benchmark's runs."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **figure)
    storage.write_bytes(runs.examples_path(out, benchmark), buf.getvalue())


def subset(n: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded ``fraction`` of ``n`` chips (at least one)."""
    if not 0 < fraction <= 1:
        raise InputError(f"label fraction {fraction} is outside (0, 1]")
    k = max(1, round(fraction * n))
    return np.sort(np.random.default_rng([seed, 7919]).choice(n, k, replace=False)) if k < n else np.arange(n)


def check_existing(out: str, benchmark: str, plan, expected: dict) -> int:
    """How many runs of ``plan`` ([(contender, mode, fraction, seed)]) are recorded in ``out``;
    InputError when a record differs from ``expected`` (or from its contender's model dir):
    a rerun with other settings must not mix into the tables."""
    done = 0
    for c, m, f, s in plan:
        path = runs.record_path(out, benchmark, c.key, m, f, s)
        if not storage.exists(path):
            continue
        r = runs.read_record(path)
        differ = {k: r.get(k) for k, v in {**expected, "model_dir": c.model_dir}.items() if r.get(k) != v}
        if differ:
            raise InputError(f"{path} was made with another {', '.join(differ)} ({differ}); use another --out, or "
                             f"delete {storage.join(out, 'runs', benchmark)} to start over")
        done += 1
    return done


def _dataset(store: ChipStore, idx, batch_size: int, seed: int | None, names: list[str]):
    """tf.data of ({name: field}, label) batches from ``store`` (the label is its last field)."""
    import tensorflow as tf

    sig = tuple(tf.TensorSpec((None, *s), d) for s, d in zip(store.shapes, store.dtypes))

    def gen():
        for fields in batches(store, np.asarray(idx), batch_size, seed):
            yield fields

    def inputs(*f):
        x = [tf.cast(v, "float32") for v in f[:-1]]
        return (dict(zip(names, x)) if len(x) > 1 else x[0]), f[-1]

    return tf.data.Dataset.from_generator(gen, output_signature=sig).map(inputs).prefetch(2)


def _feature_stores(c: Contender, seed: int, images: dict[str, ChipStore], cache_dir: str,
                    batch_size: int) -> tuple[dict[str, ChipStore], float | None]:
    """The frozen encoder's pyramid of every chip of every store in ``images`` (float16, with
    the labels), and the seconds spent computing it (None when all were cached already)."""
    from senclr.evaluate.decoder import pyramid

    ident = [c.key, c.model_dir, c.kind, seed if c.kind != "pretrained" else None]
    if c.model_dir:
        ident.append(storage.read_text(storage.join(c.model_dir, "config.json")))
    folders = {k: os.path.join(cache_dir, "features-" + hashlib.sha256(repr(ident + [im.folder]).encode()).hexdigest()[:16])
               for k, im in images.items()}
    out = {k: ChipStore.open(f) for k, f in folders.items()}
    if all(out.values()):
        return out, None
    t0 = time.perf_counter()
    model = pyramid(c.encoders(seed), c.backbone)
    model.trainable = False
    for k, image in images.items():
        out[k] = out[k] or _features(model, image, folders[k], batch_size)
    return out, time.perf_counter() - t0


def _features(model, image: ChipStore, folder: str, batch_size: int) -> ChipStore:
    """The frozen pyramid of every chip, float16 (clipped to its range), with the labels."""
    def levels(x):
        feats = model(x, training=False)
        return [np.clip(f, -65000, 65000) for f in (feats if isinstance(feats, (list, tuple)) else [feats])]

    return map_store(levels, image, folder, batch_size, "float16")


def _compile(model, budget: Budget, steps: int):
    import keras

    from senclr.evaluate.segmentation import masked_sparse_ce

    lr = keras.optimizers.schedules.CosineDecay(budget.learning_rate, decay_steps=max(steps, 1))
    model.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=budget.weight_decay), loss=masked_sparse_ce,
                  jit_compile=False)


def _score(model, store: ChipStore, names, n_classes: int, batch_size: int, keep=()) -> tuple[dict, np.ndarray | None]:
    """Split metrics from one global confusion matrix; predictions of the chips in ``keep``."""
    acc, kept, done = metrics.ConfusionMatrix(n_classes), {}, 0
    for x, y in _dataset(store, np.arange(store.n), batch_size, None, names):
        pred = np.argmax(np.asarray(model(x, training=False)), axis=-1).astype(np.int16)
        y = np.asarray(y)
        acc.update(y, pred)
        for j in range(len(y)):
            if done + j in keep:
                kept[done + j] = pred[j]
        done += len(y)
    cm = acc.result()
    iou = metrics.iou_per_class(cm)
    clean = lambda v: None if np.isnan(v) else float(v)  # noqa: E731  (JSON has no NaN)
    out = {"items": store.n, "labelled_pixels": int(cm.sum()), "confusion_matrix": cm.tolist(),
           "iou": [clean(v) for v in iou], "miou": clean(metrics.miou(cm)), "accuracy": clean(metrics.pixel_accuracy(cm))}
    preds = np.stack([kept[i] for i in sorted(kept)]) if kept else None
    return out, preds


def head_description(mode: str, budget: Budget) -> str:
    what = ("decoder on features cached from the frozen encoder (inference-mode batch norm)" if mode == "frozen"
            else "encoder and decoder trained together")
    return (f"U-Net-style decoder over the encoder's feature pyramid (width {budget.decoder_width}), {what}; "
            f"AdamW lr {budget.learning_rate:g} (cosine decay), weight decay {budget.weight_decay:g}, "
            "cross-entropy ignoring no-data pixels")


class Runner:
    """Runs (or skips, when recorded) every planned run of one benchmark and writes its record."""

    def __init__(self, out: str, budget: Budget, fractions, seeds, modes, progress: bool = True):
        self.out, self.cache_dir, self.budget = out, "", budget  # cache_dir: set before run
        self.fractions, self.seeds, self.modes = sorted(fractions), list(seeds), list(modes)
        self.log = (lambda s: print(s, file=sys.stderr, flush=True)) if progress else (lambda s: None)
        self.progress = progress
        self.feature_seconds: dict = {}  # (encoder, seed or None) -> seconds of its one feature pass

    def plan(self, contenders: list[Contender]) -> list[tuple[Contender, str, float, int]]:
        return [(c, m, f, s) for c in contenders for m in (c.modes or self.modes) for f in self.fractions
                for s in self.seeds]

    def check_existing(self, benchmark: str, inputs: str, plan) -> int:
        """How many planned runs are recorded already; InputError when one was made differently."""
        return check_existing(self.out, benchmark, plan, {"budget": asdict(self.budget), "input": inputs})

    def run(self, data_for, contenders: list[Contender]) -> list[dict]:
        """``data_for(contender) -> SegData``; returns every record of the plan (new and found)."""
        from tqdm import tqdm

        first = data_for(contenders[0])
        plan = self.plan(contenders)
        skipped = self.check_existing(first.benchmark, first.inputs, plan)
        if skipped:
            self.log(f"{skipped} of {len(plan)} runs are recorded in {self.out} already: skipping them")
        bar = tqdm(total=len(plan), desc=f"{first.benchmark} runs", unit="run", disable=not self.progress)
        records = []
        with bar:
            for c in contenders:
                data = data_for(c)
                for m in c.modes or self.modes:
                    for f in self.fractions:
                        for s in self.seeds:
                            bar.set_postfix_str(f"{c.key} {m} {f:g} seed {s}")
                            records.append(self._one(data, c, m, f, s))
                            bar.update(1)
        return records

    def _one(self, data: SegData, c: Contender, mode: str, fraction: float, seed: int) -> dict:
        path = runs.record_path(self.out, data.benchmark, c.key, mode, fraction, seed)
        if storage.exists(path):
            return runs.read_record(path)
        import keras

        t0 = time.perf_counter()
        idx = subset(data.train.n, fraction, seed)
        steps = self.budget.steps(data.train.n)
        n_classes, bs = len(data.class_names), self.budget.batch_size
        if mode == "frozen":
            stores, spent = _feature_stores(c, seed, {"train": data.train, **data.scored}, self.cache_dir, bs)
            if spent is not None:
                self.feature_seconds[(c.key, seed if c.kind != "pretrained" else None)] = round(spent, 2)
            from senclr.evaluate.decoder import decoder_model

            train = stores["train"]
            names = [f"level{i}" for i in range(len(train.shapes) - 1)]
            keras.utils.set_random_seed(seed)
            model = decoder_model([s[-1] for s in train.shapes[:-1]], train.shapes[-1], n_classes,
                                  self.budget.decoder_width)
        else:
            from senclr.evaluate.decoder import pyramid, segmenter

            stores = {"train": data.train, **data.scored}
            names = ["image"]
            encoders = c.encoders(seed)
            keras.utils.set_random_seed(seed)
            model = segmenter(pyramid(encoders, c.backbone), n_classes, "finetune", self.budget.decoder_width)
        t1 = time.perf_counter()
        _compile(model, self.budget, steps)
        per_epoch = math.ceil(data.train.n / bs)
        model.fit(_dataset(stores["train"], idx, bs, seed, names), steps_per_epoch=per_epoch,
                  epochs=self.budget.epochs, verbose=0, shuffle=False)
        t2 = time.perf_counter()
        keep = set(data.example_idx)
        splits, preds = {}, None
        for name in data.scored:
            splits[name], p = _score(model, stores[name], names, n_classes, bs,
                                     keep if name == data.example_split else ())
            if name == data.example_split:
                preds = p
            if list(data.class_names) == ["not water", "water"]:  # water masks: the class that matters
                splits[name]["water_iou"] = splits[name]["iou"][data.class_names.index("water")]
        record = {
            "schema": 1, "benchmark": data.benchmark, "task": "segmentation", "encoder": c.key, "label": c.label,
            "kind": c.kind, "model_dir": c.model_dir, "input": data.inputs, "bands": list(c.bands), "mode": mode,
            "fraction": fraction, "seed": seed, "train_items": int(len(idx)), "budget": asdict(self.budget),
            "steps": steps, "head": head_description(mode, self.budget), "class_names": list(data.class_names),
            "splits": splits,
            "seconds": {"setup": round(t1 - t0, 2), "train": round(t2 - t1, 2), "score": round(time.perf_counter() - t2, 2)},
        }
        if mode == "frozen":  # the one encoder pass every frozen run of this encoder reuses
            record["seconds"]["features_once"] = self.feature_seconds.get((c.key, seed if c.kind != "pretrained" else None))
        path = runs.write_record(self.out, record)
        if preds is not None and fraction == self.fractions[-1] and seed == min(self.seeds):
            buf = io.BytesIO()
            np.savez_compressed(buf, pred=preds)
            storage.write_bytes(runs.pred_path(path), buf.getvalue())
        keras.backend.clear_session(free_memory=True)
        return record
