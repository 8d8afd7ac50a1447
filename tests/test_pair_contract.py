"""PatchPair and PairMeta as a contract (issue 12, mutation check): every shape ``check_shapes``
must refuse, the clear-sky share at its threshold, Δt's sign and unknown times, the JSON form with
its nulls, and the plan-entry conversion with the fields an export may leave out."""

import dataclasses
import json
import math

import numpy as np
import pytest

from senclr.pair import PairMeta, make_pair_id, meta_from_plan_entry
from tests.helpers import plan_entry, random_pair

H = 6


@pytest.fixture
def pair():
    p = random_pair(np.random.default_rng(11), H, 0)
    p.labels["embedding"] = np.zeros((H, H, 64), np.int8)
    return p


def test_a_consistent_pair_has_no_shape_problem(pair):
    assert pair.check_shapes() is None
    assert pair.shape == (H, H)


@pytest.mark.parametrize("field, bad, words", [
    ("s1", lambda p: p.s1[..., :1], "s1 shape"),  # one band of two
    ("s1", lambda p: p.s1[..., 0], "s1 shape"),  # no band axis
    ("s2", lambda p: p.s2[..., :-1], "s2 shape"),  # a band short of the band list
    ("s2", lambda p: p.s2[:-1], "s2 shape"),  # one row short
    ("s2", lambda p: np.concatenate([p.s2, p.s2[..., :1]], -1), "s2 shape"),  # a band more than the band list
    ("s2", lambda p: np.concatenate([p.s2, p.s2[:, :1]], 1), "s2 shape"),  # a column more
    ("s2", lambda p: p.s2[..., 0], "s2 shape"),  # no band axis
    ("s2", lambda p: p.s2[None], "s2 shape"),  # an axis too many, same number of values per pixel
    ("cloud", lambda p: p.cloud[:, :-1], "cloud shape"),
    ("cloud", lambda p: p.cloud[..., None], "cloud shape"),
])
def test_each_array_of_the_wrong_shape_is_named(pair, field, bad, words):
    setattr(pair, field, bad(pair))
    problem = pair.check_shapes()
    assert problem is not None and problem.startswith(words), problem


@pytest.mark.parametrize("name, bad", [
    ("water", lambda a: a[:-1]),  # a row short
    ("water", lambda a: a[:, :-1]),  # a column short
    ("water", lambda a: a[..., None]),  # a channel axis a 2-D label must not have
    ("embedding", lambda a: a[..., 0]),  # the embedding without its 64 channels
    ("embedding", lambda a: a[..., None]),  # an axis too many
    ("embedding", lambda a: a[:-1]),
])
def test_each_label_of_the_wrong_shape_is_named(pair, name, bad):
    pair.labels[name] = bad(pair.labels[name])
    problem = pair.check_shapes()
    assert problem is not None and problem.startswith(f"label {name!r}"), problem
    assert problem.endswith(f"({H}, {H}, 64)" if name == "embedding" else f"({H}, {H})"), problem


def test_clear_fraction_counts_pixels_at_or_above_the_threshold_default_0_6(pair):
    pair.cloud[:] = 0.9
    pair.cloud.ravel()[:9] = np.float32(0.6)  # exactly at the default threshold: clear
    pair.cloud.ravel()[9:18] = np.float32(0.59)  # just under it: cloudy
    assert pair.clear_fraction() == pytest.approx(1 - 9 / H**2)
    assert pair.clear_fraction(0.95) == 0.0
    assert pair.clear_fraction(0.0) == 1.0


def _meta(**kw):
    base = dict(pair_id="x", lon=1.0, lat=2.0, crs="EPSG:32631", transform=(10.0, 0.0, 0.0, 0.0, -10.0, 0.0),
                pixel_size=10.0, s1_id="a", s2_id="b", s1_time="2020-01-01T06:00:00+00:00",
                s2_time="2020-01-01T10:30:00+00:00", s1_orbit="ASCENDING", s1_relative_orbit=88, s2_cloud_pct=5.0)
    return PairMeta(**{**base, **kw})


def test_dt_hours_is_s1_minus_s2_and_nan_when_a_time_is_unknown():
    assert _meta().dt_hours == -4.5
    assert _meta(s1_time="2020-01-02T10:30:00+00:00").dt_hours == 24.0
    assert _meta(s1_time="2020-01-01T10:30:20+00:00").dt_hours == pytest.approx(0.0056)  # 20 s, to 1e-4 h
    assert math.isnan(_meta(s1_time="").dt_hours) and math.isnan(_meta(s2_time="").dt_hours)


def test_coordinates_are_stored_at_the_precision_the_id_hashes():
    m = _meta(lon=10.12345649, lat=-45.0000004)
    assert (m.lon, m.lat) == (10.123456, -45.0)
    assert make_pair_id(m.lon, m.lat, "a", "b") == make_pair_id(10.12345649, -45.0000004, "a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.lon = 0.0


def test_json_form_has_dt_and_nulls_for_unknown_numbers_and_reads_back():
    m = _meta(s2_cloud_pct=float("nan"), s1_time="")
    d = m.to_json()
    assert d["s2_cloud_pct"] is None and d["dt_hours"] is None and d["transform"] == list(m.transform)
    json.dumps(d, allow_nan=False)  # valid JSON, no NaN
    back = PairMeta.from_json(json.loads(json.dumps(d)))
    assert math.isnan(back.s2_cloud_pct) and back.transform == m.transform and isinstance(back.transform, tuple)
    assert dataclasses.replace(back, s2_cloud_pct=0.0) == dataclasses.replace(m, s2_cloud_pct=0.0)
    known = _meta()
    assert known.to_json()["dt_hours"] == -4.5 and PairMeta.from_json(known.to_json()) == known


def test_a_plan_entry_without_orbit_or_cloud_still_converts(pair):
    entry = plan_entry(pair)
    del entry["s1"]["orbit"], entry["s1"]["relative_orbit"]
    entry["s2"]["cloud_pct"] = None
    m = meta_from_plan_entry(entry, "ee-batch")
    assert (m.s1_orbit, m.s1_relative_orbit, m.source) == ("", 0, "ee-batch")
    assert math.isnan(m.s2_cloud_pct)
    entry["s2"]["cloud_pct"] = 0
    assert meta_from_plan_entry(entry, "x").s2_cloud_pct == 0.0
