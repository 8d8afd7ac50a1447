"""Every raw format read back: raw archives, batch exports (Earth Engine table TFRecords), GeoTIFF
chips; found from a folder, a manifest or a glob; on local paths and gs:// (gcp-storage-emulator)."""

import dataclasses
import gzip
import os

import numpy as np
import pytest

from senclr import storage, tfrecord
from senclr.bands import S2_BANDS
from senclr.casualty import Casualty
from senclr.errors import InputError
from senclr.pair import meta_from_plan_entry
from senclr import raw_chips, raw_ee_table
from senclr.pair import PatchPair
from senclr.pipeline import sources, transforms
from senclr.pipeline.preprocess import preprocess
from tests.conftest import SHARED_DATA
from tests.helpers import (dataset_files, ee_table_example, plan_entry, random_pair, write_batch_export, write_chip,
                           write_raw_archive)

CHIP = SHARED_DATA / "sen1floods11-sample"


@pytest.fixture(params=["local", "gcs"])
def base(request, tmp_path):
    """A fresh folder: a local path, or a prefix in the Cloud Storage emulator."""
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("gcs") + f"/src-{tmp_path.name}"


@pytest.fixture
def pairs():
    rng = np.random.default_rng(3)
    return [random_pair(rng, 16, i, labels=False) for i in range(12)]


def _read_all(inputs):
    """Read every unit the way the pipeline does (ReadUnitFn): pairs, then rejections."""
    fn = transforms.ReadUnitFn(inputs.patch_size, inputs.labels)
    out = [x for u in inputs.units for x in fn.process(u)]
    assert not [x for x in out if not isinstance(x, PatchPair)], "no rejections expected"
    return out


def _same_pair(got, want, source):
    assert got.meta == dataclasses.replace(want.meta, source=source)
    np.testing.assert_array_equal(got.s1, want.s1)
    np.testing.assert_array_equal(got.s2, want.s2)
    np.testing.assert_array_equal(got.cloud, want.cloud)
    assert got.s1.dtype == np.float32 and got.s2.dtype == np.uint16 and got.cloud.dtype == np.float32


def test_glob_keeps_star_inside_one_folder(base):
    for name in ("a/pairs/1.json", "b/pairs/2.json", "b/deep/pairs/3.json", "b/pairs/4.npy"):
        storage.write_text(storage.join(base, name), "{}")
    names = lambda pattern: [u[len(storage.join(base, "")):] for u in storage.glob(storage.join(base, pattern))]
    assert names("*/pairs/*.json") == ["a/pairs/1.json", "b/pairs/2.json"]
    assert names("**/pairs/*.json") == ["a/pairs/1.json", "b/deep/pairs/3.json", "b/pairs/2.json"]
    assert names("[!a]/pairs/?.*") == ["b/pairs/2.json", "b/pairs/4.npy"]
    assert names("a/pairs/1.json") == ["a/pairs/1.json"] and names("nowhere/*") == []


def test_raw_archive_from_folder_manifest_and_glob(base, pairs):
    write_raw_archive(storage.join(base, "one"), pairs[:5])
    write_raw_archive(storage.join(base, "two"), pairs[5:])
    for given in ("one", "one/manifest.json"):
        inputs = sources.resolve(storage.join(base, given))
        assert [s.kind for s in inputs.sources] == [sources.ARCHIVE] and len(inputs.units) == 5
        assert inputs.s2_bands == S2_BANDS["l1c"] and inputs.patch_size == 16 and inputs.labels == ("water", "landcover")
    both = sources.resolve(storage.join(base, "*/pairs/*.json"))
    assert len(both.sources) == 2 and len(both.units) == 12
    assert {p.pair_id for p in _read_all(both)} == {p.pair_id for p in pairs}
    assert len(sources.resolve(storage.join(base, "*/manifest.json")).units) == 12


def test_glob_reads_an_unfinished_archive_that_a_folder_refuses(tmp_path, pairs):
    from senclr import raw_archive

    for p in pairs[:3]:
        raw_archive.write_pair(str(tmp_path / "raw"), p)  # pairs, no manifest yet
    with pytest.raises(InputError, match="unfinished"):
        sources.resolve(str(tmp_path / "raw"))
    inputs = sources.resolve(str(tmp_path / "raw" / "pairs" / "*.json"))
    assert len(inputs.units) == 3 and inputs.patch_size == 16 and inputs.s2_bands == S2_BANDS["l1c"]


def test_plan_entry_to_meta_is_the_exports_conversion(pairs):
    from senclr.export.earthengine.plan import pair_meta

    entry = plan_entry(pairs[0])
    assert pair_meta(entry, "batch") == meta_from_plan_entry(entry, "ee-batch")
    assert meta_from_plan_entry(entry, "x") == dataclasses.replace(pairs[0].meta, source="x")


