"""Every input format takes the shard-first path (batch-export shards and chips through the spill)
and writes, byte for byte, what the general path (whole pairs grouped in memory) writes: rejects
and duplicates included, local and on gs://."""

import copy
import gzip
import zlib
from collections import Counter

import numpy as np
import pytest

from senclr import storage, tfrecord
from senclr.pipeline import preprocess as preprocess_mod
from senclr.pipeline import publish, slices, spill
from senclr.pipeline.preprocess import preprocess
from senclr.schema import SPLITS
from tests.helpers import ee_table_example, random_pair, write_batch_export, write_chip, write_raw_archive

P = 16


def _pairs(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [random_pair(rng, P, i, labels=False) for i in range(n)]


def _tables(base: str) -> str:
    """Two exports sharing pairs: exact copies, a cloudy copy of a pair the other has clear, a
    copy that is clear where the first export's is cloudy, a broken record, a truncated shard."""
    pairs = _pairs(14, 3)
    again = [copy.deepcopy(p) for p in pairs[:7]]  # exp-b: shards [0 1 2] [3 4 5] [6]
    pairs[4].cloud[:] = 0.01  # the first export's copy is cloudy, the second's clear: the second is kept
    again[0].cloud[:] = 0.01  # the second export's copy is cloudy: the first is kept
    write_batch_export(storage.join(base, "exp-a"), pairs, per_task=4)
    shards = write_batch_export(storage.join(base, "exp-b"), again, per_task=3)
    records = [ee_table_example(p) for p in again[:3]]
    records[1] = b"not a tf.Example"
    storage.write_bytes(shards[0], gzip.compress(tfrecord.encode_file(records)))
    whole = storage.read_bytes(shards[2])
    storage.write_bytes(shards[2], whole[: len(whole) // 2])  # duplicates 2, 3 and 5 remain
    return storage.join(base, "exp-*", "**")


def _chips(base: str) -> str:
    """Three chips, one of them in two folders (every patch a duplicate), one too small to cut."""
    for i in range(2):
        write_chip(storage.join(base, "chips-a"), f"Spain_{i}", size=48, seed=i)
    write_chip(storage.join(base, "chips-b"), "Spain_1", size=48, seed=7)  # same ids, other values
    write_chip(storage.join(base, "chips-b"), "Spain_5", size=8, seed=5)
    return storage.join(base, "chips-*", "**")


def _mixed(base: str) -> str:
    """An archive, an export and chips with pairs in common between the archive and the export."""
    pairs = _pairs(10, 4)
    write_raw_archive(storage.join(base, "m", "raw"), pairs[:6])
    write_batch_export(storage.join(base, "m", "exp"), pairs[3:], per_task=4)
    write_chip(storage.join(base, "m", "chips"), "Spain_2", size=32, seed=2, label=False)
    return storage.join(base, "m", "*", "**")


def _files(out: str) -> dict:
    """Every file of a dataset, local or gs://, by its path under the dataset."""
    return {f[len(out) + 1:]: storage.read_bytes(f) for f in storage.list_files(out)}


@pytest.mark.parametrize(("where", "make"), [("local", _tables), ("local", _chips), ("local", _mixed), ("gcs", _tables)],
                         ids=["local-tables", "local-chips", "local-mixed", "gcs-tables"])
def test_shard_first_writes_what_the_general_path_writes(where, make, tmp_path, request, monkeypatch):
    base = str(tmp_path / "in") if where == "local" else request.getfixturevalue("gcs") + f"/formats-{tmp_path.name}"
    given = make(base)
    out = base + "-ds"
    got = {}
    runs = {"general": {}, "shard-first": {}, "sliced": dict.fromkeys(SPLITS, 3),
            "partly sliced": {"train": 3, "val": 1, "test": 2}}  # slices per shard, as if 2+ workers shared the run
    for path, k in runs.items():
        monkeypatch.setattr(preprocess_mod, "GENERAL_PATH", path == "general")
        monkeypatch.setattr(slices, "per_shard", lambda workers, num_shards, fractions: k or dict.fromkeys(num_shards, 1))
        storage.remove_tree(out)  # a fresh output each time: the same build folder name
        m = preprocess(given, out, patch_size=P, cell_deg=1.0, shard_mb=0.1)  # ~11 records a shard
        got[path] = (m["counts"], m["statistics"], _files(out))
        assert not [f for f in got[path][2] if publish.SCRATCH in f]
    counts = got["general"][0]
    assert counts["read"] == counts["kept"] + sum(counts["rejected"].values())
    if make is not _mixed:
        assert counts["rejected"].get("duplicate", 0) >= 3 and len(counts["rejected"]) >= 2
    want = got.pop("general")
    assert len(want[2]) >= 3
    for path, (counts, stats, files) in got.items():
        assert counts == want[0] and stats == want[1], path
        assert files.keys() == want[2].keys(), path
        for f, data in want[2].items():
            assert files[f] == data, (path, f)


def test_slices_per_shard_follow_the_workers():
    from senclr.beam_flags import worker_processes

    five, fr = {"train": 3, "val": 1, "test": 1}, (0.8, 0.1, 0.1)
    assert slices.per_shard(1, five, fr) == dict.fromkeys(SPLITS, 1)  # one worker: no slicing
    assert slices.per_shard(2, {"train": 52, "val": 6, "test": 6}, fr) == dict.fromkeys(SPLITS, 1)  # enough shards
    assert slices.per_shard(2, five, fr) == {"train": 17, "val": 7, "test": 6}  # ~1/64 of the pairs each, 64 in all
    assert slices.per_shard(3, five, fr) == {"train": 27, "val": 11, "test": 10}  # 98 -> 102: the largest slices cut
    assert slices.per_shard(2, five, (1.0, 0.0, 0.0)) == {"train": 22, "val": 1, "test": 1}  # 66: a multiple of 2
    assert slices.per_shard(64, {"train": 1, "val": 1, "test": 1}, fr)["train"] == slices.MAX_SLICES
    assert worker_processes([]) == 1 == worker_processes(["--direct_running_mode=multi_threading", "--direct_num_workers=4"])
    assert worker_processes(["--direct_running_mode=multi_processing", "--direct_num_workers=3"]) == 3
    assert worker_processes(["--runner=DataflowRunner", "--max_num_workers=20"]) == 20
    assert worker_processes(["--runner=DataflowRunner"]) is None
    counts = [0] * 4
    for i in range(4000):
        counts[slices.slice_of(f"{i:016x}", 5, 4)] += 1
    assert min(counts) > 850  # even slices


def test_work_items_are_even_whatever_the_shard_sizes():
    """Beam's multi-process runner deals a step's items to its workers round-robin, once, in an
    order we do not choose: items of unequal size (a train shard against a val shard), or one item
    more for one worker, would leave another waiting."""
    import random

    from senclr.pipeline.shardfirst import assign

    fractions, names = (0.8, 0.1, 0.1), ("train",) * 8 + ("val", "test")
    for num_shards in ({"train": 1, "val": 1, "test": 1}, {"train": 3, "val": 1, "test": 1}):  # 1000, 10k pairs
        for workers in (2, 3):
            k = slices.per_shard(workers, num_shards, fractions)
            pairs = Counter()
            for i in range(8000):
                pair_id, name = f"{i:016x}", names[i % 10]
                where = (name, zlib.crc32(pair_id.encode()) % num_shards[name])
                for item, _ in assign((pair_id, [("o", "u", (), where)]), num_shards, k):
                    pairs[item] += 1
            assert all(item[2] < k[item[0]] for item in pairs) and len(pairs) == sum(num_shards[n] * k[n] for n in k)
            sizes = sorted(pairs.values(), reverse=True)
            most, fewest = -(-len(sizes) // workers), len(sizes) // workers  # items per worker
            worst = sum(sizes[:most]) / sum(sizes[-fewest:])  # the largest items dealt to one worker
            assert worst < 1.35, (num_shards, workers, k, worst)  # 2-9x with as many slices in every shard
            assert len(sizes) % workers == 0
            rng, dealt = random.Random(0), []
            for _ in range(100):  # blind dealings: the busiest worker's share against the mean
                rng.shuffle(sizes)
                dealt.append(max(sum(sizes[w::workers]) for w in range(workers)) * workers / sum(sizes))
            assert sorted(dealt)[50] < 1.025, (num_shards, workers, k, sorted(dealt)[50])  # 1.02-1.09 with 8 a worker
    assert {item for item, _ in assign(("00aa", [("o", "u", (), ("val", 0))]), {"val": 1})} == {("val", 0, 0)}


def test_a_spilled_pair_reads_back_whole(tmp_path):
    pair = random_pair(np.random.default_rng(0), P, 0, labels=True)
    blob = spill.encode(pair)
    uri = str(tmp_path / "x.pairs")
    storage.write_bytes(uri, b"head" + blob + b"tail")
    back = spill.read(uri, 4, len(blob), "tasks/a.tfrecord.gz#3")
    assert back.origin == "tasks/a.tfrecord.gz#3" and back.meta == pair.meta
    for name in ("s1", "s2", "cloud"):
        a, b = getattr(pair, name), getattr(back, name)
        assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
    assert pair.labels.keys() == back.labels.keys()
    assert all(np.array_equal(pair.labels[k], back.labels[k]) and pair.labels[k].dtype == back.labels[k].dtype
               for k in pair.labels)
    with pytest.raises(OSError, match="expected"):
        spill.read(uri, 4, len(blob) + 100, "x")


def test_units_travel_in_chunks_sized_by_their_pairs():
    from senclr.pipeline import sources

    pairs = [sources.Unit(sources.ARCHIVE, f"r/pairs/{i:05d}.json") for i in range(10_000)]
    c = sources.chunks(pairs, 10_000, workers=2)
    assert [u for chunk in c for u in chunk] == pairs and len(c[0]) == sources.PAIRS_PER_CHUNK
    assert len(sources.chunks(pairs[:100], 100, workers=2)) >= 2 * sources.CHUNKS_PER_WORKER
    shards = [sources.Unit(sources.BATCH, f"e/tasks/{i}.tfrecord.gz", plan="e/ledger/plan.json") for i in range(10)]
    assert [len(chunk) for chunk in sources.chunks(shards, 10_000)] == [1] * 10  # 1000 pairs each: alone
    chips = sources.chunks([sources.Unit(sources.CHIPS, f"c/{i}_S1Hand.tif") for i in range(625)], 10_000)
    assert {len(chunk) for chunk in chips[:-1]} == {4} and len(chips[-1]) == 1  # 16 patches each
    assert sources.chunk_from_json(sources.chunk_to_json(shards[:3])) == shards[:3]
