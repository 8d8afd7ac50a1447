"""Shards cut into slices, so that a few large shards still keep every worker busy.

A shard's pairs must be read, checked, encoded and counted in the statistics: the costly part of
preprocessing. With one work item per shard, parallelism is the shard count (5 at 10k pairs), and
a runner that deals whole shards out to 2 workers leaves one idle for the last shard or two.
So each shard is cut into ``k`` slices by pair id; each slice is processed on its own and written
in pair-id order to ``DATASET/build-NNNN/.scratch/slices/``; then one cheap step per shard merges
its slices by pair id, streaming bytes only, into the shard file: the same bytes as writing the
shard in one go. With ``k`` = 1 (one worker) the shard is written directly, without a merge.
"""

from __future__ import annotations

import heapq
import math
import zlib
from operator import itemgetter

import apache_beam as beam

from senclr import storage
from senclr.pipeline import publish, transforms

ITEMS_PER_WORKER = 8  # work items per worker that even out unequal slices
MAX_SLICES = 64  # per shard: the merge holds one open file per slice


def per_shard(workers: int, shards: int) -> int:
    """Slices per shard for ``workers`` workers and ``shards`` shards in all (1: no slicing)."""
    if workers <= 1:
        return 1
    return max(1, min(MAX_SLICES, math.ceil(ITEMS_PER_WORKER * workers / max(1, shards))))


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
