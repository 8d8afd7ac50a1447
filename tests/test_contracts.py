"""Core contracts: band registry, PatchPair, raw archive, record schema v1, readers, manifest."""

import json
import os

import numpy as np
import pytest

from senclr import bands, manifest, raw_archive, tfrecord
from senclr.dataset import iter_records
from senclr.example_proto import decode_example, encode_example
from senclr.pair import make_pair_id
from senclr.schema import decode_record, encode_record
from tests.conftest import SHARED_DATA
from tests.helpers import random_pair, write_tiny_dataset

CHIP = SHARED_DATA / "sen1floods11-sample"


def test_band_registry():
    assert bands.S2_L1C.band_names == ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
    assert "B10" not in bands.S2_L2A.band_names and len(bands.S2_L2A.band_names) == 12
    assert bands.S1_GRD.band("VV").unit == "dB"
    assert bands.CLOUD_SCORE_PLUS.band("cs_cdf").valid_max == 1.0
    assert bands.s2_collection("L2A").ee_id == "COPERNICUS/S2_SR_HARMONIZED"
    with pytest.raises(ValueError, match="l1c"):
        bands.s2_collection("l3")
    with pytest.raises(KeyError, match="B8A"):
        bands.S2_L1C.band("B13")


def test_pair_id_is_stable_and_specific():
    a = make_pair_id(10.123456, 45.0, "S1A_x", "S2_y")
    assert a == make_pair_id(10.1234561, 45.0, "S1A_x", "S2_y") and len(a) == 16
    assert a != make_pair_id(10.123456, 45.0, "S1B_x", "S2_y")


def test_raw_archive_round_trip(tmp_path):
    pair = random_pair(np.random.default_rng(0), 12)
    raw_archive.write_pair(str(tmp_path), pair)
    [uri] = raw_archive.list_pairs(str(tmp_path))
    back = raw_archive.read_pair(uri)
    assert back.meta == pair.meta and back.s2_bands == pair.s2_bands
    for a, b in ((back.s1, pair.s1), (back.s2, pair.s2), (back.cloud, pair.cloud), (back.labels["water"], pair.labels["water"])):
        np.testing.assert_array_equal(a, b)
    arr = np.load(uri[:-5] + ".npy")
    assert arr.dtype.names[:3] == ("VV", "VH", "B1") and arr["B8A"].dtype == np.uint16


def test_incomplete_pair_is_not_listed(tmp_path):
    pair = random_pair(np.random.default_rng(0), 8)
    npy, _ = raw_archive.pair_uris(str(tmp_path), pair.pair_id)
    os.makedirs(os.path.dirname(npy))
    open(npy, "wb").write(raw_archive.encode_npy(raw_archive.to_structured(pair)))
    assert raw_archive.list_pairs(str(tmp_path)) == []  # no .json yet: not complete


def test_example_codec_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    feats = {"a": b"\x00\xffbytes", "f": [1.5, -2.25], "i": [3, -7, 2**40], "s": "text"}
    ours = encode_example(feats)
    ex = tf.train.Example.FromString(ours)
    assert ex.features.feature["i"].int64_list.value == [3, -7, 2**40]
    assert ex.features.feature["f"].float_list.value == [1.5, -2.25]
    theirs = decode_example(ex.SerializeToString())
    assert theirs == {"a": [b"\x00\xffbytes"], "f": [1.5, -2.25], "i": [3, -7, 2**40], "s": [b"text"]}


def test_tfrecord_framing_matches_tensorflow(tmp_path):
    tf = pytest.importorskip("tensorflow")
    path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        for r in (b"one", b"", b"three" * 100):
            w.write(r)
    data = open(path, "rb").read()
    assert list(tfrecord.iter_records(data)) == [b"one", b"", b"three" * 100]
    assert tfrecord.encode_file([b"one", b"", b"three" * 100]) == data
    with pytest.raises(tfrecord.CorruptRecordError, match="truncated"):
        list(tfrecord.iter_records(data[:-3]))
    with pytest.raises(tfrecord.CorruptRecordError, match="checksum"):
        list(tfrecord.iter_records(data[:13] + b"X" + data[14:]))


