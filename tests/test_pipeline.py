"""The Beam preprocessing pipeline: each PTransform alone, then the whole run."""

import hashlib
import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from click.testing import CliRunner

from senclr import manifest as manifest_lib
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.cli import cli
from senclr.dataset import iter_records
from senclr.errors import InputError
from senclr.pipeline import filters, shardfirst, split, transforms
from senclr.beam_flags import unknown_beam_flags
from senclr.pipeline.preprocess import preprocess
from senclr.pipeline.stats import BandStatsFn
from tests.helpers import dataset_files, random_pair, write_raw_archive

CFG = filters.FilterConfig(S2_BANDS["l1c"], 16)


@pytest.fixture
def pairs():
    rng = np.random.default_rng(1)
    return [random_pair(rng, 16, i) for i in range(30)]


@pytest.fixture
def broken_archive(tmp_path, pairs):
    """30 pairs: one cloudy, one with NaN, one corrupt file, one with a wrong patch size."""
    pairs[2].cloud[:] = 0.05
    pairs[4].s1[3, 3, 1] = np.inf
    rng = np.random.default_rng(9)
    pairs[6] = random_pair(rng, 8, 6)
    raw = str(tmp_path / "raw")
    write_raw_archive(raw, pairs)
    with open(os.path.join(raw, "pairs", pairs[8].pair_id + ".npy"), "wb") as f:
        f.write(b"\x93NUMPY truncated")
    return raw


def test_filters_name_each_reason(pairs):
    p = pairs[0]
    assert filters.check(p, CFG) is None
    p.cloud[:] = 0.1
    assert filters.check(p, CFG)[0] == "cloudy"
    p = pairs[1]
    p.s1[0, 0, 0] = -80
    assert filters.check(p, CFG)[0] == "out_of_range"
    p = pairs[2]
    p.s2[:8] = 0
    assert filters.check(p, CFG)[0] == "s2_nodata"
    assert filters.check(pairs[3], filters.FilterConfig(S2_BANDS["l2a"]))[0] == "missing_bands"
    assert filters.check(pairs[4], filters.FilterConfig(S2_BANDS["l1c"], 32))[0] == "bad_shape"


def test_split_is_by_place_and_stable():
    f = (0.8, 0.1, 0.1)
    assert split.split_of(10.01, 45.01, 0.25, f, 0) == split.split_of(10.2, 45.2, 0.25, f, 0)
    got = [split.split_of(lon, lat, 0.25, f, 0) for lon in np.arange(0, 20, 0.25) for lat in np.arange(40, 45, 0.25)]
    share = {s: got.count(s) / len(got) for s in split.SPLITS}
    assert 0.7 < share["train"] < 0.9 and share["val"] > 0.04 and share["test"] > 0.04
    with pytest.raises(ValueError, match="sum"):
        split.parse_fractions("0.5,0.5,0.5")


def test_band_stats_exact_and_merge_order_free(pairs):
    fn = BandStatsFn(S1_BANDS, S2_BANDS["l1c"])
    whole = fn.extract_output(fn.add_inputs(fn.create_accumulator(), pairs))
    a = fn.add_inputs(fn.create_accumulator(), pairs[:7])
    b = fn.add_inputs(fn.create_accumulator(), pairs[7:])
    assert fn.extract_output(fn.merge_accumulators([b, a])) == whole
    vv = np.concatenate([p.s1[..., 0].ravel() for p in pairs])
    assert whole["VV"]["mean"] == pytest.approx(vv.mean(), abs=1e-3)
    assert whole["VV"]["std"] == pytest.approx(vv.std(), abs=1e-3)
    assert whole["VV"]["p1"] == pytest.approx(np.percentile(vv, 1), abs=0.05)
    b2 = np.concatenate([p.s2[..., 1].ravel() for p in pairs]).astype(float)
    assert whole["B2"]["mean"] == pytest.approx(b2.mean(), rel=1e-6)
    assert whole["B2"]["p99"] == pytest.approx(np.percentile(b2, 99), abs=6)


def test_read_and_filter_transforms(broken_archive, pairs):
    from senclr import raw_archive

    uris = raw_archive.list_pairs(broken_archive)
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:  # what senclr runs locally (beam_flags.pipeline)
        read, unreadable = p | beam.Create(uris) | transforms.ReadRawPairs()
        kept, rejected = read | transforms.FilterPairs(CFG)
        assert_that(unreadable | "R1" >> beam.Map(lambda r: (r["pair_id"], r["reason"])), equal_to([(pairs[8].pair_id, "unreadable")]), label="unreadable")
        reasons = rejected | "R2" >> beam.Map(lambda r: r["reason"])
        assert_that(reasons, equal_to(["cloudy", "non_finite", "bad_shape"]), label="reasons")
        assert_that(kept | beam.combiners.Count.Globally(), equal_to([26]), label="kept")


