"""Run records: one JSON file per evaluation run, so a long sweep can stop and resume and the
report can be rebuilt from what was measured, without rerunning anything.

One run is one encoder x one mode x one label fraction x one seed on one benchmark, at::

    OUT/runs/<benchmark>/<encoder>/<mode>/frac<fraction>_seed<seed>.json

(``<fraction>`` as ``format(fraction, "g")``: ``frac0.01_seed2.json``, ``frac1_seed0.json``).
Keys (those marked * are required; undefined numbers are ``null``, never NaN)::

    schema*       1
    benchmark*    "sen1floods11" | "bigearthnet" | "dataset" (own export, land cover)
    task*         "segmentation" | "multilabel"
    encoder*      contender key, unique within a benchmark (a folder name)
    label*        human name for tables and legends, e.g. "multimodal S1/S2 (senclr), resnet50"
    kind*         "pretrained" | "random" (random init, frozen) | "scratch" (supervised from scratch)
    model_dir     the encoder's model folder; null for random and scratch
    input*        "s1" | "s2" | "s1s2"
    mode*         "frozen" | "finetune" (segmentation); "linear" | "finetune" (multilabel)
    fraction*     label fraction, e.g. 0.1
    seed*         int
    train_items*  training chips/patches actually used (the seeded subset)
    budget*       {"steps": 400, "batch_size": 8, "learning_rate": 0.0005}
    head          optional one-line description of the head, shown in the report
    class_names*  class names, in class-id order
    splits*       {split name: split metrics}; sen1floods11 has valid, test, bolivia
    seconds       {"features": 12.3, "train": 40.1, "score": 3.2}

Split metrics, segmentation: ``items``, ``labelled_pixels``, ``confusion_matrix`` (rows truth),
``iou`` (per class), ``miou``, ``accuracy``, and ``water_iou`` on flood benchmarks.
Multilabel: ``items``, ``micro_map``, ``macro_map``, ``micro_f1``, ``macro_f1``, and per class
``per_class_ap``, ``per_class_f1``, ``positives``.

Figure inputs (segmentation, optional): ``OUT/runs/<benchmark>/examples.npz`` holds ``s1``
float32 [k,H,W] (VV dB, NaN allowed), ``s2_rgb`` uint8 [k,H,W,3] (optional), ``truth`` int16
[k,H,W] (-1 no data) and ``stems`` [k]; beside each record, ``frac<f>_seed<s>.pred.npz`` holds
``pred`` int16 [k,H,W] for the same chips in the same order.
"""

from __future__ import annotations

import json
import math

import numpy as np

from senclr import storage
from senclr.errors import InputError

SCHEMA = 1
REQUIRED = ("schema", "benchmark", "task", "encoder", "label", "kind", "input", "mode", "fraction", "seed",
            "train_items", "budget", "class_names", "splits")
KINDS = ("pretrained", "random", "scratch")
FLOOD_BENCHMARKS = ("sen1floods11",)


def record_path(out: str, benchmark: str, encoder: str, mode: str, fraction: float, seed: int) -> str:
    return storage.join(out, "runs", benchmark, encoder, mode, f"frac{format(fraction, 'g')}_seed{seed}.json")


def pred_path(record_path: str) -> str:
    """The predictions file that sits beside a run record."""
    return record_path.removesuffix(".json") + ".pred.npz"


def examples_path(out: str, benchmark: str) -> str:
    return storage.join(out, "runs", benchmark, "examples.npz")


def _plain(obj):
    """JSON-safe copy: numpy values become Python ones and NaN/inf become null (NaN is not JSON)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj) -> str:
    """JSON text (indent 2, sorted keys) of records or summaries, with NaN written as null."""
    return json.dumps(_plain(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"


def missing_keys(record: dict) -> list[str]:
    return [k for k in REQUIRED if k not in record]


def write_record(out: str, record: dict) -> str:
    """Validate and write one run record atomically; returns its path."""
    missing = missing_keys(record)
    if missing:
        raise ValueError(f"run record lacks required keys: {', '.join(missing)}")
    if record["kind"] not in KINDS:
        raise ValueError(f"run record kind {record['kind']!r} is not one of {', '.join(KINDS)}")
    path = record_path(out, record["benchmark"], record["encoder"], record["mode"], record["fraction"], record["seed"])
    storage.write_text(path, dumps(record))
    return path


def read_record(path: str) -> dict:
    """One record; a file that is not a complete record is an InputError the user can act on."""
    try:
        record = json.loads(storage.read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"run record {path} is corrupt ({e}): delete it and rerun that evaluation") from None
    missing = missing_keys(record) if isinstance(record, dict) else list(REQUIRED)
    if missing:
        raise InputError(f"run record {path} lacks {', '.join(missing)}: delete it and rerun that evaluation")
    return record


def has_record(out: str, benchmark: str, encoder: str, mode: str, fraction: float, seed: int) -> bool:
    """True when that run finished (records are written whole, so existing means complete)."""
    return storage.exists(record_path(out, benchmark, encoder, mode, fraction, seed))


def collect(out: str) -> list[dict]:
    """Every record under ``OUT/runs/``, in path order."""
    return [read_record(p) for p in storage.list_files(storage.join(out, "runs"), "*.json")]


def headline_metrics(benchmark: str, task: str) -> list[tuple[str, str]]:
    """(metric key, table label) of the numbers reported, the main one first."""
    if task == "multilabel":
        return [("micro_map", "micro mAP"), ("macro_map", "macro mAP"), ("micro_f1", "micro F1"),
                ("macro_f1", "macro F1")]
    common = [("miou", "mIoU"), ("accuracy", "OA")]
    return [("water_iou", "water IoU"), *common] if benchmark in FLOOD_BENCHMARKS else common