def test_batch_export_reads_back_every_pair(base, pairs):
    shards = write_batch_export(storage.join(base, "exp"), pairs, per_task=5)
    inputs = sources.resolve(storage.join(base, "exp"))
    assert [s.kind for s in inputs.sources] == [sources.BATCH] and [u.uri for u in inputs.units] == shards
    assert inputs.recorded("min_clear") == 0.8 and inputs.expected_pairs == 12 and inputs.labels == ()
    got = {p.pair_id: p for p in _read_all(inputs)}
    assert len(got) == 12
    for p in pairs:
        _same_pair(got[p.pair_id], p, "ee-batch")
    assert len(sources.resolve(storage.join(base, "exp", "tasks", "*.tfrecord.gz")).units) == 3


def test_batch_shard_written_by_tensorflow_in_earth_engine_layout(tmp_path, pairs):
    """TensorFlow's own Example and GZIP writer (the protobuf Earth Engine writes), read without it."""
    tf = pytest.importorskip("tensorflow")
    out = str(tmp_path / "exp")
    write_batch_export(out, pairs, per_task=100)
    shard = raw_ee_table.list_shards(out)[0]
    with tf.io.TFRecordWriter(shard, options="GZIP") as w:
        for p in pairs:
            feats = {"pair_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[p.pair_id.encode()]))}
            for name, arr in [*zip(p.s1_bands, np.moveaxis(p.s1, -1, 0)), *zip(p.s2_bands, np.moveaxis(p.s2, -1, 0)), ("cs_cdf", p.cloud)]:
                feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=arr.ravel().astype(np.float32)))
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
    plan = raw_ee_table.read_plan(raw_ee_table.plan_uri(out))
    got = list(raw_ee_table.read_shard(shard, plan))
    assert [g.pair_id for g in got] == [p.pair_id for p in pairs]
    for g, p in zip(got, pairs):
        _same_pair(g, p, "ee-batch")


def test_batch_values_are_rounded_and_clipped_like_the_npy(tmp_path, pairs):
    p = pairs[0]
    out = str(tmp_path / "exp")
    write_batch_export(out, [p])
    plan = raw_ee_table.read_plan(raw_ee_table.plan_uri(out))
    feats = {"pair_id": p.pair_id.encode(), "VV": np.full(256, -9999.0), "VH": np.zeros(256), "cs_cdf": np.ones(256)}
    feats.update({b: np.full(256, 70000.0) for b in S2_BANDS["l1c"]})
    feats["B2"] = np.array([123.4, 123.6, -5.0, np.nan] * 64)
    from senclr.example_proto import encode_example

    got = raw_ee_table.decode_pair(encode_example(feats), plan, "x")
    assert got.s2[0, :4, 1].tolist() == [123, 124, 0, 0] and got.s2[..., 0].max() == 65535
    assert got.s1[0, 0, 0] == -9999.0  # Earth Engine's masked S1 fill: the range filter rejects it


def test_batch_record_problems_cost_only_that_pair(tmp_path, pairs):
    out = str(tmp_path / "exp")
    write_batch_export(out, pairs[:2])
    plan = raw_ee_table.read_plan(raw_ee_table.plan_uri(out))
    missing = raw_ee_table.decode_pair(ee_table_example(pairs[0], drop=("B10",)), plan, "s#0")
    assert isinstance(missing, Casualty) and missing.reason == "missing_bands" and "B10" in missing.detail
    stranger = raw_ee_table.decode_pair(ee_table_example(pairs[5]), plan, "s#1")
    assert stranger.reason == "unreadable" and stranger.pair_id == pairs[5].pair_id and "plan" in stranger.detail
    garbage = raw_ee_table.decode_pair(b"\xff\xff\xff", plan, "s#2")
    assert garbage == Casualty("", "unreadable", garbage.detail, "s#2")


@pytest.mark.skipif(not CHIP.exists(), reason="real Sen1Floods11 chip not present (../shared/data)")
def test_sen1floods11_chip_cut_into_128px_patches(tmp_path):
    inputs = sources.resolve(str(CHIP), patch_size=128)
    assert [s.kind for s in inputs.sources] == [sources.CHIPS] and len(inputs.units) == 1
    assert inputs.labels == ("water",) and inputs.patch_size == 128 and inputs.s2_bands == S2_BANDS["l1c"]
    patches = _read_all(inputs)
    whole = next(raw_chips.read_chip(inputs.units[0].chip))
    assert len(patches) == 16 and len({p.pair_id for p in patches}) == 16
    a, _, c, _, e, f = whole.meta.transform
    for p in patches:
        assert p.check_shapes() is None and p.shape == (128, 128)
        row, col = map(int, p.origin.rsplit("#", 1)[1].split(","))
        assert p.meta.transform[2] == pytest.approx(c + a * col) and p.meta.transform[5] == pytest.approx(f + e * row)
        assert p.meta.lon == pytest.approx(c + a * (col + 64), abs=1e-6) and p.meta.lat == pytest.approx(f + e * (row + 64), abs=1e-6)
        np.testing.assert_array_equal(p.s2, whole.s2[row : row + 128, col : col + 128])
        np.testing.assert_array_equal(p.labels["water"], whole.labels["water"][row : row + 128, col : col + 128])
        assert p.meta.s1_orbit == "DESCENDING" and p.meta.dt_hours == -24.0
    m = preprocess(str(CHIP), str(tmp_path / "ds"), patch_size=128, cell_deg=0.001, min_clear=0.0)
    c = m["counts"]
    assert c["read"] == 16 and c["kept"] + sum(c["rejected"].values()) == 16 and m["labels"] == ["water"]