def test_record_round_trip_numpy():
    pair = random_pair(np.random.default_rng(5), 10)
    rec = decode_record(encode_record(pair, "val"))
    assert rec["pair_id"] == pair.pair_id and rec["split"] == "val"
    np.testing.assert_array_equal(rec["s1"], pair.s1.astype(np.float16))
    np.testing.assert_array_equal(rec["s2"], pair.s2)
    np.testing.assert_array_equal(rec["water"], pair.labels["water"])
    assert rec["dt_hours"] == pytest.approx(-4.5)


def test_tf_reader_agrees_with_numpy_reader_bit_for_bit(tmp_path):
    pytest.importorskip("tensorflow")
    from senclr.dataset_tf import make_dataset

    write_tiny_dataset(str(tmp_path), n=8, size=8)
    for normalized in (False, True):
        np_recs = list(iter_records(str(tmp_path), normalized=normalized, s2_bands=["B4", "B8"]))
        tf_recs = list(make_dataset(str(tmp_path), s2_bands=["B4", "B8"], labels=("water", "landcover"), normalized=normalized))
        assert len(np_recs) == len(tf_recs) == 8
        for a, b in zip(np_recs, tf_recs):
            for key in ("s1", "s2", "water", "landcover"):
                assert a[key].dtype == b[key].numpy().dtype
                assert a[key].tobytes() == b[key].numpy().tobytes(), key


def test_reader_refuses_missing_bands(tmp_path):
    from senclr.errors import InputError

    write_tiny_dataset(str(tmp_path), n=4, size=8)
    with pytest.raises(InputError, match="B13"):
        next(iter_records(str(tmp_path), s2_bands=["B13"]))


def _valid_dataset_manifest(tmp_path):
    write_tiny_dataset(str(tmp_path), n=8, size=8)
    return json.loads((tmp_path / "manifest.json").read_text())


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda m: m.pop("counts"), "counts: missing"),
        (lambda m: m["counts"].update(read=99), "counts.read: 99 != kept 8 + rejected 0"),
        (lambda m: m.update(schema_version=7), "schema_version: 7 is not supported"),
        (lambda m: m.update(kind="blob"), "kind: 'blob' is not one of"),
        (lambda m: m["counts"].update(kept="8"), "counts.kept: expected int, got str"),
        (lambda m: m["bands"].update(s2=[]), "bands.s2: empty"),
        (lambda m: m["bands"].update(s2_level="l2a"), "bands.s2: ['B10'] are not S2 bands (level l2a)"),
        (lambda m: m["bands"].update(s2_level="l3"), "bands.s2_level: 'l3' is not one of"),
        (lambda m: m["statistics"].pop("B8A"), "statistics.B8A: missing"),
        (lambda m: m["shards"][0].update(records=100), "splits.train: 4 records, but its shards hold 100"),
        (lambda m: m["shards"][0].pop("sha256"), "shards[0]: needs path, split, records and sha256"),
    ],
)
def test_manifest_validation_names_the_problem(tmp_path, mutate, message):
    m = _valid_dataset_manifest(tmp_path)
    assert manifest.problems_of(m) == []
    mutate(m)
    assert any(message in p for p in manifest.problems_of(m)), manifest.problems_of(m)
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(manifest.ManifestError, match="invalid"):
        manifest.read(str(tmp_path))


def test_manifest_read_errors(tmp_path):
    with pytest.raises(manifest.ManifestError, match="not found"):
        manifest.read(str(tmp_path))
    (tmp_path / "manifest.json").write_text("[1, 2")
    with pytest.raises(manifest.ManifestError, match="not valid JSON"):
        manifest.read(str(tmp_path))
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(manifest.ManifestError, match="cannot be read"):
        manifest.read(str(tmp_path))
    (tmp_path / "manifest.json").rmdir()
    m = _valid_dataset_manifest(tmp_path)
    with pytest.raises(manifest.ManifestError, match="expected a 'raw' manifest"):
        manifest.read(str(tmp_path), kind="raw")
    with pytest.raises(manifest.ManifestError, match="refusing"):
        manifest.write(str(tmp_path), {**m, "counts": {}})