def test_duplicates_are_rejected(pairs):
    twice = pairs[:3] + [pairs[0]]
    with test_pipeline.TestPipeline(runner="FnApiRunner") as p:  # what senclr runs locally (beam_flags.pipeline)
        kept, rejected = p | beam.Create(twice) | transforms.FilterPairs(CFG)
        assert_that(kept | beam.Map(lambda x: x.pair_id), equal_to([x.pair_id for x in pairs[:3]]), label="kept")
        assert_that(rejected | beam.Map(lambda r: r["reason"]), equal_to(["duplicate"]), label="dups")


def test_preprocess_counts_every_pair(tmp_path, broken_archive):
    out = str(tmp_path / "ds")
    m = preprocess(broken_archive, out, cell_deg=1.0)
    c = m["counts"]
    assert c["read"] == 30 and c["read"] == c["kept"] + sum(c["rejected"].values())
    assert c["rejected"] == {"bad_shape": 1, "cloudy": 1, "non_finite": 1, "unreadable": 1}
    rejects = [json.loads(line) for line in open(os.path.join(out, manifest_lib.read(out)["rejects_file"]))]
    assert sorted(r["reason"] for r in rejects) == ["bad_shape", "cloudy", "non_finite", "unreadable"]
    for s in m["shards"]:
        data = open(os.path.join(out, s["path"]), "rb").read()
        assert hashlib.sha256(data).hexdigest() == s["sha256"]
    records = list(iter_records(out))
    assert len(records) == c["kept"] == sum(m["splits"].values())
    assert {r["split"] for r in records} <= set(m["splits"])


