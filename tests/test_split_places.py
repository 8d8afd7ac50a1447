"""Split by place over many places and cell sizes, against an independent grouping of the points
into cells (issue 12): a cell of the wrong size, truncation instead of floor west of Greenwich or
south of the equator, or fractions applied wrongly each break one of these."""

import collections

import numpy as np
import pytest

from senclr.pipeline import split

F = (0.8, 0.1, 0.1)


def _points(rng, n, lo, hi):
    return rng.uniform(lo, hi, n), rng.uniform(lo / 2, hi / 2, n)


@pytest.mark.parametrize("cell", [0.05, 0.25, 1.0])
def test_every_cell_holds_one_split_and_cells_follow_the_fractions(cell):
    rng = np.random.default_rng(int(cell * 100))
    lons, lats = _points(rng, 20_000, -40 * cell, 40 * cell)  # both hemispheres, both sides of Greenwich
    cells = collections.defaultdict(set)
    for lon, lat in zip(lons, lats):
        key = (int(np.floor(lon / cell)), int(np.floor(lat / cell)))  # the reference grouping
        cells[key].add(split.split_of(float(lon), float(lat), cell, F, 0))
    assert all(len(s) == 1 for s in cells.values())
    share = collections.Counter(next(iter(s)) for s in cells.values())
    n = len(cells)
    assert n > 1000
    for name, f in zip(("train", "val", "test"), F):
        assert abs(share[name] / n - f) < 0.04, (name, share[name] / n)


def test_points_spread_over_one_cell_share_its_split_and_a_neighbour_may_differ():
    rng = np.random.default_rng(1)
    cell = 0.25
    for cx, cy in [(40, 180), (-3, -1), (0, 0), (-1, 0)]:
        lons = (cx + rng.uniform(0, 1, 200)) * cell
        lats = (cy + rng.uniform(0, 1, 200)) * cell
        assert len({split.split_of(float(a), float(b), cell, F, 0) for a, b in zip(lons, lats)}) == 1, (cx, cy)
    # a point on a cell's west edge belongs to that cell, not to the one west of it
    assert split.cell_of(-0.25, 0.0, cell) == (-1, 0) and split.cell_of(-0.1, -0.1, cell) == (-1, -1)
    row = {split.split_of((k + 0.5) * cell, 0.1, cell, F, 0) for k in range(-50, 50)}
    assert row == {"train", "val", "test"}


def test_fractions_and_seed_decide_the_assignment():
    places = [(lon, lat) for lon in np.arange(-5, 5, 0.25) for lat in np.arange(40, 45, 0.25)]
    assert {split.split_of(a, b, 0.25, (1.0, 0.0, 0.0), 0) for a, b in places} == {"train"}
    assert {split.split_of(a, b, 0.25, (0.0, 0.0, 1.0), 0) for a, b in places} == {"test"}
    seeds = [[split.split_of(a, b, 0.25, F, s) for a, b in places] for s in (0, 1)]
    assert seeds[0] != seeds[1]
