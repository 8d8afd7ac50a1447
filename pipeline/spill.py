"""Batch-export shards and GeoTIFF chips, spilled so that they can take the shard-first path.

A raw-archive pair is placed by its small metadata file, but a pair of a table shard or a chip is
known only once the whole unit is read. So each such unit is read once, its pairs checked, and
every pair that passes is appended to one spill file per unit in the build folder::

    DATASET/build-NNNN/.scratch/spill/<sha1 of the unit's URI>.pairs

as a blob: one JSON line (metadata, band names, and each array's name, dtype and shape), then
the arrays' bytes, C order, one after another. The blob restores the pair exactly, any dtype, and
decodes with ``np.frombuffer`` (no per-blob header parsing beyond the JSON line). Only a small
key (pair id, origin, spill file, byte span, split and shard) crosses the GroupByKeys; the shard
step reads each blob back with one ranged read. Peak memory is one unit, not the input; the price
is a second write and read of the kept pairs (the spill folder holds about the dataset's size
until the run ends, then is removed).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math

import apache_beam as beam
import numpy as np

from senclr import storage
from senclr.pair import PairMeta, PatchPair
from senclr.pipeline import filters, publish, transforms

_LABEL = "label:"  # labels' array names in a blob


def encode(pair: PatchPair) -> bytes:
    """One blob: the JSON line, then the bytes of s1, s2, cloud and each label."""
    arrays = [("s1", pair.s1), ("s2", pair.s2), ("cloud", pair.cloud)]
    arrays += [(_LABEL + name, lab) for name, lab in pair.labels.items()]
    arrays = [(name, np.ascontiguousarray(a)) for name, a in arrays]
    head = {"meta": pair.meta.to_json(), "s1_bands": list(pair.s1_bands), "s2_bands": list(pair.s2_bands),
            "arrays": [[name, a.dtype.str, list(a.shape)] for name, a in arrays]}
    return b"".join([json.dumps(head, sort_keys=True).encode(), b"\n", *(a.tobytes() for _, a in arrays)])


@functools.lru_cache(maxsize=64)
def _dtype(code: str) -> np.dtype:
    return np.dtype(code)


def decode(blob: bytes, origin: str) -> PatchPair:
    """The pair of one blob, named by ``origin`` (where it was read from, not the spill file).
    Its arrays are read-only views of the blob."""
    end = blob.index(b"\n")
    head = json.loads(blob[:end])
    arrays, at = {}, end + 1
    for name, code, shape in head["arrays"]:
        dtype = _dtype(code)
        n = math.prod(shape)
        arrays[name] = np.frombuffer(blob, dtype, n, at).reshape(shape)
        at += n * dtype.itemsize
    if at != len(blob):
        raise ValueError(f"spilled pair of {origin}: {len(blob) - at} bytes left over")
    labels = {name[len(_LABEL):]: a for name, a in arrays.items() if name.startswith(_LABEL)}
    return PatchPair(meta=PairMeta.from_json(head["meta"]), s1=arrays["s1"], s2=arrays["s2"], cloud=arrays["cloud"],
                     s2_bands=tuple(head["s2_bands"]), labels=labels, s1_bands=tuple(head["s1_bands"]), origin=origin)


def read(uri: str, offset: int, length: int, origin: str) -> PatchPair:
    return decode(storage.read_range(uri, offset, length), origin)


def spill_uri(folder: str, unit_uri: str) -> str:
    """The spill file of a unit: named by its URI, so a retried bundle rewrites the same file."""
    return storage.join(folder, publish.SCRATCH, "spill", hashlib.sha1(unit_uri.encode()).hexdigest()[:20] + ".pairs")


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
