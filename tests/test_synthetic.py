"""The synthetic source: deterministic, readable archives whose pixels obey the physics we claim."""

from __future__ import annotations

import os
from datetime import datetime

import numpy as np
import pytest
from click.testing import CliRunner

from senclr import manifest as manifest_lib
from senclr.bands import LANDCOVER_CLASSES, S1_BANDS, S2_BANDS, physical_range
from senclr.cli import cli
from senclr.errors import InputError
from senclr.export.synthetic import source
from senclr.export.synthetic.source import generate, make_pair
from senclr.export.synthetic.world import WATER, make_world
from senclr.raw_archive import list_pairs, read_pair

L1C = S2_BANDS["l1c"]
B = {b: i for i, b in enumerate(L1C)}


def _files(folder) -> dict[str, bytes]:
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            path = os.path.join(root, n)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("raw") / "a")
    return out, generate(out, 8, seed=3)


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(archive, tmp_path):
    out, _ = archive
    generate(str(tmp_path / "b"), 8, seed=3)
    generate(str(tmp_path / "c"), 8, seed=4)
    a, b, c = _files(out), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert a == b
    assert len(a) == 2 * 8 + 1
    assert set(a) != set(c) and a["manifest.json"] != c["manifest.json"]


def test_pair_i_does_not_depend_on_how_many_pairs_are_made(tmp_path):
    generate(str(tmp_path / "few"), 2, seed=5)
    generate(str(tmp_path / "more"), 5, seed=5)
    few, more = _files(tmp_path / "few"), _files(tmp_path / "more")
    assert all(more[k] == v for k, v in few.items() if k.startswith("pairs"))


def test_pairs_read_back_with_shapes_dtypes_bands_and_metadata(archive):
    out, m = archive
    assert manifest_lib.read(out, "raw") == m
    assert m["bands"] == {"s1": list(S1_BANDS), "s2": list(L1C), "s2_level": "l1c"}
    assert m["counts"] == {"read": 8, "kept": 8, "rejected": {}}
    assert (m["labels"], m["seed"], m["patch_size"], m["source"]) == (["water", "landcover"], 3, 32, "synthetic")
    uris = list_pairs(out)
    assert len(uris) == 8
    ids = set()
    for uri in uris:
        p = read_pair(uri)
        ids.add(p.pair_id)
        assert os.path.basename(uri) == p.pair_id + ".json"
        assert p.check_shapes() is None and p.shape == (32, 32)
        assert (p.s1.dtype, p.s2.dtype, p.cloud.dtype) == (np.float32, np.uint16, np.float32)
        assert p.s2_bands == L1C and p.s1_bands == S1_BANDS
        assert p.labels["water"].dtype == np.int8 and p.labels["landcover"].dtype == np.uint8
        meta = p.meta
        assert meta.source == "synthetic" and meta.pixel_size == 10.0
        assert meta.crs == f"EPSG:{32600 + int((meta.lon + 180) // 6) + 1}"
        assert meta.transform[0] == 10.0 and meta.transform[4] == -10.0 and meta.transform[2] % 10 == 0
        assert 2.0 <= meta.lon <= 12.0 and 43.0 <= meta.lat <= 51.0
        assert 0 < abs(meta.dt_hours) <= 72
        assert meta.s1_id.startswith(("S1A_IW_GRDH_1SDV_", "S1B_IW_GRDH_1SDV_"))
        assert meta.s2_id.split("_")[0] == datetime.fromisoformat(meta.s2_time).strftime("%Y%m%dT%H%M%S")
        assert 1 <= meta.s1_relative_orbit <= 175 and meta.s1_orbit in ("ASCENDING", "DESCENDING")
        assert 0 <= meta.s2_cloud_pct <= 100
    assert len(ids) == 8


def test_values_stay_in_physical_ranges_and_labels_match_landcover(archive):
    for uri in list_pairs(archive[0]):
        p = read_pair(uri)
        for k, b in enumerate(S1_BANDS):
            lo, hi = physical_range(b)
            assert lo <= p.s1[..., k].min() and p.s1[..., k].max() <= hi
        assert p.s2.min() >= 1  # 0 would read as no data
        assert 0 <= p.cloud.min() and p.cloud.max() <= 1
        lc = p.labels["landcover"]
        assert lc.max() < len(LANDCOVER_CLASSES)
        np.testing.assert_array_equal(p.labels["water"], (lc == WATER).astype(np.int8))


def test_each_pair_sits_on_its_own_zone_s_grid_and_tile():
    for lon, lat, epsg in [(2.35, 48.85, 32631), (11.9, 45.1, 32632), (-70.6, -33.4, 32719), (151.2, -33.9, 32756),
                           (5.0, 60.0, 32632), (9.0, 78.0, 32633)]:  # the last two: Norway and Svalbard exceptions
        zone, north = source.utm_zone(lon, lat), lat >= 0
        assert source.utm_epsg(zone, lat) == epsg
        e, n = source.lonlat_to_utm(lon, lat, zone, north)
        assert 100_000 < e < 900_000 and 0 < n < 10_000_000
        assert np.allclose(source.utm_to_lonlat(e, n, zone, north), (lon, lat), atol=1e-8)
    assert source.mgrs_tile(31, 48.85, *source.lonlat_to_utm(2.35, 48.85, 31, True)) == "31UDQ"
    p = make_pair(0, 0, patch_size=32)
    a, _, c, _, e_, f = p.meta.transform
    zone = int(p.meta.crs[-2:])
    assert np.allclose(source.utm_to_lonlat(c + 16 * a, f + 16 * e_, zone, True), (p.meta.lon, p.meta.lat), atol=1e-6)


