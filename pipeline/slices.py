"""Shards cut into slices of about equal size, so that a few unequal shards keep every worker busy.

A shard's pairs must be read, checked, encoded and counted in the statistics: the costly part of
preprocessing. With one work item per shard, parallelism is the shard count (5 at 10k pairs), and
the items are as unequal as the shards (at 1000 pairs the one train shard holds 8x the val shard).
Beam's multi-process DirectRunner deals a step's items out to its workers round-robin, once, so
unequal items leave one worker busy while the other waits (a third to a half more shard-step CPU
in one of two workers at 6000 pairs, with slices equal in number per shard: docs/performance.md).
So each shard is cut into slices by pair id, as many as its expected share of the pairs calls
for: about ITEMS_PER_WORKER slices per worker in all, each about the same size whatever the
splits' fractions. Many small items rather than a few: the dealing is blind, so a worker's share
is off by about an item (with 8 items a worker, one of two workers sat idle for the last 0.7 s
of a 6 s step at 10k pairs; docs/performance.md). Each slice is processed on its own and
written in pair-id order to ``DATASET/build-NNNN/.scratch/slices/``; then one cheap step per
shard merges its slices by pair id, streaming bytes only, into the shard file: the same bytes as
writing the shard in one go. A shard of one slice (one worker, many shards, or a small split) is
written directly.
"""

from __future__ import annotations

import heapq
import zlib
from operator import itemgetter

import apache_beam as beam

from senclr import storage
from senclr.schema import SPLITS
from senclr.pipeline import publish, transforms

ITEMS_PER_WORKER = 32  # work items per worker: what one worker is dealt then differs by an item or so
MAX_SLICES = 64  # per shard: the merge holds one open file per slice


def per_shard(workers: int, num_shards: dict, fractions: tuple) -> dict:
    """{split: slices per shard} for ``workers`` workers, from each shard's expected share of the
    pairs (``fractions`` in SPLITS order over ``num_shards`` shards); 1 everywhere (no slicing)
    for one worker or when there are at least ITEMS_PER_WORKER shards per worker. Where it can,
    the item count is made a multiple of the workers (by cutting the largest slices once more),
    so that none is dealt an item more than another."""
    items = ITEMS_PER_WORKER * workers
    if workers <= 1 or sum(num_shards.values()) >= items:
        return {name: 1 for name in num_shards}
    share = dict(zip(SPLITS, fractions))
    k = {name: max(1, min(MAX_SLICES, round(items * share[name] / n))) for name, n in num_shards.items()}

    def size(name):  # the expected share of the pairs in one of its slices
        return share[name] / num_shards[name] / k[name]

    for _ in range(workers):
        cuttable = [name for name in k if k[name] < MAX_SLICES and share[name] > 0]
        if sum(num_shards[n] * k[n] for n in k) % workers == 0 or not cuttable:
            break
        k[max(cuttable, key=size)] += 1
    return k


def slice_of(pair_id: str, num_shards: int, k: int) -> int:
    """A pair's slice of its shard: the shard takes its id's CRC modulo the shard count; the slice
    the quotient, so the slices of a shard are even."""
    return zlib.crc32(pair_id.encode()) // num_shards % k


def slice_uri(output: str, name: str, shard: int, part: int) -> str:
    return storage.join(output, publish.SCRATCH, "slices", f"{name}-{shard:05d}-{part:03d}.tfrecord")


def _frames(uri: str, index: list):
    """(pair_id, framed record) of one slice file, in file order, read exactly by the index."""
    with storage.open_read(uri) as f:
        for pair_id, size in index:
            yield pair_id, f.read(size)


class MergeSlicesFn(beam.DoFn):
    """((split, shard), [(part, slice uri, [(pair_id, framed size)])]) -> the shard file, merged
    by pair id, and its description."""

    def __init__(self, output: str):
        self.output = output

    def process(self, item):
        (name, shard), parts = item
        merged = heapq.merge(*(_frames(uri, index) for _, uri, index in sorted(parts)), key=itemgetter(0))
        yield transforms.write_shard(self.output, name, shard, (framed for _, framed in merged))
