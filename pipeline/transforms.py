"""The preprocessing pipeline's steps as named PTransforms, each testable alone.

Rejections leave every step on a tagged output ``rejected`` as dicts {pair_id, reason, detail,
source}; they are counted in Beam metrics under the namespace ``senclr``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import posixpath
import zlib
from collections import Counter

import apache_beam as beam
from apache_beam.metrics import Metrics

from senclr import manifest as manifest_lib
from senclr import raw_ee_table, storage, tfrecord
from senclr.casualty import Casualty, ReadError
from senclr.pair import PatchPair
from senclr.pipeline import filters, sources, split
from senclr.pipeline.stats import BandStatsFn
from senclr.schema import encode_record

REJECTED = "rejected"
REJECTS_FILE = "rejects.jsonl"
NAMESPACE = "senclr"


def _reject(pair_id: str, reason: str, detail: str, source: str) -> beam.pvalue.TaggedOutput:
    Metrics.counter(NAMESPACE, f"rejected_{reason}").inc()
    return beam.pvalue.TaggedOutput(REJECTED, {"pair_id": pair_id, "reason": reason, "detail": detail, "source": source})


class ReadUnitFn(beam.DoFn):
    """Unit -> PatchPairs. A pair that cannot be read, or a file that cannot be read at all (or
    past some point), becomes a named rejection: never an exception that stops the run, never a
    silent loss. Each pair read and each casualty counts once towards ``read``."""

    def __init__(self, patch_size: int | None = None, labels: tuple[str, ...] | None = None):
        self.patch_size, self.labels = patch_size, labels
        self._plans: dict = {}

    def _plan(self, uri: str) -> raw_ee_table.ExportPlan:
        """A batch export's plan, loaded once per DoFn instance (every shard of the export needs it)."""
        if uri not in self._plans:
            self._plans[uri] = raw_ee_table.read_plan(uri)
        return self._plans[uri]

    def _keep_labels(self, pair: PatchPair) -> PatchPair:
        if self.labels is not None:
            pair.labels = {n: a for n, a in pair.labels.items() if n in self.labels}
        return pair

    def process(self, unit):
        unit = sources.Unit(sources.ARCHIVE, unit) if isinstance(unit, str) else unit  # a bare pair URI
        n = 0
        try:
            for item in sources.read_unit(unit, self.patch_size, self._plan):
                n += 1
                Metrics.counter(NAMESPACE, "read").inc()
                if isinstance(item, Casualty):
                    yield _reject(item.pair_id, item.reason, item.detail, item.source)
                else:
                    yield self._keep_labels(item)
        except Exception as e:  # noqa: BLE001 - a lost file is a counted rejection, not a crash
            Metrics.counter(NAMESPACE, "read").inc()
            yield _reject(_unit_pair_id(unit), *_why(e, n), unit.uri)


def _why(error: Exception, pairs_before: int) -> tuple[str, str]:
    """(reason, detail) of a file lost to ``error`` after ``pairs_before`` of its pairs were read."""
    reason = error.reason if isinstance(error, ReadError) else "unreadable"
    detail = str(error) if isinstance(error, ReadError) else f"{type(error).__name__}: {error}"
    if pairs_before:
        detail += f" (the file's first {pairs_before} pairs were read)" if pairs_before > 1 else " (its first pair was read)"
    return reason, detail


def _unit_pair_id(unit) -> str:
    """A raw-archive file names its pair; a shard or chip holds many, so none is named."""
    return posixpath.basename(unit.uri).rsplit(".", 1)[0] if unit.kind == sources.ARCHIVE else ""


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
        pairs = list(pairs)
        if len(pairs) > 1:  # almost every id is unique: order only the duplicates
            pairs.sort(key=lambda p: (p.origin, json.dumps(p.meta.to_json(), sort_keys=True)))
        yield pairs[0]
        for p in pairs[1:]:
            yield _reject(pair_id, "duplicate", f"same pair id as {pairs[0].origin}", p.origin)


class ReadUnits(beam.PTransform):
    """Units (or bare raw-archive pair URIs) -> (pairs, rejected)."""

    def __init__(self, patch_size: int | None = None, labels: tuple[str, ...] | None = None):
        super().__init__()
        self.read = ReadUnitFn(patch_size, labels)

    def expand(self, units):
        out = units | "Spread" >> beam.Reshuffle() | "Decode" >> beam.ParDo(self.read).with_outputs(REJECTED, main="pairs")
        return out.pairs, out[REJECTED]


ReadRawPairs = ReadUnits  # the name of the raw-archive-only version


