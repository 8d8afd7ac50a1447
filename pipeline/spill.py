"""Batch-export shards and GeoTIFF chips, spilled so that they can take the shard-first path.

A raw-archive pair is placed by its small metadata file, but a pair of a table shard or a chip is
known only once the whole unit is read. So each such unit is read once, its pairs checked, and
every pair that passes is appended to one spill file per unit in the build folder::

    DATASET/build-NNNN/.spill/<sha1 of the unit's URI>.pairs

as a blob: its ``PairMeta`` JSON on one line, then the raw archive's structured .npy of its
arrays. Only a small key (pair id, origin, spill file, byte span, split and shard) crosses the
GroupByKeys; the shard step reads each blob back with one ranged read. Peak memory is one unit,
not the input; the price is a second write and read of the kept pairs (the spill folder holds
about the dataset's size until the run ends, then is removed).
"""

from __future__ import annotations

import hashlib
import io
import json

import apache_beam as beam
import numpy as np

from senclr import raw_archive, storage
from senclr.pair import PairMeta, PatchPair
from senclr.pipeline import filters, transforms

FOLDER = ".spill"


def encode(pair: PatchPair) -> bytes:
    """One blob: the metadata's JSON line, then the .npy of the pair's structured array."""
    meta = json.dumps(pair.meta.to_json(), sort_keys=True).encode()
    return meta + b"\n" + raw_archive.encode_npy(raw_archive.to_structured(pair))


def decode(blob: bytes, origin: str) -> PatchPair:
    """The pair of one blob, named by ``origin`` (where it was read from, not the spill file)."""
    line, npy = blob.split(b"\n", 1)
    meta = PairMeta.from_json(json.loads(line))
    pair = raw_archive.from_structured(np.load(io.BytesIO(npy), allow_pickle=False), meta)
    pair.origin = origin
    return pair


def read(uri: str, offset: int, length: int, origin: str) -> PatchPair:
    return decode(storage.read_range(uri, offset, length), origin)


def spill_uri(folder: str, unit_uri: str) -> str:
    """The spill file of a unit: named by its URI, so a retried bundle rewrites the same file."""
    return storage.join(folder, FOLDER, hashlib.sha1(unit_uri.encode()).hexdigest()[:20] + ".pairs")


class SpillFn(beam.DoFn):
    """Unit (table shard or chip) -> (pair_id, (origin, spill file, (offset, length), (split,
    shard))) for each pair that reads and passes the filters; its rejects on ``rejected`` and
    the pairs and lost files it read on ``read``, as ``ReadUnitFn`` counts them."""

    def __init__(self, output: str, cfg: filters.FilterConfig, placing: tuple, read_tag: str,
                 patch_size: int | None = None, labels: tuple[str, ...] | None = None):
        self.output, self.cfg, self.placing, self.read_tag = output, cfg, placing, read_tag
        self.read = transforms.ReadUnitFn(patch_size, labels)

    def process(self, unit):
        uri, keys, n, offset = spill_uri(self.output, unit.uri), [], 0, 0
        with storage.open_write(uri) as f:
            for item in self.read.process(unit):
                n += 1
                if isinstance(item, beam.pvalue.TaggedOutput):  # read already named it
                    yield item
                elif verdict := filters.check(item, self.cfg):
                    yield transforms._reject(item.pair_id, *verdict, item.origin)
                else:
                    blob = encode(item)
                    f.write(blob)
                    where = transforms.place(item.meta, *self.placing)
                    keys.append((item.pair_id, (item.origin, uri, (offset, len(blob)), where)))
                    offset += len(blob)
        yield beam.pvalue.TaggedOutput(self.read_tag, n)
        yield from keys  # only once the spill file is whole
