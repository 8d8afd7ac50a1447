"""Every threshold of the preprocessing filters, on and just past its boundary: a flipped `<` / `<=`
or a dropped check changes one of these verdicts (issue 12)."""

import numpy as np
import pytest

from senclr.bands import physical_range
from senclr.pipeline import filters
from tests.helpers import clear_pair

P = 10  # 100 pixels: a fraction of k/100 is exact


@pytest.fixture
def pair():
    return clear_pair(3, P)


def _cfg(pair, **kw):
    return filters.FilterConfig(tuple(pair.s2_bands), P, **kw)


def _reason(pair, **kw):
    verdict = filters.check(pair, _cfg(pair, **kw))
    return verdict[0] if verdict else None


def test_clear_fraction_equal_to_min_clear_passes_one_pixel_less_is_cloudy(pair):
    pair.cloud.ravel()[:20] = 0.1  # 80 of 100 pixels clear
    assert _reason(pair, min_clear=0.8) is None
    assert _reason(pair, min_clear=0.81) == "cloudy"
    pair.cloud.ravel()[20] = 0.1  # 79 clear
    assert _reason(pair, min_clear=0.8) == "cloudy"


def test_a_pixel_whose_cs_cdf_equals_the_threshold_is_clear(pair):
    pair.cloud[:] = np.float32(0.5)  # exactly representable: no rounding on either side
    assert _reason(pair, min_clear=1.0, cs_threshold=0.5) is None
    assert _reason(pair, min_clear=1.0, cs_threshold=float(np.nextafter(np.float32(0.5), np.float32(1)))) == "cloudy"


def test_s2_nodata_share_equal_to_the_limit_passes(pair):
    pair.s2.reshape(-1, pair.s2.shape[-1])[:5] = 0  # 5 % of the pixels are 0 in every band
    assert _reason(pair, max_nodata=0.05) is None
    assert _reason(pair, max_nodata=0.04) == "s2_nodata"
    pair.s2.reshape(-1, pair.s2.shape[-1])[5, :-1] = 0  # one band left: still data
    assert _reason(pair, max_nodata=0.05) is None


@pytest.mark.parametrize("band", [0, 1])
def test_s1_values_on_the_physical_range_pass_and_just_outside_fail(pair, band):
    """(S2 is uint16 and its range is the whole type: it cannot leave it.)"""
    lo, hi = physical_range(pair.s1_bands[band])
    pair.s1[0, 0, band], pair.s1[0, 1, band] = lo, hi
    assert _reason(pair) is None
    for bad in (lo - 0.01, hi + 0.01):
        pair.s1[0, 0, band] = bad
        assert _reason(pair) == "out_of_range", bad
        pair.s1[0, 0, band] = lo


def test_cs_cdf_on_zero_and_one_pass_and_outside_fails(pair):
    pair.cloud.ravel()[:2] = (0.0, 1.0)
    assert _reason(pair, min_clear=0.9) is None
    for bad in (-0.01, 1.01):
        pair.cloud.ravel()[0] = bad
        assert _reason(pair, min_clear=0.9) == "out_of_range"


def test_patch_size_and_band_list_must_match(pair):
    assert filters.check(pair, filters.FilterConfig(tuple(pair.s2_bands), P + 1))[0] == "bad_shape"
    assert filters.check(pair, filters.FilterConfig(tuple(pair.s2_bands)[::-1], P))[0] == "missing_bands"
    pair.s1[0, 0, 1] = np.nan
    assert _reason(pair) == "non_finite"
