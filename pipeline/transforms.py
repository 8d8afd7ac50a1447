"""The preprocessing pipeline's steps as named PTransforms, each testable alone.

Rejections leave every step on a tagged output ``rejected`` as dicts {pair_id, reason, detail,
source}; they are counted in Beam metrics under the namespace ``senclr``.
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib

import apache_beam as beam
from apache_beam.metrics import Metrics

from senclr import manifest as manifest_lib
from senclr import raw_archive, storage, tfrecord
from senclr.pair import PatchPair
from senclr.pipeline import filters, split
from senclr.pipeline.stats import BandStatsFn
from senclr.schema import encode_record

REJECTED = "rejected"
REJECTS_FILE = "rejects.jsonl"
NAMESPACE = "senclr"


def _reject(pair_id: str, reason: str, detail: str, source: str) -> beam.pvalue.TaggedOutput:
    Metrics.counter(NAMESPACE, f"rejected_{reason}").inc()
    return beam.pvalue.TaggedOutput(REJECTED, {"pair_id": pair_id, "reason": reason, "detail": detail, "source": source})


class ReadPairFn(beam.DoFn):
    """Metadata URI -> PatchPair; a file that cannot be read or parsed is rejected as unreadable."""

    def process(self, uri: str):
        Metrics.counter(NAMESPACE, "read").inc()
        try:
            yield raw_archive.read_pair(uri)
        except Exception as e:  # noqa: BLE001 - any decode failure is a counted rejection
            pair_id = os.path.basename(uri).rsplit(".", 1)[0]
            yield _reject(pair_id, "unreadable", f"{type(e).__name__}: {e}", uri)


class CheckPairFn(beam.DoFn):
    def __init__(self, cfg: filters.FilterConfig):
        self.cfg = cfg

    def process(self, pair: PatchPair):
        verdict = filters.check(pair, self.cfg)
        if verdict:
            yield _reject(pair.pair_id, *verdict, pair.origin)
        else:
            yield pair


class KeepFirstFn(beam.DoFn):
    """(pair_id, pairs) -> the first by a stable order; the others are duplicates."""

    def process(self, item):
        pair_id, pairs = item
        pairs = sorted(pairs, key=lambda p: (p.origin, json.dumps(p.meta.to_json(), sort_keys=True)))
        yield pairs[0]
        for p in pairs[1:]:
            yield _reject(pair_id, "duplicate", f"same pair id as {pairs[0].origin}", p.origin)


class ReadRawPairs(beam.PTransform):
    """Raw-archive metadata URIs -> (pairs, rejected)."""

    def expand(self, uris):
        out = uris | "Spread" >> beam.Reshuffle() | "Decode" >> beam.ParDo(ReadPairFn()).with_outputs(REJECTED, main="pairs")
        return out.pairs, out[REJECTED]


class FilterPairs(beam.PTransform):
    """pairs -> (kept, rejected): quality checks, then one pair per pair id."""

    def __init__(self, cfg: filters.FilterConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, pairs):
        checked = pairs | "Check" >> beam.ParDo(CheckPairFn(self.cfg)).with_outputs(REJECTED, main="ok")
        unique = (
            checked.ok
            | "KeyById" >> beam.Map(lambda p: (p.pair_id, p))
            | "GroupById" >> beam.GroupByKey()
            | "KeepFirst" >> beam.ParDo(KeepFirstFn()).with_outputs(REJECTED, main="kept")
        )
        rejected = (checked[REJECTED], unique[REJECTED]) | "AllRejected" >> beam.Flatten()
        return unique.kept, rejected


class EncodeFn(beam.DoFn):
    """PatchPair -> ((split, shard), (pair_id, record)): place decides split, id decides shard."""

    def __init__(self, cell_deg: float, fractions: tuple, seed: int, num_shards: dict):
        self.cell_deg, self.fractions, self.seed, self.num_shards = cell_deg, fractions, seed, num_shards

    def process(self, pair: PatchPair):
        name = split.split_of(pair.meta.lon, pair.meta.lat, self.cell_deg, self.fractions, self.seed)
        shard = zlib.crc32(pair.pair_id.encode()) % self.num_shards[name]
        Metrics.counter(NAMESPACE, f"kept_{name}").inc()
        yield (name, shard), (pair.pair_id, encode_record(pair, name))


class WriteShardFn(beam.DoFn):
    """((split, shard), records) -> one TFRecord file, records sorted by pair id (deterministic)."""

    def __init__(self, output: str):
        self.output = output

    def process(self, item):
        (name, shard), records = item
        records = sorted(records)
        data = tfrecord.encode_file(r for _, r in records)
        path = f"{name}-{shard:05d}.tfrecord"
        storage.write_bytes(storage.join(self.output, path), data)
        yield {"path": path, "split": name, "records": len(records), "sha256": hashlib.sha256(data).hexdigest()}


class WriteDataset(beam.PTransform):
    """kept pairs -> shard descriptions (the TFRecord files are written as a side effect)."""

    def __init__(self, output: str, cell_deg: float, fractions: tuple, seed: int, num_shards: dict):
        super().__init__()
        self.output = output
        self.encode = EncodeFn(cell_deg, fractions, seed, num_shards)

    def expand(self, kept):
        return (
            kept
            | "Encode" >> beam.ParDo(self.encode)
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShardFn(self.output))
        )


def finish(shards: list, stats: dict, rejects: list, output: str, base: dict) -> dict:
    """Write the rejects file, then the manifest (last: its presence marks a finished dataset)."""
    rejects = sorted(rejects, key=lambda r: (r["pair_id"], r["reason"], r["source"]))
    storage.write_text(storage.join(output, REJECTS_FILE), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    counts_by_reason: dict[str, int] = {}
    for r in rejects:
        counts_by_reason[r["reason"]] = counts_by_reason.get(r["reason"], 0) + 1
    shards = sorted(shards, key=lambda s: s["path"])
    splits = {name: sum(s["records"] for s in shards if s["split"] == name) for name in split.SPLITS}
    m = dict(base)
    m["counts"] = {"read": base["counts"]["read"], "kept": sum(splits.values()), "rejected": dict(sorted(counts_by_reason.items()))}
    m.update(statistics=stats, splits=splits, shards=shards, rejects_file=REJECTS_FILE)
    manifest_lib.write(output, m)
    return m


class WriteManifest(beam.PTransform):
    """Runs once, after every shard is written, on whichever worker Beam picks."""

    def __init__(self, output: str, base: dict):
        super().__init__()
        self.output, self.base = output, base

    def expand(self, pcolls):
        shards, stats, rejected = pcolls
        return (
            shards
            | "AllShards" >> beam.combiners.ToList()
            | "Manifest" >> beam.Map(
                finish,
                stats=beam.pvalue.AsSingleton(stats),
                rejects=beam.pvalue.AsList(rejected),
                output=self.output,
                base=self.base,
            )
        )


def band_stats(kept, s1_bands, s2_bands):
    return kept | "BandStats" >> beam.CombineGlobally(BandStatsFn(tuple(s1_bands), tuple(s2_bands)))
