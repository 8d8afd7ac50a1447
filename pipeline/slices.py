"""Shards cut into slices, so that a few shards of unequal size still keep every worker busy.

A shard's pairs must be read, checked, encoded and counted in the statistics: the costly part of
preprocessing. With one work item per shard, parallelism is the shard count (5 at 10k pairs), and
the items are as unequal as the shards (a train shard holds 8x a val shard at 1000 pairs). Beam's
multi-process DirectRunner deals a step's items out to its workers round-robin, once, so unequal
items leave one worker busy while the other waits (a third to a half more shard-step CPU in one
of two workers at 6000 pairs: docs/performance.md). So every shard is cut into the same ``k`` slices by pair id, and work item ``part`` is
slice ``part`` of every shard: ``k`` items of nearly equal size whatever the splits' shares.
Each item writes its slice of each shard, in pair-id order, to
``DATASET/build-NNNN/.scratch/slices/``; then one cheap step per shard merges its slices by pair
id, streaming bytes only, into the shard file: the same bytes as writing the shard in one go.
With ``k`` = 1 (one worker, or enough shards to go round) each shard is one item and is written
directly, without a merge.
"""

from __future__ import annotations

import heapq
import zlib
from operator import itemgetter

import apache_beam as beam

from senclr import storage
from senclr.pipeline import publish, transforms

ITEMS_PER_WORKER = 8  # work items per worker: what a worker is dealt differs by one item at most
MAX_SLICES = 64  # per shard: the merge holds one open file per slice


def per_shard(workers: int, shards: int) -> int:
    """Slices of every shard (= work items) for ``workers`` workers and ``shards`` shards in all;
    1 (each shard one item, no slicing) for one worker or at least ITEMS_PER_WORKER shards each."""
    if workers <= 1 or shards >= ITEMS_PER_WORKER * workers:
        return 1
    return min(MAX_SLICES, ITEMS_PER_WORKER * workers)


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