def test_water_share_and_extent_make_segmentation_meaningful():
    fracs = np.array([(make_world(np.random.default_rng([9, i]), 32).landcover == WATER).mean() for i in range(300)])
    assert 0.4 <= (fracs > 0).mean() <= 0.6
    assert 0.05 <= fracs[fracs > 0].mean() <= 0.4


def test_water_is_dark_to_radar_and_in_nir_where_clear():
    vv_w, vv_l, nir_w, nir_l = [], [], [], []
    for i in range(60):
        p = make_pair(1, i, sky="clear")
        water = p.labels["water"] == 1
        if water.any() and (~water).any():
            vv_w.append(p.s1[water, 0].mean()), vv_l.append(p.s1[~water, 0].mean())
            nir_w.append(p.s2[water, B["B8"]].mean()), nir_l.append(p.s2[~water, B["B8"]].mean())
    assert len(vv_w) >= 10
    assert np.mean(vv_w) < np.mean(vv_l) - 8
    assert np.mean(nir_w) < 0.3 * np.mean(nir_l)


def test_thick_cloud_brightens_s2_and_lowers_cs_cdf_but_leaves_s1_alone():
    clear, cloudy = make_pair(2, 7, sky="clear"), make_pair(2, 7, sky="overcast")
    np.testing.assert_array_equal(clear.s1, cloudy.s1)
    np.testing.assert_array_equal(clear.labels["landcover"], cloudy.labels["landcover"])
    thick = cloudy.cloud < 0.2
    assert thick.mean() > 0.5
    vis = [B["B2"], B["B3"], B["B4"]]
    assert cloudy.s2[thick][:, vis].mean() > 3000 > clear.s2[..., vis].mean()
    assert cloudy.s2[thick][:, B["B10"]].mean() > 10 * clear.s2[..., B["B10"]].mean()
    assert clear.cloud.mean() > 0.8 and clear.clear_fraction() > 0.9
    assert cloudy.meta.s2_cloud_pct > clear.meta.s2_cloud_pct


def test_l2a_has_twelve_bands_without_b10(tmp_path):
    m = generate(str(tmp_path / "l2a"), 2, seed=0, patch_size=16, s2_level="L2A")
    assert m["bands"]["s2"] == list(S2_BANDS["l2a"]) and m["bands"]["s2_level"] == "l2a"
    p = read_pair(list_pairs(str(tmp_path / "l2a"))[0])
    assert p.s2.shape == (16, 16, 12) and "B10" not in p.s2_bands


@pytest.mark.parametrize("kwargs, words", [
    ({"pairs": 0}, "--pairs"), ({"pairs": 2.5}, "--pairs"), ({"patch_size": 7}, "--patch-size"),
    ({"patch_size": 2048}, "--patch-size"), ({"patch_size": 33}, "--patch-size"), ({"s2_level": "l3"}, "--s2-level"),
    ({"region": (10, 40, 5, 50)}, "west < east"), ({"region": (0, 0, 1)}, "four numbers"),
    ({"region": (0, 80, 1, 89)}, "UTM"),
])
def test_bad_arguments_raise_input_error_naming_the_fix(tmp_path, kwargs, words):
    args = {"pairs": 2, "seed": 0, **kwargs}
    with pytest.raises(InputError, match=words):
        generate(str(tmp_path / "x"), **args)
    assert not (tmp_path / "x").exists()


def test_existing_output_is_protected_unless_overwrite(tmp_path):
    out = str(tmp_path / "o")
    generate(out, 2, seed=0)
    generate(out, 2, seed=0)  # the same archive again is fine
    with pytest.raises(InputError, match="different raw archive"):
        generate(out, 3, seed=1)
    m = generate(out, 3, seed=1, overwrite=True)
    assert len(list_pairs(out)) == 3 and m["parameters"]["seed"] == 1
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        generate(str(other), 2, seed=0)
    generate(str(other), 2, seed=0, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_a_failed_run_leaves_no_half_written_archive(tmp_path, monkeypatch):
    calls = []

    def flaky(archive, pair):
        calls.append(pair.pair_id)
        if len(calls) == 3:
            raise OSError("disk full")
        real(archive, pair)

    real = source.write_pair
    monkeypatch.setattr(source, "write_pair", flaky)
    with pytest.raises(OSError):
        generate(str(tmp_path / "new"), 5, seed=0)
    assert not (tmp_path / "new").exists()


def test_cli_writes_an_archive_and_rejects_bad_input_with_exit_2(tmp_path):
    runner = CliRunner()
    out = str(tmp_path / "cli")
    r = runner.invoke(cli, ["export", "synthetic", "--out", out, "--pairs", "3", "--patch-size", "16", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "wrote 3 synthetic pairs" in r.output and len(list_pairs(out)) == 3
    r = runner.invoke(cli, ["export", "synthetic", "--out", str(tmp_path / "z"), "--pairs", "0"])
    assert r.exit_code == 2 and "senclr: error: --pairs" in r.output
    r = runner.invoke(cli, ["export", "synthetic", "--out", out, "--pairs", "4"])
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert runner.invoke(cli, ["export", "synthetic", "--out", out, "--bogus"]).exit_code == 2
    assert runner.invoke(cli, ["export", "synthetic", "--out", out, "--s2-level", "l3"]).exit_code == 2
    r = runner.invoke(cli, ["export", "--help"])
    assert r.exit_code == 0 and "synthetic" in r.output
