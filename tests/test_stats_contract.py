"""pipeline/stats.py on hand-computed numbers (issue 12, mutation check): the histogram
percentiles of a constant band, the clamp of p1/p99 to min/max, and a band without one valid
pixel (all S2 no data)."""

import numpy as np

from senclr.bands import S1_BANDS, S2_BANDS
from senclr.pipeline.stats import BandStatsFn
from tests.helpers import random_pair

EMPTY = {"count": 0, "mean": 0.0, "std": 1.0, "min": 0.0, "max": 0.0, "p1": 0.0, "p99": 0.0}


def _summary(pairs):
    fn = BandStatsFn(S1_BANDS, S2_BANDS["l1c"])
    return fn.extract_output(fn.add_inputs(fn.create_accumulator(), pairs))


def _pairs(n=3):
    rng = np.random.default_rng(4)
    return [random_pair(rng, 8, i, labels=False) for i in range(n)]


def test_a_constant_s1_band_gives_its_bin_centre_clamped_to_the_value():
    """VV's histogram spans -50..30 dB in 4096 bins of 5/256 dB. -3149/256 dB falls in bin 1930,
    centred on -3147.5/256 = -12.294921875: above the value, so p1 is the centre and p99 the value.
    -3146/256 dB, in the same bin, lies above the centre: p1 is clamped up to the value, p99 is the centre."""
    pairs = _pairs()
    for k, (p1, p99) in {-3149: (-12.2949, -12.3008), -3146: (-12.2891, -12.2949)}.items():
        for p in pairs:
            p.s1[..., 0] = np.float32(k / 256)
        s = _summary(pairs)["VV"]
        assert (s["min"], s["max"], s["p1"], s["p99"]) == (round(k / 256, 4), round(k / 256, 4), p1, p99), k
        assert s["mean"] == round(k / 256, 6) and s["std"] == 0.0 and s["count"] == 3 * 64


def test_a_constant_s2_band_gives_its_bin_centre():
    """S2 spans 0..20000 in 4096 bins of 20000/4096 = 4.8828125: 1000 falls in bin 204, centred on
    204.5 x 4.8828125 = 998.53515625 (below the value: p1 is clamped up to 1000, p99 is the centre)."""
    pairs = _pairs()
    for p in pairs:
        p.s2[..., 3] = 1000
    s = _summary(pairs)["B4"]
    assert (s["min"], s["max"], s["mean"], s["std"]) == (1000.0, 1000.0, 1000.0, 0.0)
    assert (s["p1"], s["p99"]) == (1000.0, 998.5352)


def test_a_band_without_a_valid_pixel_has_the_empty_summary_and_others_are_unaffected():
    pairs = _pairs()
    for p in pairs:
        p.s2[..., 0] = 0  # B1: S2 no data everywhere
    s = _summary(pairs)
    assert s["B1"] == EMPTY
    assert s["B2"]["count"] == 3 * 64 and s["B2"]["std"] > 0
    fn = BandStatsFn(S1_BANDS, S2_BANDS["l1c"])
    assert fn.extract_output(fn.create_accumulator()) == {b: EMPTY for b in (*S1_BANDS, *S2_BANDS["l1c"])}
