"""export/earthengine/grid.py and the Δt histogram of export/earthengine/pairing.py on hand-computed values (issue 12,
mutation check)."""

import dataclasses
from datetime import datetime, timezone

import pytest
import shapely

from senclr.export.earthengine.grid import exhaustive_count, sample_patches
from senclr.export.earthengine.pairing import Pairing, Scene, dt_histogram
from tests.test_pairing import _utm_square


@pytest.mark.parametrize("domain, side, want", [
    # 0.9 x 1 degree at the equator, 1280 m cells: a cell is 1280 / 111320 / 1.5 degrees of longitude,
    # so 2^8 boxes across (2 x 0.9 / 0.0076657 = 234.8); in sin(latitude) 3^6 (2 x 0.017452 / 1.3331e-4 = 261.8)
    ((0, 0, 0.9, 1), 1280, 2**8 * 3**6),
    # half a degree at 60-60.3 N, 640 m cells: 2^9 across, 3^5 up (cos 60.3 = 0.4955 narrows the cell)
    ((10, 60, 10.5, 60.3), 640, 2**9 * 3**5),
])
def test_the_exhaustive_point_count_puts_two_boxes_in_every_cell(domain, side, want):
    assert exhaustive_count(domain, side) == want


def test_a_seed_draws_the_same_patches_in_every_version():
    """Pinned: a change to the sampling changes every plan a seed gives, so it must be deliberate."""
    region = shapely.box(3.0, 46.0, 3.4, 46.2)
    fps = [("S2_x", "EPSG:32631", _utm_square(31, 400_000, 5_000_000, 109_800))]
    keys = [p.key for p, _ in sample_patches(region, fps, 5, 64, 10, seed=7)]
    assert keys == [("EPSG:32631", 502400.0, 5108480.0), ("EPSG:32631", 506880.0, 5098240.0),
                    ("EPSG:32631", 504320.0, 5105280.0), ("EPSG:32631", 500480.0, 5100160.0),
                    ("EPSG:32631", 505600.0, 5102080.0)]


class _P:
    def __init__(self, dt):
        self.dt_hours = dt


def test_the_dt_histogram_has_12_hour_bins_reaching_past_the_largest_gap():
    h = dt_histogram([_P(-30.0), _P(5.0), _P(70.5)])
    assert h["edges_hours"] == [float(e) for e in range(-72, 73, 12)]
    assert h["counts"] == [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1] and h["n"] == 3 and h["median_abs_hours"] == 30.0
    assert dt_histogram([_P(2.0)])["edges_hours"] == [-24.0, -12.0, 0.0, 12.0, 24.0]  # at least a day each way
    assert dt_histogram([]) == {"edges_hours": [-24.0, -12.0, 0.0, 12.0, 24.0], "counts": [0, 0, 0, 0], "n": 0,
                                "median_abs_hours": None}


def test_scenes_and_pairings_cannot_change_once_made():
    s = Scene("S1_a", datetime(2021, 6, 1, tzinfo=timezone.utc), shapely.box(0, 0, 1, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.id = "S1_b"
    assert dataclasses.fields(Pairing) and Pairing.__dataclass_params__.frozen


def test_the_overlap_index_finds_overlaps_across_its_buckets_and_not_touching_neighbours():
    from senclr.export.earthengine.grid import _Occupied

    occ = _Occupied(2 * 64 * 10 / 111_000)  # the size sampling uses: two patches of 640 m
    occ.add(shapely.box(3.000, 46.000, 3.008, 46.006))
    assert occ.overlaps(shapely.box(3.007, 46.005, 3.015, 46.011))  # a corner over another bucket
    assert occ.overlaps(shapely.box(2.990, 45.990, 3.030, 46.030))  # one holding it whole
    assert not occ.overlaps(shapely.box(3.008, 46.000, 3.016, 46.006))  # edge to edge
    assert not occ.overlaps(shapely.box(3.100, 46.100, 3.108, 46.106))


def test_one_patch_asked_is_one_patch_sampled_and_none_is_none():
    region = shapely.box(3.0, 46.0, 3.4, 46.2)
    fps = [("S2_x", "EPSG:32631", _utm_square(31, 400_000, 5_000_000, 109_800))]
    assert len(sample_patches(region, fps, 1, 64, 10, seed=7)) == 1
    assert sample_patches(region, fps, 0, 64, 10, seed=7) == []


def test_candidate_cells_are_every_cell_inside_the_region():
    from senclr.export.earthengine.grid import UtmGrid, candidate_cells

    region = shapely.box(3.0, 46.0, 3.05, 46.03)
    grid = UtmGrid("EPSG:32631", 64, 10)
    i0, i1, j0, j1 = grid.index_bounds(region)
    want = {(grid.patch(i, j).x0, grid.patch(i, j).y0) for i in range(i0 - 1, i1 + 2) for j in range(j0 - 1, j1 + 2)
            if region.contains(grid.patch(i, j).polygon)}
    got = [(p.x0, p.y0) for p in candidate_cells(region, "EPSG:32631", 64, 10)]
    assert len(got) == len(set(got)) and set(got) == want and len(want) == 20
