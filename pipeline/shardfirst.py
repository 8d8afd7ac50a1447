"""Shard first: no array crosses a GroupByKey, whatever the input format.

Every pair is first reduced to a small key, (pair_id, copy) with copy = (origin, file, span,
(split, shard)): a raw-archive pair from its small ``pairs/<id>.json`` (span ``()``: the file is
the pair), a pair of a batch-export shard or a GeoTIFF chip from the spill file its unit was
checked into (``spill``; span = (offset, length)). Only keys are grouped: first by pair id (copies
of one id meet), then by shard, or by slice of a shard when several workers share the run
(``slices``). One DoFn per shard (slice) then reads, checks, drops duplicates, encodes and streams
the records in pair-id order, emitting a partial statistics accumulator, its rejects and its read
count. The output is the same, byte for byte, as ReadUnits -> FilterPairs -> WriteDataset, whose
grouping of whole pairs and records the in-memory DirectRunner holds in memory.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.metrics import Metrics

from senclr import storage, tfrecord
from senclr.pair import PairMeta
from senclr.pipeline import filters, slices, sources, spill
from senclr.pipeline.stats import BandStatsFn, MergeStatsFn
from senclr.pipeline.transforms import (NAMESPACE, REJECTED, ReadUnitFn, _reject, _unit_pair_id, _why, place, write_framed,
                                       write_shard)
from senclr.schema import encode_record

READ, STATS, SLICE = "read", "stats", "slice"


class PlaceFn(beam.DoFn):
    """Unit -> (pair_id, copy) for each pair it holds. A raw-archive pair is placed from its
    metadata (unreadable metadata is a rejection, as read_pair would fail the same way, counted as
    read); any other unit is read, checked and spilled (``spill.SpillFn``)."""

    def __init__(self, output: str, cfg: filters.FilterConfig, placing: tuple, patch_size=None, labels=None):
        self.placing = placing
        self.spill = spill.SpillFn(output, cfg, placing, READ, patch_size, labels)

    def process(self, unit):
        unit = sources.Unit(sources.ARCHIVE, unit) if isinstance(unit, str) else unit
        if unit.kind != sources.ARCHIVE:
            yield from self.spill.process(unit)
            return
        try:
            meta = PairMeta.from_json(json.loads(storage.read_text(unit.uri)))
        except Exception as e:  # noqa: BLE001 - a lost file is a counted rejection, not a crash
            Metrics.counter(NAMESPACE, "read").inc()
            yield beam.pvalue.TaggedOutput(READ, 1)
            yield _reject(_unit_pair_id(unit), *_why(e, 0), unit.uri)
            return
        yield meta.pair_id, (unit.uri, unit.uri, (), place(meta, *self.placing))  # origin: read_pair's


def assign(item, num_shards: dict, k: dict | None = None):
    """(pair_id, copies) -> ((split, shard, slice), (pair_id, copies, home)) for each shard a copy
    lands in, with ``k[split]`` slices per shard of each split (none: one). Copies of one id
    almost always share a place; ``home``, the first, reports their rejects and read count."""
    pair_id, copies = item
    copies = tuple(sorted(copies))  # by origin, as KeepFirstFn orders
    shards = sorted({copy[-1] for copy in copies})
    for name, shard in shards:
        part = slices.slice_of(pair_id, num_shards[name], k[name]) if k else 0
        yield (name, shard, part), (pair_id, copies, shards[0])


class ReadShardFn(beam.DoFn):
    """((split, shard, slice), [(pair_id, copies, home)]) -> the shard file and its description
    (one slice for the split: ``k`` holds 1 or nothing), or the slice file and its index on
    ``slice``; plus tagged ``stats`` (a partial accumulator), ``rejected`` and ``read``."""

    def __init__(self, output: str, cfg: filters.FilterConfig, s1_bands, s2_bands, patch_size=None, labels=None,
                 k: dict | None = None):
        self.output, self.k = output, k or {}
        self.cfg, self.pair_stats = cfg, BandStatsFn(tuple(s1_bands), tuple(s2_bands))
        self.stats = MergeStatsFn(tuple(s1_bands), tuple(s2_bands))  # combines the shards' accumulators
        self.read = ReadUnitFn(patch_size, labels)

    def _read(self, origin: str, uri: str, span: tuple):
        """A copy's pair: a raw-archive pair read as ReadUnitFn reads it, or a spilled one."""
        if not span:
            return self.read.process(sources.Unit(sources.ARCHIVE, uri))
        return [spill.read(uri, *span, origin)]

    def _first(self, pair_id: str, copies: tuple, out: list):
        """The first copy (in origin order, as KeepFirstFn orders) that reads and passes, with its shard."""
        kept = None
        for origin, uri, span, where in copies:
            for item in self._read(origin, uri, span):
                if isinstance(item, beam.pvalue.TaggedOutput):  # unreadable: already a rejection
                    out.append(item)
                elif not span and (verdict := filters.check(item, self.cfg)):  # a spilled pair passed when spilled
                    out.append(_reject(item.pair_id, *verdict, item.origin))
                elif kept is None:
                    kept = (item, where)
                else:
                    out.append(_reject(pair_id, "duplicate", f"same pair id as {kept[0].origin}", item.origin))
        return kept

    def records(self, name, shard, entries, extra):
        """(pair_id, record) of the kept pairs in pair-id order; side outputs collect in ``extra``,
        the read count and the statistics once per item (one element each, not one a pair)."""
        acc, read, kept_here = self.pair_stats.create_accumulator(), 0, 0
        for pair_id, copies, home in sorted(entries, key=lambda e: e[0]):
            out: list = []
            kept = self._first(pair_id, copies, out)
            if home == (name, shard):
                extra += out
                read += sum(1 for c in copies if not c[2])  # spilled copies were counted when spilled
            if kept is not None and kept[1] == (name, shard):
                kept_here += 1
                self.pair_stats.add_input(acc, kept[0])
                yield pair_id, encode_record(kept[0], name)
        if kept_here:
            Metrics.counter(NAMESPACE, f"kept_{name}").inc(kept_here)
        if read:
            extra.append(beam.pvalue.TaggedOutput(READ, read))
        extra.append(beam.pvalue.TaggedOutput(STATS, acc))

    def process(self, item):
        (name, shard, part), entries = item
        extra: list = []
        if self.k.get(name, 1) == 1:
            frames = (tfrecord.frame(r) for _, r in self.records(name, shard, entries, extra))
            if described := write_shard(self.output, name, shard, frames):
                yield described
        else:
            index: list = []
            records = (index.append((i, len(r) + tfrecord.FRAMING)) or r for i, r in self.records(name, shard, entries, extra))
            uri = slices.slice_uri(self.output, name, shard, part)
            if write_framed(uri, records):
                yield beam.pvalue.TaggedOutput(SLICE, ((name, shard), (part, uri, index)))
        yield from extra


