"""Batch-mode exports: Earth Engine table TFRecords, one ``tf.train.Example`` per pair.

Layout (a gs:// prefix, or a local copy of one)::

    OUT/ledger/plan.json               the executed plan: every pair's patch, scenes and Δt
    OUT/tasks/<task>*.tfrecord.gz      gzip'd TFRecord files written by Earth Engine's table export
    OUT/manifest.json                  kind "raw", written once no task is pending

Each Example is what ``Export.table.toCloudStorage`` writes for a feature of
``neighborhoodToArray`` samples: ``pair_id`` (bytes) and every band (``VV``, ``VH``, the S2 bands,
``cs_cdf``, then any label bands the plan names) as a float list of P x P values in row-major order. The records carry no geometry or
times, so a pair's metadata comes from the plan by pair id. One bad record costs that pair only:
it becomes a Casualty and reading goes on; damaged framing or gzip ends the file there, after
every record before the damage has been yielded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from senclr import storage, tfrecord
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.casualty import Casualty, ReadError
from senclr.example_proto import decode_example
from senclr.label_bands import EE_FIELDS, EMBEDDING, bands_of
from senclr.pair import PairMeta, PatchPair, meta_from_plan_entry

PLAN_PATH = ("ledger", "plan.json")
TASKS_DIR = "tasks"
CLOUD_FIELD = "cs_cdf"
SOURCE = "ee-batch"
SHARD_SUFFIXES = (".tfrecord.gz", ".tfrecord")


@dataclass(frozen=True)
class ExportPlan:
    """What a reader needs from ``ledger/plan.json``: the band layout and each pair's plan entry."""

    s2_level: str
    patch_size: int
    entries: dict  # pair_id -> plan entry (converted to PairMeta only for pairs actually read)
    filters: dict  # the Cloud Score+ policy the export was run with
    labels: tuple[str, ...] = ()  # label and feature fields exported with each pair (senclr.label_bands)

    @property
    def s2_bands(self) -> tuple[str, ...]:
        return S2_BANDS[self.s2_level]

    def meta(self, pair_id: str) -> PairMeta | None:
        entry = self.entries.get(pair_id)
        return None if entry is None else meta_from_plan_entry(entry, SOURCE)


def plan_uri(export: str) -> str:
    return storage.join(export, *PLAN_PATH)


def is_shard(uri: str) -> bool:
    return uri.endswith(SHARD_SUFFIXES)


def list_shards(export: str) -> list[str]:
    """The TFRecord files Earth Engine wrote under ``OUT/tasks/``, sorted."""
    return [u for u in storage.list_files(storage.join(export, TASKS_DIR)) if is_shard(u)]


def read_plan(uri: str) -> ExportPlan:
    """Load an export plan; ReadError when it is missing or not a senclr plan."""
    try:
        plan = json.loads(storage.read_text(uri))
        params = plan["parameters"]
        level = params.get("s2_level", "l1c")
        if level not in S2_BANDS:
            raise ValueError(f"unknown s2_level {level!r}")
        entries = {p["pair_id"]: p for p in plan["pairs"]}
        filters = {k: params[k] for k in ("min_clear", "cs_threshold") if params.get(k) is not None}
        labels = tuple(params.get("labels") or ())
        unknown = [n for n in labels if n not in EE_FIELDS]
        if unknown:
            raise ValueError(f"unknown label fields {unknown}")
        return ExportPlan(level, int(params["patch_size"]), entries, filters, labels)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ReadError(f"{uri}: not a readable export plan ({type(e).__name__}: {e})") from None


def _band(ex: dict, name: str, n: int) -> np.ndarray:
    return np.asarray(ex[name], np.float32).reshape(n)


def decode_pair(record: bytes, plan: ExportPlan, source: str) -> PatchPair | Casualty:
    """One Example -> PatchPair, or the Casualty that names what is wrong with it."""
    try:
        ex = decode_example(record, arrays=True)
        pair_id = ex["pair_id"][0].decode()
    except Exception as e:  # noqa: BLE001 - a record that does not parse costs only itself
        return Casualty("", "unreadable", f"record does not parse as a tf.train.Example with a pair_id ({e})", source)
    meta = plan.meta(pair_id)
    if meta is None:
        return Casualty(pair_id, "unreadable", "pair id not in the export's ledger/plan.json: no metadata", source)
    p = plan.entries[pair_id]["patch"]["size_px"]
    label_bands = {n: [b for b, _ in bands_of(n)] for n in plan.labels}
    bands = (*S1_BANDS, *plan.s2_bands, CLOUD_FIELD, *(b for bs in label_bands.values() for b in bs))
    missing = [b for b in bands if b not in ex]
    if missing:
        return Casualty(pair_id, "missing_bands", f"bands {missing} absent (has {sorted(ex)})", source)
    wrong = {b: len(ex[b]) for b in bands if len(ex[b]) != p * p}
    if wrong:
        return Casualty(pair_id, "bad_shape", f"expected {p}x{p}={p * p} values per band, got {wrong}", source)
    s1 = np.stack([_band(ex, b, p * p) for b in S1_BANDS], axis=-1).reshape(p, p, len(S1_BANDS))
    s2 = np.stack([_band(ex, b, p * p) for b in plan.s2_bands], axis=-1).reshape(p, p, len(plan.s2_bands))
    s2 = np.clip(np.rint(np.nan_to_num(s2, nan=0.0)), 0, 65535).astype(np.uint16)  # NaN: S2's no data, 0
    cloud = _band(ex, CLOUD_FIELD, p * p).reshape(p, p)
    labels = {n: _label(ex, n, bs, p) for n, bs in label_bands.items()}
    return PatchPair(meta=meta, s1=s1, s2=s2, cloud=cloud, s2_bands=plan.s2_bands, labels=labels, origin=source)


def _label(ex: dict, name: str, bands: list[str], p: int) -> np.ndarray:
    """A label field from the table's floats: class maps uint8 [P, P], the embedding int8 [P, P, 64]."""
    values = np.stack([np.rint(_band(ex, b, p * p)) for b in bands], axis=-1).reshape(p, p, len(bands))
    return values.astype(np.int8) if name == EMBEDDING else values[..., 0].astype(np.uint8)


def pair_ids(uri: str) -> list[str]:
    """The pair ids of one shard's records, in order (what a finished task really wrote)."""
    ids = []
    for record in tfrecord.read_file(uri):
        try:
            ids.append(decode_example(record, arrays=True)["pair_id"][0].decode())
        except Exception:  # noqa: BLE001 - an unreadable record holds no pair we can count
            continue
    return ids


def read_shard(uri: str, plan: ExportPlan) -> Iterator[PatchPair | Casualty]:
    """Every record of one shard as a PatchPair or Casualty; raises (CorruptRecordError, OSError)
    where the file itself is damaged or gone, after yielding what came before."""
    for i, record in enumerate(tfrecord.read_file(uri)):
        yield decode_pair(record, plan, f"{uri}#{i}")
