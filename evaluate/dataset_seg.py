"""Segmentation on a dataset senclr built (``senclr export`` -> ``senclr preprocess``) with a label.

The same protocol and decoder as Sen1Floods11, on a label band of our own export: the
land-cover map (``landcover``: class index, 255 no data) or ``water`` (-1 no data). The
``train`` split trains, ``val`` and ``test`` are scored with mIoU and per-class IoU. Inputs are
normalised with the statistics the model was pre-trained with where it has them, else with the
dataset's own (its manifest).
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.bands import LANDCOVER_CLASSES
from senclr.label_bands import CLASS_MAPS, CLASS_NODATA
from senclr.dataset import count, iter_records
from senclr.errors import InputError
from senclr.evaluate.chipstore import ChipStore
from senclr.evaluate.contenders import Contender, resolve
from senclr.evaluate.decoder import MODES
from senclr.evaluate.protocol import Budget, Runner, SegData, check_settings, working_cache, write_examples
from senclr.normalize import VERSION as normalize_version
from senclr.normalize import apply, band_params

BENCHMARK = "dataset"
SCORED = ("val", "test")
NODATA = {"landcover": 255, "water": -1, **{name: CLASS_NODATA for name in CLASS_MAPS}}
N_EXAMPLES = 4


def class_names(m: dict, label: str) -> list[str]:
    """Names of the label's classes: the manifest's when it lists them, else senclr's own."""
    named = (m.get("label_classes") or {}).get(label)
    if named:
        return list(named)
    if label in CLASS_MAPS:
        return list(CLASS_MAPS[label].classes)
    return list(LANDCOVER_CLASSES) if label == "landcover" else ["not water", "water"]


def check_dataset(data: str, m: dict, label: str, contenders: list[Contender]) -> None:
    if label not in m.get("labels", []):
        raise InputError(f"{data} has no {label!r} label (its labels: {m.get('labels', [])}); export with a label "
                         "band (the synthetic source has water and landcover; `senclr export --labels "
                         "worldcover,dynamicworld` adds Earth Engine's) and run `senclr preprocess` again")
    if not count(m, "train"):
        raise InputError(f"{data} has no train records to train the decoder on; rebuild it with a train split")
    if not any(count(m, s) for s in SCORED):
        raise InputError(f"{data} has no val or test records to score; rebuild it with held-out splits")
    have = set(m["bands"]["s1"]) | set(m["bands"]["s2"])
    for c in contenders:
        missing = [b for b in c.bands if b not in have]
        if missing:
            raise InputError(f"{c.key} reads bands {missing} that {data} lacks (it has {sorted(have)}); "
                             "evaluate on a dataset with those bands")
        if c.kind == "pretrained":
            c.encoders()


def _labels(rec: dict, label: str, n_classes: int, where: str) -> np.ndarray:
    y = rec[label].astype(np.int16)
    y[y == NODATA[label]] = -1
    if (y >= n_classes).any():
        raise InputError(f"{where}: {label} holds class ids up to {int(y.max())} but {n_classes} classes are named")
    return y.astype(np.int8)


def _store(data: str, m: dict, split: str, label: str, n_classes: int, bands, stats: dict, cache_dir: str) -> ChipStore:
    s1 = [b for b in bands if b in m["bands"]["s1"]]
    s2 = [b for b in bands if b not in s1]
    key = hashlib.sha256(json.dumps([data, split, label, list(bands), stats, normalize_version],
                                    sort_keys=True).encode()).hexdigest()[:16]
    folder = os.path.join(cache_dir, f"dataset-{split}-{key}")
    store = ChipStore.open(folder)
    if store is not None:
        return store
    p = band_params(stats, list(bands))
    order = [(s1 + s2).index(b) for b in bands]  # the readers give S1 then S2; the encoder wants ``bands``
    n, store = count(m, split), None
    for i, rec in enumerate(iter_records(data, split, s1_bands=s1, s2_bands=s2)):
        x = np.concatenate([rec["s1"].astype(np.float32), rec["s2"].astype(np.float32)], axis=-1)[..., order]
        if store is None:
            store = ChipStore.create(folder, n, [x.shape, x.shape[:2]], ["float16", "int8"])
        if x.shape != store.shapes[0]:
            raise InputError(f"{data} mixes patch sizes ({x.shape[:2]} and {store.shapes[0][:2]}); the decoder "
                             "batches equal sizes")
        store.put(i, np.nan_to_num(apply(x, p), nan=0.0).astype(np.float16),
                  _labels(rec, label, n_classes, f"{data} {split} record {rec['pair_id']}"))
    return store.finish()


def _examples(data: str, m: dict, split: str, label: str) -> tuple[list[int], dict]:
    """The first test patches showing the most classes: S1 VV, S2 true colour, truth."""
    from senclr.evaluate.flood_inputs import stretch

    rgb = [b for b in ("B4", "B3", "B2") if b in m["bands"]["s2"]]
    seen = []
    for i, rec in enumerate(iter_records(data, split)):
        seen.append((-len(np.unique(rec[label])), i))
    idx = sorted(i for _, i in sorted(seen)[:N_EXAMPLES])
    recs = [r for i, r in enumerate(iter_records(data, split, s2_bands=rgb or None)) if i in idx]
    vv = m["bands"]["s1"].index("VV") if "VV" in m["bands"]["s1"] else 0
    out = {"s1": np.stack([r["s1"][..., vv] for r in recs]).astype(np.float32),
           "truth": np.stack([np.where(r[label] == NODATA[label], -1, r[label]) for r in recs]).astype(np.int16),
           "stems": np.array([r["pair_id"] for r in recs])}
    if len(rgb) == 3:
        out["s2_rgb"] = np.stack([stretch(r["s2"].astype(np.float32)) for r in recs])
    return idx, out


def evaluate_dataset(data: str, models: dict[str, str], out: str, label: str = "landcover", inputs: str = "s1",
                     modes=MODES, fractions=(0.01, 0.1, 1.0), seeds: int = 3, budget: Budget = Budget(),
                     cache_dir: str | None = None, progress: bool = True) -> list[dict]:
    """Run (or resume) the protocol on ``data``'s ``label`` into ``out``/runs; returns every record."""
    check_settings(fractions, seeds, modes, MODES)
    if label not in NODATA:
        raise InputError(f"unknown --label {label!r}: use one of {', '.join(NODATA)}")
    storage.refuse_file(out, "--out")
    m = manifest_lib.read(data, kind="dataset")
    contenders = resolve(models, inputs)
    check_dataset(data, m, label, contenders)
    names = class_names(m, label)
    scored = [s for s in SCORED if count(m, s)]
    runner = Runner(out, budget, fractions, range(seeds), modes, progress)
    runner.check_existing(BENCHMARK, inputs, runner.plan(contenders))
    idx, figure = _examples(data, m, scored[-1], label)
    with working_cache(cache_dir, "senclr-dataset-") as runner.cache_dir:

        def data_for(c: Contender) -> SegData:
            stats = {b: c.statistics.get(b) or m["statistics"][b] for b in c.bands}
            store = lambda s: _store(data, m, s, label, len(names), c.bands, stats, runner.cache_dir)  # noqa: E731
            return SegData(BENCHMARK, names, inputs, store("train"), {s: store(s) for s in scored}, scored[-1],
                           tuple(idx))

        data_for(contenders[0])  # reads every record: a bad one stops the run before anything is written
        write_examples(out, BENCHMARK, figure)
        return runner.run(data_for, contenders)
