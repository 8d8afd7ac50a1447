"""Inputs of ``benchmarks/preprocess.py`` in each format preprocessing reads, from the same
synthetic pairs: a raw archive, a batch export (Earth Engine's table TFRecords, one shard per
task of the export's real task size) and Sen1Floods11-style GeoTIFF chips (4 x 4 patches each)."""

from __future__ import annotations

import gzip
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests.helpers

FORMATS = ("archive", "table", "chips")
CHIP_PATCHES = 4  # a chip is 4 x 4 patches
CHIPS_PER_ROW = 40  # chips laid out in rows, so the patches spread over many split cells


def make(fmt: str, folder: str, n: int, patch: int) -> str:
    """Write ``n`` pairs in format ``fmt`` under ``folder``; return what ``--input`` takes."""
    return {"archive": _archive, "table": _table, "chips": _chips}[fmt](folder, n, patch)


def _archive(folder: str, n: int, patch: int) -> str:
    from senclr.export.synthetic.source import generate

    generate(folder, n, 0, patch_size=patch, s2_level="l1c")
    return folder


def _table(folder: str, n: int, patch: int) -> str:
    """The batch export Earth Engine would write for the synthetic pairs: ledger/plan.json and
    gzip'd shards of ``pairs_per_task`` records, streamed one task at a time."""
    from senclr import storage, tfrecord
    from senclr.export.earthengine.limits import pairs_per_task
    from senclr.export.synthetic.source import make_pair
    from tests.helpers import ee_table_example, plan_entry

    per_task = pairs_per_task(patch, "l1c")
    entries = []
    for t in range(0, n, per_task):
        pairs = [make_pair(0, i, patch, "l1c") for i in range(t, min(n, t + per_task))]
        for p in pairs:
            p.labels = {}  # a table export without --labels
        entries += [plan_entry(p) for p in pairs]
        data = tfrecord.encode_file(ee_table_example(p) for p in pairs)
        storage.write_bytes(os.path.join(folder, "tasks", f"senclr-{t // per_task:05d}.tfrecord.gz"), gzip.compress(data, 1))
    params = {"mode": "batch", "s2_level": "l1c", "patch_size": patch, "pairs_per_task": per_task}
    plan = {"kind": "senclr-export-plan", "parameters": params, "pairs": entries}
    storage.write_text(os.path.join(folder, "ledger", "plan.json"), json.dumps(plan, sort_keys=True))
    return folder


def _chips(folder: str, n: int, patch: int) -> str:
    from tests.helpers import write_chip

    per_chip = CHIP_PATCHES * CHIP_PATCHES
    for c in range(-(-n // per_chip)):
        write_chip(folder, f"Bench_{c:05d}", size=CHIP_PATCHES * patch, seed=c,
                   offset=(c % CHIPS_PER_ROW, c // CHIPS_PER_ROW))
    return folder
