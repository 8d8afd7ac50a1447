"""`--split` fractions and the place cells on their edges (issue 12, mutation check): which
fraction strings are accepted, a cell index in each direction, and fractions summing to a hair
under 1 never leaving a place without a split."""

import pytest

from senclr.pipeline import split


@pytest.mark.parametrize("text, want", [
    ("0.8,0.1,0.1", (0.8, 0.1, 0.1)),
    ("1,0,0", (1.0, 0.0, 0.0)),
    ("0,0,1", (0.0, 0.0, 1.0)),
    ("0.7, 0.2 ,0.1", (0.7, 0.2, 0.1)),
    ("0.3333333,0.3333333,0.3333334", (0.3333333, 0.3333333, 0.3333334)),
    ("0.5,0.5,0.0000009", (0.5, 0.5, 0.0000009)),  # 1 + 9e-7: within the tolerance
])
def test_three_non_negative_fractions_summing_to_one_are_accepted(text, want):
    assert split.parse_fractions(text) == want


@pytest.mark.parametrize("text, words", [
    ("0.8,0.2", "three non-negative"),
    ("0.8,0.1,0.05,0.05", "three non-negative"),
    ("1.2,-0.1,-0.1", "three non-negative"),  # sums to 1 but negative
    ("0.5,0.6,-0.1", "three non-negative"),
    ("0.5,0.5,0.5", "summing to 1"),
    ("0.5,0.2,0.2", "summing to 1"),
    ("0.5,0.5,0.000002", "summing to 1"),  # 2e-6 over: outside the tolerance
    ("0.8,0.1,x", "not numbers"),
    ("", "not numbers"),
])
def test_anything_else_is_refused_naming_the_rule(text, words):
    with pytest.raises(ValueError, match=words):
        split.parse_fractions(text)


def test_cells_are_floor_of_degrees_over_cell_size_in_both_directions():
    assert split.cell_of(0.3, 0.3, 0.25) == (1, 1)
    assert split.cell_of(1.0, 2.6, 0.5) == (2, 5)
    assert split.cell_of(-1.0, -2.6, 0.5) == (-2, -6)
    assert split.cell_of(10.0, 45.0, 1.0) == (10, 45)
    assert split.cell_of(9.999, 44.999, 1.0) == (9, 44)


def test_points_in_different_lat_cells_may_differ_and_one_cell_never_does():
    col = [split.split_of(0.1, (k + 0.5) * 0.25, 0.25, (0.8, 0.1, 0.1), 0) for k in range(-50, 50)]
    assert set(col) == {"train", "val", "test"}
    assert len({split.split_of(0.1, 10.26 + d, 0.25, (0.8, 0.1, 0.1), 0) for d in (0, 0.1, 0.2, 0.23)}) == 1


def test_what_fractions_summing_under_one_leave_goes_to_the_last_split():
    """parse_fractions allows a sum 1e-6 short of 1; the rare place past the last edge is test's,
    never None. Shown with a large shortfall so that places do fall past it."""
    frac = (0.5, 0.25, 0.0)
    seen = {split.split_of((k + 0.5) * 0.25, 0.1, 0.25, frac, 3) for k in range(-200, 200)}
    assert seen == {"train", "val", "test"}


def test_an_empty_split_gets_no_place_and_the_whole_unit_interval_is_covered():
    places = [((k + 0.5) * 0.25, (m + 0.5) * 0.25) for k in range(-20, 20) for m in range(-10, 10)]
    assert {split.split_of(a, b, 0.25, (0.0, 1.0, 0.0), 0) for a, b in places} == {"val"}
    got = {split.split_of(a, b, 0.25, (0.5, 0.0, 0.5), 0) for a, b in places}
    assert got == {"train", "test"}


def test_a_point_on_a_cell_edge_is_in_the_cell_it_starts():
    """floor(1.0 / 0.1) is 10 while 1.0 // 0.1 is 9.0 (the remainder of 1.0 by the binary 0.1 is
    not 0): the cell is the rounded quotient's floor, so a point on an edge starts the next cell."""
    assert split.cell_of(1.0, 1.0, 0.1) == (10, 10)
    assert split.cell_of(-1.0, 2.0, 0.1) == (-10, 20)  # 2.0 // 0.1 is 19.0