def test_multiprocess_run_is_byte_identical_to_in_memory(tmp_path, broken_archive):
    """Runs under multi_processing (every DoFn pickled, as on Dataflow) and compares bytes."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    preprocess(broken_archive, a, cell_deg=1.0)
    preprocess(broken_archive, b, cell_deg=1.0, beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert dataset_files(a) == dataset_files(b)
    for f in dataset_files(a):
        if f != manifest_lib.FILENAME:
            assert open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read(), f
    ma, mb = manifest_lib.read(a), manifest_lib.read(b)
    for m in (ma, mb):
        m["parameters"].pop("output"), m["parameters"].pop("beam_args")
    assert ma == mb


def test_bad_inputs_exit_2_and_write_nothing(tmp_path, broken_archive):
    runner = CliRunner()
    out = tmp_path / "ds"
    cases = [
        ["--input", str(tmp_path / "missing"), "--output", str(out)],
        ["--input", broken_archive, "--output", str(out), "--min-clear", "2"],
        ["--input", broken_archive, "--output", str(out), "--split", "0.9,0.9,0"],
        ["--input", broken_archive, "--output", str(out), "--cell-deg", "0"],
        ["--input", broken_archive, "--output", str(out), "--max-nodata", "-0.1"],
        ["--input", broken_archive, "--output", str(out), "--bogus"],
        ["--input", broken_archive, "--output", str(out), "--", "--not_a_beam_flag=1"],
    ]
    for args in cases:
        r = runner.invoke(cli, ["preprocess", *args])
        assert r.exit_code == 2, (args, r.output)
        assert not out.exists(), args
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(cli, ["preprocess", "--input", str(empty), "--output", str(out)])
    assert r.exit_code == 2 and "manifest" in r.output
    (empty / "manifest.json").write_text("{not json")
    r = runner.invoke(cli, ["preprocess", "--input", str(empty), "--output", str(out)])
    assert r.exit_code == 2 and "not valid JSON" in r.output


def test_all_rejected_is_an_error_with_reasons(tmp_path, pairs):
    for p in pairs:
        p.cloud[:] = 0.0
    raw = str(tmp_path / "raw")
    write_raw_archive(raw, pairs)
    with pytest.raises(InputError, match="cloudy"):
        preprocess(raw, str(tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


def test_overwrite_never_touches_input_and_keeps_old_dataset_on_failure(tmp_path, broken_archive, monkeypatch):
    runner = CliRunner()
    for out in (broken_archive, os.path.join(broken_archive, "ds"), str(tmp_path)):
        r = runner.invoke(cli, ["preprocess", "--input", broken_archive, "--output", out, "--overwrite"])
        assert r.exit_code == 2 and "overlap" in r.output, out
    assert len(os.listdir(os.path.join(broken_archive, "pairs"))) == 60
    (tmp_path / "afile").write_text("x")
    r = runner.invoke(cli, ["preprocess", "--input", broken_archive, "--output", str(tmp_path / "afile")])
    assert r.exit_code == 2 and "existing file" in r.output
    r = runner.invoke(cli, ["preprocess", "--input", broken_archive, "--output", str(tmp_path / "x"), "--", "--runner", "NoSuchRunner"])
    assert r.exit_code == 2 and "NoSuchRunner" in r.output

    out = str(tmp_path / "ds")
    preprocess(broken_archive, out, cell_deg=1.0)
    before = open(os.path.join(out, "manifest.json")).read()

    def boom(*a, **k):
        raise RuntimeError("worker lost")

    monkeypatch.setattr(shardfirst.ReadShardFn, "process", boom)
    with pytest.raises(Exception, match="worker lost"):
        preprocess(broken_archive, out, cell_deg=1.0, overwrite=True)
    assert open(os.path.join(out, "manifest.json")).read() == before
    assert sorted(os.listdir(tmp_path)) == ["afile", "ds", "raw"]  # no staging folder left


def test_existing_output_needs_overwrite(tmp_path, broken_archive):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="--overwrite"):
        preprocess(broken_archive, str(out))
    assert (out / "keep.txt").read_text() == "mine"


def test_unknown_beam_flags_are_found():
    assert unknown_beam_flags(["--runner=DirectRunner", "--direct_num_workers=2"]) == []
    assert unknown_beam_flags(["--runner=DirectRunner", "--frobnicate=1"]) == ["--frobnicate=1"]


def test_the_direct_runner_is_pinned_to_the_fn_api_runner(tmp_path, broken_archive, monkeypatch):
    """Beam's DirectRunner would first try Prism (downloaded from GitHub at run time): the local
    runner senclr runs on, tests and measures is the FnApiRunner, on every machine, with the
    pipeline options reaching its worker processes."""
    from apache_beam.runners.direct import direct_runner
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from senclr.beam_flags import pipeline, worker_processes

    def switch(*_):
        raise AssertionError("the DirectRunner's switch (Prism first) was asked to run the pipeline")

    monkeypatch.setattr(direct_runner.SwitchingDirectRunner, "run_pipeline", switch)
    m = preprocess(broken_archive, str(tmp_path / "ds"), cell_deg=1.0, beam_args=["--runner=DirectRunner"])
    assert m["counts"]["kept"] > 0
    for flags in ([], ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]):
        p = pipeline(flags)
        assert isinstance(p.runner, FnApiRunner)
        options = p.runner._provision_info.provision_info.pipeline_options  # what the workers are given
        assert int(options["beam:option:direct_num_workers:v1"]) == (2 if flags else 1)
    assert not isinstance(pipeline(["--runner=PrismRunner"]).runner, FnApiRunner)  # named, it is used
    assert worker_processes(["--runner=FnApiRunner"]) == 1


def test_preprocess_gcs_to_gcs(gcs, pairs):
    """The same pipeline on gs:// input and output (gcp-storage-emulator, real GCS client)."""
    from senclr import storage

    raw, out = gcs + "/pipe/raw", gcs + "/pipe/ds"
    write_raw_archive(raw, pairs[:12])
    m = preprocess(raw, out, cell_deg=1.0)
    assert m["counts"]["kept"] == 12
    assert storage.exists(out + "/manifest.json")
    assert len(list(iter_records(out))) == 12


def test_cloud_policy_recorded_by_the_export_is_the_default(tmp_path, pairs):
    import json as json_lib

    for p in pairs:
        p.cloud[:] = 0.7  # clear at cs_threshold 0.6, cloudy at 0.75
    raw = str(tmp_path / "raw")
    write_raw_archive(raw, pairs)
    m = json_lib.loads(open(os.path.join(raw, "manifest.json")).read())
    m["filters"] = {"min_clear": 0.5, "cs_threshold": 0.75}
    manifest_lib.write(raw, m)
    with pytest.raises(InputError, match="cloudy"):
        preprocess(raw, str(tmp_path / "a"))
    assert preprocess(raw, str(tmp_path / "b"), cs_threshold=0.6)["counts"]["kept"] == 30