def test_chips_in_bucket_layout_and_utm(base):
    write_chip(storage.join(base, "flood"), "Spain_1", size=40, layout="bucket", crs="EPSG:32631")
    write_chip(storage.join(base, "flood"), "Spain_2", size=40, layout="bucket", crs="EPSG:32631", seed=1, label=False)
    chips = raw_chips.list_chips(storage.join(base, "flood"))
    assert [(c.stem, bool(c.label)) for c in chips] == [("Spain_1", True), ("Spain_2", False)]
    inputs = sources.resolve(storage.join(base, "flood"), patch_size=16)
    assert inputs.labels == () and inputs.expected_pairs == 8  # 40 px: 2 x 2 patches of 16, edges dropped
    patches = _read_all(inputs)
    assert len(patches) == 8 and all(p.labels == {} for p in patches)
    assert patches[0].meta.crs == "EPSG:32631" and patches[0].meta.lon == pytest.approx(3.0, abs=0.01)
    assert patches[1].meta.transform[2] == patches[0].meta.transform[2] + 160  # next column, 16 px x 10 m
    assert sources.resolve(storage.join(base, "flood")).patch_size == 40  # no --patch-size: whole chips


def test_mixed_layouts_and_flags_are_checked(tmp_path, pairs):
    write_raw_archive(str(tmp_path / "a"), pairs[:3])
    rng = np.random.default_rng(0)
    write_raw_archive(str(tmp_path / "b"), [random_pair(rng, 32, 0)], patch_size=32)
    with pytest.raises(InputError, match="different patch sizes"):
        sources.resolve(str(tmp_path / "*" / "manifest.json"))
    with pytest.raises(InputError, match="--patch-size 8 cuts GeoTIFF chips"):
        sources.resolve(str(tmp_path / "a"), patch_size=8)
    write_chip(str(tmp_path / "c"), "X_1", size=32, s2_bands=12)
    with pytest.raises(InputError, match="different Sentinel-2 bands"):
        sources.resolve(str(tmp_path / "[ac]" / "**"), patch_size=16)


def test_preprocess_reads_a_batch_export_and_chips_together_on_gcs(gcs, pairs):
    base = gcs + "/mixed"
    write_batch_export(base + "/exp", pairs, per_task=4)
    write_chip(base + "/chips", "Spain_9", size=32, label=False)
    m = preprocess(base + "/*/**", base + "-ds", patch_size=16, cell_deg=1.0, min_clear=0.5)
    assert m["counts"] == {"read": 16, "kept": 16, "rejected": {}}
    assert sorted(s["kind"] for s in m["inputs"]) == [sources.BATCH, sources.CHIPS]
    assert storage.exists(base + "-ds/manifest.json")


def test_tfrecord_stream_reads_plain_and_gzip(tmp_path):
    records = [b"a", b"", b"x" * 70000]
    (tmp_path / "r.tfrecord").write_bytes(tfrecord.encode_file(records))
    (tmp_path / "r.tfrecord.gz").write_bytes(gzip.compress(tfrecord.encode_file(records)))
    for name in ("r.tfrecord", "r.tfrecord.gz"):
        assert list(tfrecord.read_file(os.path.join(tmp_path, name))) == records


def test_cli_patch_size_and_multiprocess_run_is_byte_identical(tmp_path, pairs):
    """Batch shards and chips through the CLI, then under multi_processing (every DoFn pickled)."""
    from click.testing import CliRunner

    from senclr.cli import cli

    write_batch_export(str(tmp_path / "in" / "exp"), pairs, per_task=5)
    for i in range(2):
        write_chip(str(tmp_path / "in" / "chips"), f"Spain_{i}", size=48, seed=i)
    given = str(tmp_path / "in" / "*" / "**")
    r = CliRunner().invoke(cli, ["preprocess", "--input", given, "--output", str(tmp_path / "a"), "--patch-size", "16", "--cell-deg", "1"])
    assert r.exit_code == 0, r.output
    assert "read 30, kept 30" in r.output
    preprocess(given, str(tmp_path / "b"), patch_size=16, cell_deg=1.0,
               beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    files = dataset_files(str(tmp_path / "a"))
    assert files == dataset_files(str(tmp_path / "b"))
    for f in files:
        if f != "manifest.json":
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