def test_manifest_never_stores_secrets():
    params = {"project": "p", "ee_credentials": "/home/me/key.json", "access_token": "ya29", "seed": 1}
    assert manifest.scrub(params) == {"project": "p", "seed": 1}
    flags = ["--runner", "DataflowRunner", "--s3_secret_access_key", "SUPERSECRET", "--azure_connection_string=AccountKey=abc",
             "--service_account_key_file", "/k.json", "--num_workers=2"]
    kept = manifest.scrub({"beam_args": flags})["beam_args"]
    assert kept == ["--runner", "DataflowRunner", "--num_workers=2"]


@pytest.mark.skipif(not CHIP.exists(), reason="real Sen1Floods11 chip not present (../shared/data)")
def test_sen1floods11_chip_loads_as_one_pair_on_one_grid(tmp_path):
    from senclr.raw_geotiff import read_geotiff_pair

    pair = read_geotiff_pair(
        str(CHIP / "Spain_7370579_S1Hand.tif"), str(CHIP / "Spain_7370579_S2Hand.tif"),
        str(CHIP / "Spain_7370579_LabelHand.tif"), str(CHIP / "Sen1Floods11_Metadata.geojson"),
    )
    assert pair.check_shapes() is None and pair.shape == (512, 512)
    assert pair.s2_bands == bands.S2_BANDS["l1c"] and pair.meta.crs == "EPSG:4326"
    assert -40 < pair.s1[..., 0].mean() < 0 and np.isfinite(pair.s1).all()
    assert (pair.labels["water"] == -1).sum() == 99
    assert 0.25 < (pair.labels["water"] == 1).mean() < 0.3
    assert pair.meta.s1_orbit == "DESCENDING" and pair.meta.dt_hours == -24.0
    s2_on_water = pair.s2[..., 7][pair.labels["water"] == 1].mean()
    s2_on_land = pair.s2[..., 7][pair.labels["water"] == 0].mean()
    assert s2_on_water < s2_on_land  # NIR is dark over water: the sensors agree on one grid
    raw_archive.write_pair(str(tmp_path), pair)  # and it travels through the raw archive unchanged
    back = raw_archive.read_pair(raw_archive.list_pairs(str(tmp_path))[0])
    assert back.meta.to_json() == pair.meta.to_json()  # (NaN cloud % is not equal to itself)
    np.testing.assert_array_equal(back.s1, pair.s1)
    np.testing.assert_array_equal(back.labels["water"], pair.labels["water"])


def test_geotiff_pair_in_utm_gets_lonlat_centre_and_valid_json(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from senclr.raw_geotiff import read_geotiff_pair

    tr = from_origin(500000, 5000000, 10, 10)  # EPSG:32631: the centre is near 3 E, 45.15 N
    for name, count, dtype in (("X_1_S1Hand.tif", 2, "float32"), ("X_1_S2Hand.tif", 13, "uint16")):
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=16, height=16, count=count, dtype=dtype, crs="EPSG:32631", transform=tr) as d:
            d.write(np.ones((count, 16, 16), dtype))
    pair = read_geotiff_pair(str(tmp_path / "X_1_S1Hand.tif"), str(tmp_path / "X_1_S2Hand.tif"))
    assert pair.meta.lon == pytest.approx(3.0, abs=0.01) and pair.meta.lat == pytest.approx(45.153, abs=0.001)
    raw_archive.write_pair(str(tmp_path / "raw"), pair)
    [uri] = raw_archive.list_pairs(str(tmp_path / "raw"))
    text = open(uri).read()
    assert "NaN" not in text and json.loads(text)["dt_hours"] is None
    back = raw_archive.read_pair(uri)
    assert np.isnan(back.meta.s2_cloud_pct) and np.isnan(back.meta.dt_hours)
