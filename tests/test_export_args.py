"""Export arguments: every bad region, date or flag is an InputError naming the problem."""

from __future__ import annotations

import json
from datetime import date

import pytest
import shapely

from senclr.errors import InputError
from senclr.export.earthengine.params import S1_GRD_START, build_params, check_dates
from senclr.export.earthengine.region import MAX_REGION_KM2, area_km2, check_size, parse_region

TODAY = date(2024, 5, 1)
SQUARE = [[[2.0, 48.0], [2.5, 48.0], [2.5, 48.4], [2.0, 48.4], [2.0, 48.0]]]
OTHER = [[[3.0, 48.0], [3.5, 48.0], [3.5, 48.4], [3.0, 48.4], [3.0, 48.0]]]


def _geojson(tmp_path, doc, name="r.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def _feature(geom):
    return {"type": "Feature", "properties": {}, "geometry": geom}


def _params(**kw):
    args = dict(region="2,48,2.5,48.4", start="2021-06-01", end="2021-07-01", out="gs://bucket/x", today=TODAY)
    args.update(kw)
    return build_params(**args)


# --- region: boxes ------------------------------------------------------------------------------

def test_a_bbox_becomes_its_box():
    assert parse_region(" 2, 48 ,2.5,48.4 ").equals(shapely.box(2, 48, 2.5, 48.4))


@pytest.mark.parametrize("text, words", [
    ("2,48,2.5", "4 numbers"), ("2,48,2.5,48.4,1", "4 numbers"), ("a,b,c,d", "4 numbers"),
    ("2,48,nan,48.4", "finite"), ("2,48,inf,48.4", "finite"),
    ("-181,48,2,49", "outside [-180, 180] x [-90, 90]"), ("2,48,3,91", "outside [-180, 180] x [-90, 90]"),
    ("48,2,49,200", "outside"),
    ("3,48,2,49", "zero area"), ("2,48,2,49", "zero area"), ("2,49,3,48", "zero area"), ("2,48,3,48", "zero area"),
    ("", "empty"),
])
def test_bad_bboxes_are_refused_naming_the_problem(text, words):
    with pytest.raises(InputError, match="region") as err:
        parse_region(text)
    assert words in str(err.value)


# --- region: GeoJSON files ------------------------------------------------------------------------

@pytest.mark.parametrize("doc", [
    {"type": "Polygon", "coordinates": SQUARE},
    {"type": "MultiPolygon", "coordinates": [SQUARE]},
    _feature({"type": "Polygon", "coordinates": SQUARE}),
    {"type": "FeatureCollection", "features": [_feature({"type": "Polygon", "coordinates": SQUARE}),
                                               _feature({"type": "Point", "coordinates": [9, 9]})]},
])
def test_each_geojson_kind_gives_the_polygon(tmp_path, doc):
    geom = parse_region(_geojson(tmp_path, doc))
    assert geom.equals(shapely.Polygon(SQUARE[0]))


def test_a_feature_collection_is_the_union_of_its_polygons(tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        _feature({"type": "Polygon", "coordinates": SQUARE}),
        _feature({"type": "MultiPolygon", "coordinates": [OTHER]}),
        _feature(None)]}
    geom = parse_region(_geojson(tmp_path, doc))
    assert geom.geom_type == "MultiPolygon"
    assert geom.area == pytest.approx(2 * 0.5 * 0.4)


def test_a_self_crossing_polygon_is_repaired(tmp_path):
    bowtie = [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]
    geom = parse_region(_geojson(tmp_path, {"type": "Polygon", "coordinates": bowtie}))
    assert geom.is_valid and geom.area == pytest.approx(0.5)


def test_a_third_coordinate_is_dropped(tmp_path):
    ring = [[x, y, 100.0] for x, y in SQUARE[0]]
    assert not parse_region(_geojson(tmp_path, {"type": "Polygon", "coordinates": [ring]})).has_z


