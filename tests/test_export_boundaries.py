"""Every limit the export applies, on and just past its boundary (issue 12): a flipped `<` / `<=`
moves one of these verdicts. (The preprocessing filters: test_filter_boundaries.py; the Δt cap of
the pairing: test_pairing.py; the request size: test_export_limits.py.)"""

import pytest
import shapely

from senclr.errors import InputError
from senclr.export.earthengine import query, limits
from senclr.export.earthengine.params import BATCH_MAX_QUEUED, HIGHVOLUME_MAX_CONCURRENT, MAX_DT_DAYS, MAX_SCALE_M, MIN_SCALE_M
from senclr.export.earthengine.region import MAX_REGION_KM2, area_km2, check_size
from tests.test_export_args import _params

EPS = 1e-6
LOCAL = dict(mode="highvolume", out="/tmp/x")


@pytest.mark.parametrize("flag, on, past, extra", [
    ("max_dt_days", MAX_DT_DAYS, MAX_DT_DAYS + EPS, {}),
    ("max_dt_days", EPS, 0, {}),  # open below: 0 h would pair nothing
    ("s2_max_cloud", 100, 100 + EPS, {}),
    ("s2_max_cloud", 0, -EPS, {}),
    ("min_clear", 1, 1 + EPS, {}),
    ("min_clear", 0, -EPS, {}),
    ("cs_threshold", 1, 1 + EPS, {}),
    ("cs_threshold", 0, -EPS, {}),
    ("scale", MAX_SCALE_M, MAX_SCALE_M + EPS, {}),
    ("scale", MIN_SCALE_M, MIN_SCALE_M - EPS, {}),
    ("patch_size", 16, 14, {}),
    ("patch_size", limits.largest_patch_size("l1c"), limits.largest_patch_size("l1c") + 2, {}),
    ("patches", 1, 0, {}),
    ("seed", 0, -1, {}),
    ("max_concurrent", 1, 0, {}),
    ("max_concurrent", HIGHVOLUME_MAX_CONCURRENT, HIGHVOLUME_MAX_CONCURRENT + 1, LOCAL),
    ("max_concurrent", BATCH_MAX_QUEUED, BATCH_MAX_QUEUED + 1, {}),
])
def test_a_flag_on_its_limit_is_accepted_and_just_past_it_refused(flag, on, past, extra):
    assert getattr(_params(**{flag: on}, **extra), flag) == on
    with pytest.raises(InputError):
        _params(**{flag: past}, **extra)


def _box_of_area(km2: float) -> shapely.Polygon:
    """A box at the equator whose ellipsoidal area is ``km2`` to within a few m² (bisection on its width)."""
    lo, hi = 0.0, 40.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if area_km2(shapely.box(0, 0, mid, 1)) < km2 else (lo, mid)
    return shapely.box(0, 0, hi, 1)


def test_a_region_of_the_limit_is_accepted_and_one_a_little_larger_needs_force():
    assert check_size(_box_of_area(MAX_REGION_KM2 - 0.001), force=False) <= MAX_REGION_KM2
    with pytest.raises(InputError, match="--force"):
        check_size(_box_of_area(MAX_REGION_KM2 + 0.001), force=False)


def _scene_rows(n: int) -> list[dict]:
    row = {"type": "Feature", "geometry": shapely.geometry.mapping(shapely.box(0, 0, 1, 1)),
           "properties": {"id": "S1", "time": 1_600_000_000_000}}
    return [row] * n


def test_a_scene_query_of_the_most_scenes_allowed_is_parsed_and_one_more_refused():
    assert len(query.parse_scenes(_scene_rows(query.MAX_SCENES), "s1")) == query.MAX_SCENES
    with pytest.raises(InputError, match=f"more than {query.MAX_SCENES}"):
        query.parse_scenes(_scene_rows(query.MAX_SCENES + 1), "s1")


@pytest.mark.parametrize("patch", [128, 256, 512, 964])
def test_a_batch_task_holds_as_many_pairs_as_fit_its_byte_cap_and_no_more(patch):
    n, size = limits.pairs_per_task(patch, "l1c"), limits.request_bytes(patch, "l1c")
    assert n <= limits.PAIRS_PER_TASK and n * size <= limits.TASK_MAX_BYTES
    assert n == limits.PAIRS_PER_TASK or (n + 1) * size > limits.TASK_MAX_BYTES


@pytest.mark.parametrize("dtypes", [["uint16"], ["uint8"], ["float32"] * 16])
def test_the_largest_side_fills_the_request_cap_and_two_more_pixels_pass_it(dtypes):
    """One uint16 band (3 bytes a pixel with its mask) fits 48 MiB exactly at 4096 x 4096."""
    side, per_px = limits.largest_side(dtypes), limits.bytes_per_pixel(dtypes)
    assert side % 2 == 0 and side * side * per_px <= limits.COMPUTE_PIXELS_MAX_BYTES < (side + 2) ** 2 * per_px
    if dtypes == ["uint16"]:
        assert side == 4096 and side * side * per_px == limits.COMPUTE_PIXELS_MAX_BYTES
