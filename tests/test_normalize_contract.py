"""core/normalize.py on hand-made statistics (issue 12, mutation check): parameters in the order
asked, a zero std left as 1, clip-then-standardise in float32, and sample statistics against
numpy computed here."""

import numpy as np
import pytest

from senclr import normalize

STATS = {
    "VV": {"p1": -25.0, "p99": 0.0, "mean": -12.0, "std": 4.0},
    "VH": {"p1": -30.0, "p99": -5.0, "mean": -18.0, "std": 0.0},  # a constant band
    "B2": {"p1": 100.0, "p99": 3000.0, "mean": 900.0, "std": 500.0},
}


def test_params_follow_the_order_asked_in_float32_and_a_zero_std_becomes_one():
    p = normalize.band_params(STATS, ["B2", "VV", "VH"])
    assert list(p) == ["lo", "hi", "mean", "std", "nodata0"]
    np.testing.assert_array_equal(p["lo"], [100, -25, -30])
    np.testing.assert_array_equal(p["hi"], [3000, 0, -5])
    np.testing.assert_array_equal(p["mean"], [900, -12, -18])
    np.testing.assert_array_equal(p["std"], [500, 4, 1])
    np.testing.assert_array_equal(p["nodata0"], [True, False, False])  # only S2 stores no data as 0
    assert all(p[k].dtype == np.float32 for k in ("lo", "hi", "mean", "std"))


def test_an_s2_zero_is_no_data_and_becomes_exactly_zero_not_p1():
    p = normalize.band_params(STATS, ["VV", "B2"])
    x = np.array([[[0.0, 0.0], [-12.0, 1.0], [0.0, 900.0]]], np.float32)  # VV 0 dB is data, B2 0 is not
    got = normalize.apply(x, p)
    want = np.array([[[(0 + 12) / 4, 0.0], [0.0, (100 - 900) / 500], [(0 + 12) / 4, 0.0]]], np.float32)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("band", ["B1", "B8A", "B10", "B12"])  # B10: L1C only
def test_every_s2_band_of_either_level_treats_zero_as_no_data(band):
    stats = {band: {"p1": 100.0, "p99": 3000.0, "mean": 900.0, "std": 500.0}, "VH": STATS["VH"]}
    p = normalize.band_params(stats, [band, "VH"])
    np.testing.assert_array_equal(p["nodata0"], [True, False])
    np.testing.assert_array_equal(normalize.apply(np.zeros((2, 2), np.uint16), p), [[0.0, 13.0], [0.0, 13.0]])


def test_missing_bands_are_named():
    with pytest.raises(KeyError, match=r"\['B3', 'B4'\]"):
        normalize.band_params(STATS, ["VV", "B3", "B4"])


def test_apply_clips_to_p1_p99_then_standardises():
    p = normalize.band_params(STATS, ["VV", "VH"])
    x = np.array([[[-40.0, -18.0], [-12.0, -4.0], [5.0, 0.0]]], np.float16)  # [1, 3, 2]
    got = normalize.apply(x, p)
    assert got.dtype == np.float32
    want = np.array([[[(-25 + 12) / 4, 0.0], [0.0, (-5 + 18) / 1], [(0 + 12) / 4, (-5 + 18) / 1]]], np.float32)
    np.testing.assert_array_equal(got, want)


def test_sample_statistics_match_numpy_and_skip_nan():
    rng = np.random.default_rng(2)
    x = np.stack([rng.normal(-12, 4, 1000), rng.uniform(0, 3000, 1000)], axis=1)
    x[::7, 1] = np.nan
    got = normalize.sample_statistics(x, ["VV", "B2"], "test")
    for i, b in enumerate(["VV", "B2"]):
        v = x[:, i][np.isfinite(x[:, i])]
        assert got[b] == {"p1": np.percentile(v, 1), "p99": np.percentile(v, 99), "mean": v.mean(), "std": v.std()}
    assert got["B2"]["p1"] != np.percentile(x[:, 1][np.isfinite(x[:, 1])], 2)


def test_a_band_without_a_valid_pixel_is_named_with_where():
    x = np.ones((5, 2))
    x[:, 1] = np.nan
    with pytest.raises(ValueError, match="band B2 has no valid pixel in chips of split train"):
        normalize.sample_statistics(x, ["VV", "B2"], "chips of split train")


def test_a_small_std_is_kept_only_zero_becomes_one():
    stats = {"B1": {"p1": 0.0, "p99": 1.0, "mean": 0.5, "std": 0.25}}
    assert normalize.band_params(stats, ["B1"])["std"][0] == np.float32(0.25)
