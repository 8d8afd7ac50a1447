"""The writing PTransforms of the preprocessing pipeline, each on its own."""

import os

import apache_beam as beam
import numpy as np
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from senclr import manifest as manifest_lib
from senclr import tfrecord
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.pipeline import transforms
from senclr.pipeline.stats import BandStatsFn
from senclr.schema import decode_record
from tests.helpers import random_pair

FRACTIONS = (0.5, 0.25, 0.25)


def _pairs(n=24):
    rng = np.random.default_rng(4)
    return [random_pair(rng, 8, i) for i in range(n)]


def test_write_dataset_shards_sorted_records_by_split(tmp_path):
    pairs = _pairs()
    out = str(tmp_path)
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:  # what senclr runs locally (beam_flags.pipeline)
        shards = p | beam.Create(pairs) | transforms.WriteDataset(out, 1.0, FRACTIONS, 0, {"train": 2, "val": 1, "test": 1})
        assert_that(shards | beam.Map(lambda s: s["records"]) | beam.CombineGlobally(sum), equal_to([24]))
    files = sorted(os.listdir(out))
    assert set(files) <= {"train-00000.tfrecord", "train-00001.tfrecord", "val-00000.tfrecord", "test-00000.tfrecord"}
    seen = []
    for f in files:
        ids = [decode_record(r)["pair_id"] for r in tfrecord.iter_records(open(os.path.join(out, f), "rb").read())]
        assert ids == sorted(ids)  # deterministic order inside a shard
        assert {decode_record(r)["split"] for r in tfrecord.iter_records(open(os.path.join(out, f), "rb").read())} == {f.split("-")[0]}
        seen += ids
    assert sorted(seen) == sorted(p.pair_id for p in pairs)


def test_write_manifest_runs_last_with_counts_stats_and_rejects(tmp_path):
    pairs = _pairs(6)
    out = str(tmp_path)
    base = manifest_lib.new(
        "dataset", "test", {}, bands={"s1": list(S1_BANDS), "s2": list(S2_BANDS["l1c"]), "s2_level": "l1c"},
        labels=["water"], counts={"read": 7, "kept": 0, "rejected": {}},
    )
    reject = {"pair_id": "x", "reason": "cloudy", "detail": "d", "source": "s"}
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:  # what senclr runs locally (beam_flags.pipeline)
        kept = p | "Pairs" >> beam.Create(pairs)
        shards = kept | transforms.WriteDataset(out, 1.0, FRACTIONS, 0, {"train": 1, "val": 1, "test": 1})
        stats = kept | beam.CombineGlobally(BandStatsFn(S1_BANDS, S2_BANDS["l1c"]))
        rejected = p | "Rejected" >> beam.Create([reject])
        _ = (shards, stats, rejected) | transforms.WriteManifest(out, base)
    m = manifest_lib.read(out, kind="dataset")
    assert m["counts"] == {"read": 7, "kept": 6, "rejected": {"cloudy": 1}}
    assert sum(m["splits"].values()) == 6 and m["statistics"]["VV"]["count"] == 6 * 64
    assert open(os.path.join(out, transforms.REJECTS_FILE)).read().count("\n") == 1