class ShardFirst(beam.PTransform):
    """Units of any format -> (shard descriptions, statistics, rejected, read count); ``k[split]``
    slices per shard of each split (``slices.per_shard``; none: one)."""

    def __init__(self, output, cfg, s1_bands, s2_bands, placing: tuple, patch_size=None, labels=None,
                 k: dict | None = None):
        super().__init__()
        self.output, self.num_shards, self.k = output, placing[3], k or {}
        self.place = PlaceFn(output, cfg, placing, patch_size, labels)
        self.shard = ReadShardFn(output, cfg, s1_bands, s2_bands, patch_size, labels, k)

    def expand(self, units):
        # Units arrive spread over the workers (Create and ``listed`` reshuffle): no second Reshuffle.
        placed = units | "Place" >> beam.ParDo(self.place).with_outputs(REJECTED, READ, main="placed")
        out = (
            placed.placed
            | "GroupById" >> beam.GroupByKey()
            | "Assign" >> beam.FlatMap(assign, self.num_shards, self.k)
            | "GroupBySlice" >> beam.GroupByKey()
            | "ReadWriteSlices" >> beam.ParDo(self.shard).with_outputs(REJECTED, READ, STATS, SLICE, main="shards")
        )
        shards = out.shards  # written whole: the shards of splits with one slice
        if any(n > 1 for n in self.k.values()):
            merged = out[SLICE] | "GroupByShard" >> beam.GroupByKey() | "MergeSlices" >> beam.ParDo(slices.MergeSlicesFn(self.output))
            shards = (shards, merged) | "AllShards" >> beam.Flatten()
        rejected = (placed[REJECTED], out[REJECTED]) | "AllRejected" >> beam.Flatten()
        read = (placed[READ], out[READ]) | "AllRead" >> beam.Flatten() | "SumRead" >> beam.CombineGlobally(sum)
        stats = out[STATS] | "BandStats" >> beam.CombineGlobally(self.shard.stats)
        return shards, stats, rejected, read