def test_shard_first_path_writes_what_the_general_path_writes(tmp_path, broken_archive, pairs, monkeypatch):
    """Raw archives skip grouping whole pairs; the bytes must not change, duplicates included
    (a second archive: exact copies, a passing copy of a cloudy pair, copies placed elsewhere)."""
    import copy
    import dataclasses

    from senclr.pipeline import preprocess as preprocess_mod

    dup = [copy.deepcopy(pairs[i]) for i in (10, 11, 2, 20, 21, 22)]
    dup[2].cloud[:] = 1.0
    for d in dup[3:]:  # moved to a cell of another split: the copies land in different shards
        here = split.split_of(d.meta.lon, d.meta.lat, 1.0, (0.8, 0.1, 0.1), 0)
        dx = next(x for x in range(1, 100) if split.split_of(d.meta.lon + x, d.meta.lat, 1.0, (0.8, 0.1, 0.1), 0) != here)
        d.meta = dataclasses.replace(d.meta, lon=d.meta.lon + dx)
    write_raw_archive(str(tmp_path / "raw2"), dup)
    (tmp_path / "raw" / "pairs" / (pairs[9].pair_id + ".json")).write_text("{not json")
    glob = str(tmp_path / "raw*" / "pairs" / "*")
    outs, out = {}, str(tmp_path / "ds")  # one output path: the manifest records it
    for name, general in (("general", True), ("shard_first", False)):
        monkeypatch.setattr(preprocess_mod, "GENERAL_PATH", general)
        m = preprocess(glob, out, cell_deg=1.0, shard_mb=0.002)
        outs[name] = str(tmp_path / name)
        os.replace(out, outs[name])
    c = m["counts"]
    assert c["read"] == 36 == c["kept"] + sum(c["rejected"].values()) and c["rejected"]["duplicate"] == 5
    files = dataset_files(outs["general"])
    assert files == dataset_files(outs["shard_first"]) and len(files) > 3
    for f in files:
        with open(os.path.join(outs["general"], f), "rb") as a, open(os.path.join(outs["shard_first"], f), "rb") as b:
            assert a.read() == b.read(), f


def test_large_inputs_default_to_one_process_per_core(monkeypatch):
    from senclr.pipeline.preprocess import MULTIPROCESS_FROM_PAIRS, runner_args

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert runner_args([], 10) == []
    assert runner_args([], MULTIPROCESS_FROM_PAIRS) == ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert runner_args(["--runner=DataflowRunner"], 10**6) == ["--runner=DataflowRunner"]  # the user's flags win


def test_large_unit_lists_go_through_a_file_not_the_job_graph(tmp_path, broken_archive, monkeypatch):
    from senclr.pipeline import preprocess as preprocess_mod
    from tests.helpers import write_batch_export

    rng = np.random.default_rng(7)
    batch = str(tmp_path / "batch")
    write_batch_export(batch, [random_pair(rng, 16, 100 + i) for i in range(6)], per_task=2)
    for name, source in (("archive", broken_archive), ("batch", batch)):
        small = preprocess(source, str(tmp_path / f"{name}-graph"), cell_deg=1.0)
        monkeypatch.setattr(preprocess_mod, "CREATE_LIMIT", 2)
        large = preprocess(source, str(tmp_path / f"{name}-file"), cell_deg=1.0)
        monkeypatch.undo()
        files = dataset_files(str(tmp_path / f"{name}-graph"))
        assert files == dataset_files(str(tmp_path / f"{name}-file"))  # no listing file left behind
        assert small["counts"] == large["counts"] and small["shards"] == large["shards"]


@pytest.mark.parametrize("limit", [10, 2], ids=["in_the_graph", "through_a_file"])
def test_work_lists_are_reshuffled_only_for_several_worker_processes(tmp_path, limit):
    from senclr.beam_lists import listed

    for processes, spread in ((2, True), (None, True), (1, False)):  # None: an autoscaling runner
        p = beam.Pipeline(runner="FnApiRunner")
        items = p | "Work" >> listed(["a", "b", "c"], str(tmp_path / f"list-{processes}.txt"), limit, str, str,
                                     processes)
        assert_that(items, equal_to(["a", "b", "c"]))
        names = [t.unique_name for t in p.to_runner_api().components.transforms.values()]
        reshuffled = any(n.startswith("Work/") and n.endswith("GroupByKey") for n in names)  # a Reshuffle is one
        assert reshuffled == spread, (processes, names)
        p.run().wait_until_finish()


def test_patch_size_out_of_range_exits_2(tmp_path, broken_archive):
    r = CliRunner().invoke(cli, ["preprocess", "--input", broken_archive, "--output", str(tmp_path / "o"), "--patch-size", "3"])
    assert r.exit_code == 2 and "--patch-size" in r.output and not (tmp_path / "o").exists()
