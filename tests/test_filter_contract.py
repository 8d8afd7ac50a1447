"""The filter configuration as a contract (issue 12, mutation check): its defaults are the
documented policy, it cannot change once built, and a band list or patch size that differs in
either direction is refused."""

import dataclasses

import pytest

from senclr.pipeline import filters
from tests.helpers import clear_pair

P = 10  # 100 pixels: a fraction of k/100 is exact


@pytest.fixture
def pair():
    return clear_pair(5, P)


def test_defaults_are_the_documented_policy(pair):
    """docs/preprocess.md: --min-clear 0.8, --cs-threshold 0.6, --max-nodata 0.05."""
    cfg = filters.FilterConfig(tuple(pair.s2_bands))
    assert (cfg.patch_size, cfg.min_clear, cfg.cs_threshold, cfg.max_nodata) == (None, 0.8, 0.6, 0.05)
    pair.cloud.ravel()[:20] = 0.59  # 80 of 100 pixels clear, 20 just under the threshold
    assert filters.check(pair, cfg) is None
    pair.cloud.ravel()[20] = 0.59
    assert filters.check(pair, cfg)[0] == "cloudy"


def test_a_config_cannot_change_once_built(pair):
    cfg = filters.FilterConfig(tuple(pair.s2_bands), P)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.min_clear = 0.0
    assert hash(cfg) == hash(filters.FilterConfig(tuple(pair.s2_bands), P))


@pytest.mark.parametrize("size", [P - 1, P + 1])
def test_a_patch_smaller_or_larger_than_asked_is_bad_shape(pair, size):
    verdict = filters.check(pair, filters.FilterConfig(tuple(pair.s2_bands), size))
    assert verdict[0] == "bad_shape" and f"{size}x{size}" in verdict[1]


@pytest.mark.parametrize("expect", [
    lambda b: b[:-1],  # the pair has a band more than asked
    lambda b: (*b, "B99"),  # the pair lacks one
    lambda b: b[::-1],  # same bands, another order
    lambda b: (*b[1:], b[0]),
])
def test_a_band_list_that_differs_in_any_way_is_missing_bands(pair, expect):
    cfg = filters.FilterConfig(tuple(expect(tuple(pair.s2_bands))), P)
    assert filters.check(pair, cfg)[0] == "missing_bands"