def count_read(pairs, rejected_on_read):
    """How many pairs (and lost files) the read step produced, counted apart from the filters."""
    counts = [pc | f"Count{name}" >> beam.combiners.Count.Globally() for name, pc in (("Pairs", pairs), ("Lost", rejected_on_read))]
    return counts | "AllRead" >> beam.Flatten() | "SumRead" >> beam.CombineGlobally(sum)


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
        name, shard = place(pair.meta, self.cell_deg, self.fractions, self.seed, self.num_shards)
        Metrics.counter(NAMESPACE, f"kept_{name}").inc()
        yield (name, shard), (pair.pair_id, encode_record(pair, name))


def place(meta, cell_deg: float, fractions: tuple, seed: int, num_shards: dict) -> tuple[str, int]:
    """(split, shard) of a pair from its metadata: its place decides the split, its id the shard."""
    name = split.split_of(meta.lon, meta.lat, cell_deg, fractions, seed)
    return name, zlib.crc32(meta.pair_id.encode()) % num_shards[name]


def shard_file(name: str, shard: int) -> str:
    return f"{name}-{shard:05d}.tfrecord"


def write_frames(uri: str, frames, digest: bool = True) -> tuple[int, str] | None:
    """Stream already framed records into ``uri``: (count, sha256 of the file, or "" without
    ``digest``), or None and no file when there is none."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        return None
    h, n = hashlib.sha256() if digest else None, 0
    with storage.open_write(uri) as f:
        for framed in itertools.chain([first], frames):
            if h is not None:
                h.update(framed)
            f.write(framed)
            n += 1
    return n, h.hexdigest() if h is not None else ""


def write_framed(uri: str, records) -> tuple[int, str] | None:
    """``write_frames`` of records, TFRecord-framed on the way, with no digest: a scratch file
    (a slice) that no manifest names."""
    return write_frames(uri, (tfrecord.frame(r) for r in records), digest=False)


def write_shard(output: str, name: str, shard: int, frames) -> dict | None:
    """One shard file of framed records and its manifest entry (None, and no file, when empty)."""
    written = write_frames(storage.join(output, shard_file(name, shard)), frames)
    return written and {"path": shard_file(name, shard), "split": name, "records": written[0], "sha256": written[1]}


class WriteShardFn(beam.DoFn):
    """((split, shard), [(pair_id, record)]) -> one TFRecord file streamed in pair-id order and its
    description (none, and no file, when it holds no record)."""

    def __init__(self, output: str):
        self.output = output

    def process(self, item):
        (name, shard), entries = item
        if described := write_shard(self.output, name, shard, (tfrecord.frame(r) for _, r in sorted(entries))):
            yield described


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


class LostPairsError(RuntimeError):
    """Pairs were read but neither kept nor rejected: a bug, never written as a dataset."""


def finish(shards: list, stats: dict, rejects: list, output: str, base: dict, read: int | None = None) -> dict:
    """Write the rejects file, then the manifest (last: its presence marks a finished dataset)."""
    rejects = sorted(rejects, key=lambda r: (r["pair_id"], r["reason"], r["source"]))
    storage.write_text(storage.join(output, REJECTS_FILE), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    counts_by_reason = Counter(r["reason"] for r in rejects)
    shards = sorted(shards, key=lambda s: s["path"])
    splits = {name: sum(s["records"] for s in shards if s["split"] == name) for name in split.SPLITS}
    m = dict(base)
    read = base["counts"]["read"] if read is None else read
    if read != sum(splits.values()) + len(rejects):
        raise LostPairsError(f"read {read} pairs but kept {sum(splits.values())} and rejected {len(rejects)}")
    m["counts"] = {"read": read, "kept": sum(splits.values()), "rejected": dict(sorted(counts_by_reason.items()))}
    m.update(statistics=stats, splits=splits, shards=shards, rejects_file=REJECTS_FILE)
    manifest_lib.write(output, m)
    return m


class WriteManifest(beam.PTransform):
    """Runs once, after every shard is written, on whichever worker Beam picks."""

    def __init__(self, output: str, base: dict):
        super().__init__()
        self.output, self.base = output, base

    def expand(self, pcolls):
        shards, stats, rejected, *read = pcolls  # read: the count of the read step, when given
        return (
            shards
            | "AllShards" >> beam.combiners.ToList()
            | "Manifest" >> beam.Map(
                finish,
                stats=beam.pvalue.AsSingleton(stats),
                rejects=beam.pvalue.AsList(rejected),
                output=self.output,
                base=self.base,
                read=beam.pvalue.AsSingleton(read[0]) if read else None,
            )
        )


def band_stats(kept, s1_bands, s2_bands):
    return kept | "BandStats" >> beam.CombineGlobally(BandStatsFn(tuple(s1_bands), tuple(s2_bands)))