@pytest.mark.parametrize("doc, words", [
    ("{not json", "not valid JSON"),
    ([1, 2, 3], "not GeoJSON"),
    ({"features": []}, "not GeoJSON"),
    ({"type": "FeatureCollection"}, "'features' list"),
    ({"type": "FeatureCollection", "features": []}, "no Polygon or MultiPolygon"),
    ({"type": "Point", "coordinates": [2, 48]}, "no Polygon or MultiPolygon"),
    (_feature({"type": "LineString", "coordinates": [[2, 48], [3, 49]]}), "no Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": []}, "empty or have zero area"),
    ({"type": "Polygon", "coordinates": [[[2, 48], [3, 49], [2, 48], [3, 49]]]}, "empty or have zero area"),
    ({"type": "Polygon", "coordinates": [[[2, 48], [3, 49]]]}, "malformed coordinates"),
    ({"type": "Polygon", "coordinates": [[[450000, 5300000], [460000, 5300000], [460000, 5310000],
                                          [450000, 5300000]]]}, "outside [-180, 180] x [-90, 90]"),
    ({"type": "Polygon", "crs": {"type": "name", "properties": {"name": "EPSG:32631"}},
      "coordinates": SQUARE}, "declares CRS"),
])
def test_bad_geojson_is_refused_naming_the_problem(tmp_path, doc, words):
    path = _geojson(tmp_path, doc)
    with pytest.raises(InputError) as err:
        parse_region(path)
    assert words in str(err.value) and path in str(err.value)


def test_missing_unreadable_and_folder_regions_are_refused(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        parse_region(str(tmp_path / "nope.geojson"))
    with pytest.raises(InputError, match="no such file"):
        parse_region("paris")
    with pytest.raises(InputError, match="is a folder"):
        parse_region(str(tmp_path))
    bad = tmp_path / "latin1.geojson"
    bad.write_bytes(b'{"type": "Polygon", "name": "\xe9"}')
    with pytest.raises(InputError, match="cannot be read"):
        parse_region(str(bad))


# --- region: area and size limit ----------------------------------------------------------------

def test_area_is_the_ellipsoidal_area():
    assert area_km2(shapely.box(0, 0, 1, 1)) == pytest.approx(12308.5, rel=1e-4)  # 1° x 1° at the equator
    assert area_km2(shapely.box(-180, -90, 180, 90)) == pytest.approx(510_065_622, rel=1e-6)  # WGS84 Earth
    assert area_km2(shapely.box(10, 60, 11, 61)) == pytest.approx(6_080, rel=0.01)


def test_regions_beyond_the_size_limit_need_force():
    big = parse_region("-8,50,2,59")
    with pytest.raises(InputError, match="--force") as err:
        check_size(big, force=False)
    assert f"{MAX_REGION_KM2:,}" in str(err.value)
    assert check_size(big, force=True) > MAX_REGION_KM2
    with pytest.raises(InputError, match="more than"):
        _params(region="-8,50,2,59")
    assert _params(region="-8,50,2,59", force=True).force


# --- dates -------------------------------------------------------------------------------------

@pytest.mark.parametrize("start, end, words", [
    ("2021-07-01", "2021-06-01", "not after --start"), ("2021-06-01", "2021-06-01", "not after --start"),
    ("2014-10-02", "2015-01-01", "before Sentinel-1 GRD data exists"),
    ("2024-04-01", "2024-05-02", "in the future"),
    ("June 1st", "2021-07-01", "not an ISO date"), ("2021-06-01", "2021-13-01", "not an ISO date"),
])
def test_bad_dates_are_refused_naming_the_problem(start, end, words):
    with pytest.raises(InputError) as err:
        check_dates(start, end, today=TODAY)
    assert words in str(err.value)


def test_dates_at_the_limits_are_accepted():
    assert check_dates(S1_GRD_START.isoformat(), "2024-05-01", today=TODAY) == (S1_GRD_START, TODAY)
    assert check_dates(date(2020, 1, 1), date(2020, 1, 2), today=TODAY) == (date(2020, 1, 1), date(2020, 1, 2))


# --- flags -------------------------------------------------------------------------------------

def test_defaults_are_the_documented_ones():
    p = _params()
    assert (p.max_dt_days, p.max_dt_hours, p.s2_level, p.s2_max_cloud, p.min_clear, p.cs_threshold) == \
        (3, 72, "l1c", 30, 0.8, 0.6)
    assert (p.patch_size, p.scale, p.patches, p.seed, p.max_concurrent, p.mode) == (128, 10, 1000, 0, 20, "batch")
    assert (p.project, p.ee_api_url, p.ee_credentials, p.force) == (None, None, "default", False)
    assert p.region_text == "2,48,2.5,48.4" and p.region_km2 == pytest.approx(area_km2(p.region), abs=1e-3)


@pytest.mark.parametrize("kw, words", [
    (dict(max_dt_days=0), "--max-dt must be > 0"), (dict(max_dt_days=31), "<= 30"), (dict(max_dt_days="x"), "--max-dt"),
    (dict(s2_level="l2b"), "--s2-collection must be one of l1c, l2a"),
    (dict(s2_max_cloud=-1), "--s2-max-cloud"), (dict(s2_max_cloud=101), "<= 100"),
    (dict(min_clear=1.5), "--min-clear"), (dict(cs_threshold=-0.1), "--cs-threshold"),
    (dict(patch_size=127), "even"), (dict(patch_size=8), "--patch-size must be >= 16"),
    (dict(patch_size=2048), "<= 1024"), (dict(patch_size=12.5), "whole number"),
    (dict(scale=0), "--scale must be >= 1.0 and <= 1000.0"), (dict(scale=float("nan")), "finite"),
    (dict(patches=0), "--patches must be >= 1"), (dict(patches=True), "--patches must be a number"),
    (dict(seed=-1), "--seed"), (dict(seed="abc"), "--seed must be a whole number"),
    (dict(out=None), "--out is required"), (dict(out="  "), "--out is required"),
    (dict(out="/tmp/x"), "is not gs://"), (dict(out="gs://"), "names no bucket"),
    (dict(mode="fast"), "--mode must be one of batch, highvolume"),
    (dict(max_concurrent=0), "--max-concurrent must be >= 1"),
    (dict(mode="highvolume", out="/tmp/x", max_concurrent=41), "exceeds the 40 concurrent requests"),
    (dict(max_concurrent=3001), "3000 export tasks"),
    (dict(ee_api_url="ftp://x"), "--ee-api-url 'ftp://x' is not an http(s) URL"),
    (dict(ee_api_url="localhost:8080"), "not an http(s) URL"),
    (dict(ee_credentials="/no/such/key.json"), "no such file"),
    (dict(ee_credentials="/tmp"), "is not a file"),
    (dict(project="my project"), "--project"),
])
def test_bad_flags_are_refused_naming_the_flag(kw, words):
    with pytest.raises(InputError) as err:
        _params(**kw)
    assert words in str(err.value)


def test_good_flags_are_normalised(tmp_path):
    key = tmp_path / "key.json"
    key.write_text('{"private_key": "SECRET"}')
    p = _params(mode="HighVolume", out="/tmp/x", max_concurrent=40, s2_level="L2A", ee_api_url="http://127.0.0.1:9/",
                ee_credentials=str(key), project="my-project", max_dt_days=0.5, patch_size="64", scale="20")
    assert (p.mode, p.s2_level, p.ee_api_url, p.ee_credentials) == ("highvolume", "l2a", "http://127.0.0.1:9", str(key))
    assert (p.patch_size, p.scale, p.max_dt_hours) == (64, 20.0, 12.0)
    assert _params(mode="highvolume", out="/tmp/x", max_concurrent=64, force=True).max_concurrent == 64
    assert _params(ee_credentials="NONE").ee_credentials == "none"


def test_to_json_is_json_safe_and_leaves_credentials_out(tmp_path):
    key = tmp_path / "sa-key.json"
    key.write_text('{"private_key": "SECRET"}')
    p = _params(ee_credentials=str(key), project="my-project")
    d = p.to_json()
    text = json.dumps(d)
    assert "ee_credentials" not in d and str(key) not in text and "SECRET" not in text
    assert json.loads(text) == d
    assert d["start"] == "2021-06-01" and d["end"] == "2021-07-01" and d["project"] == "my-project"
    assert shapely.geometry.shape(d["region"]).equals(p.region)
    assert d["region_bounds"] == [2.0, 48.0, 2.5, 48.4]
