"""Pure-Python pairing policy and patch grid: properties that the Earth Engine side must share."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from senclr.export.earthengine.grid import SEGMENTS, UtmGrid, candidate_cells, sample_patches
from senclr.export.earthengine.pairing import NO_S1, NO_S2, Scene, best_s1, dt_histogram, pair_patches
from senclr.export.earthengine.region import area_km2
from senclr.export.utm import lonlat_to_utm, lonlat_to_utm_np, utm_to_lonlat, utm_to_lonlat_np
from senclr.pair import make_pair_id

T0 = datetime(2021, 6, 1, 10, 30, tzinfo=timezone.utc)
PATCH = shapely.box(0.4, 0.4, 0.6, 0.6)
FOOTPRINTS = [shapely.box(0, 0, 1, 1), shapely.box(0.5, 0, 1.5, 1), shapely.box(0.3, 0.3, 0.7, 0.7),
              shapely.box(-1, -1, 0.45, 2)]  # contain, cut, contain, cut the patch
FEW = settings(max_examples=60, deadline=None)


def _utm_square(zone: int, e0: float, n0: float, side: float) -> shapely.Polygon:
    """A UTM-straight square as a lon/lat polygon: an S2 tile footprint."""
    t = np.linspace(0, 1, 11)
    x = np.concatenate([e0 + side * t, np.full(11, e0 + side), e0 + side * t[::-1], np.full(11, e0)])
    y = np.concatenate([np.full(11, n0), n0 + side * t, np.full(11, n0 + side), n0 + side * t[::-1]])
    return shapely.Polygon(np.column_stack(utm_to_lonlat_np(x, y, zone, True)))


# --- best_s1 -----------------------------------------------------------------------------------

s1_lists = st.lists(st.tuples(st.integers(-120, 120), st.integers(0, len(FOOTPRINTS) - 1)), max_size=12).map(
    lambda rows: [Scene(f"S1_{k:02d}", T0 + timedelta(hours=h), FOOTPRINTS[f], orbit="ASCENDING", relative_orbit=k)
                  for k, (h, f) in enumerate(rows)])
S2 = Scene("S2_A", T0, shapely.box(0, 0, 1, 1), cloud_pct=10.0, crs="EPSG:32631", tile="31NAA")


@FEW
@given(s1s=s1_lists, max_dt=st.integers(1, 100), seed=st.integers(0, 1000))
def test_best_s1_is_the_nearest_eligible_scene_whatever_the_order(s1s, max_dt, seed):
    best = best_s1(PATCH, S2, s1s, max_dt)
    eligible = [s for s in s1s if abs(s.time - T0) <= timedelta(hours=max_dt) and s.footprint.contains(PATCH)]
    if best is None:
        assert not eligible
        return
    gap = abs(best.time - T0)
    assert gap <= timedelta(hours=max_dt) and best.footprint.contains(PATCH)
    assert not [s for s in eligible if (abs(s.time - T0), s.id) < (gap, best.id)]
    shuffled = list(s1s)
    random.Random(seed).shuffle(shuffled)
    assert best_s1(PATCH, S2, shuffled, max_dt) == best


def test_a_gap_of_exactly_max_dt_is_included_and_ties_go_to_the_smaller_id():
    before = Scene("S1_b", T0 - timedelta(hours=72), FOOTPRINTS[0])
    after = Scene("S1_a", T0 + timedelta(hours=72), FOOTPRINTS[0])
    assert best_s1(PATCH, S2, [before], 72) == before
    assert best_s1(PATCH, S2, [before], 71.99) is None
    assert best_s1(PATCH, S2, [before, after], 72) == after
    assert best_s1(PATCH, S2, [Scene("S1_c", T0, FOOTPRINTS[1])], 72) is None  # footprint cuts the patch


def test_scene_times_must_be_aware():
    with pytest.raises(ValueError, match="timezone"):
        Scene("x", datetime(2021, 1, 1), FOOTPRINTS[0])


# --- pair_patches ------------------------------------------------------------------------------

def _world():
    """A 3 x 3 block of patches in zone 31, seen by two S2 scenes of which one misses a corner."""
    grid = UtmGrid("EPSG:32631", 16, 10.0)
    patches = [grid.patch(3000 + i, 30000 + j) for i in range(3) for j in range(3)]
    whole = shapely.union_all([p.polygon for p in patches]).buffer(1e-3)
    part = shapely.union_all([p.polygon for p in patches[:6]]).buffer(1e-5)
    return patches, whole, part


s2_lists = st.lists(st.tuples(st.integers(-48, 48), st.booleans(), st.integers(0, 100)), min_size=1, max_size=4)
s1_rows = st.lists(st.tuples(st.integers(-150, 150), st.booleans()), max_size=10)


@FEW
@given(s2_rows=s2_lists, s1_rows=s1_rows, max_dt=st.integers(1, 96), seed=st.integers(0, 1000))
def test_pair_patches_picks_the_best_pair_and_drops_the_rest(s2_rows, s1_rows, max_dt, seed):
    patches, whole, part = _world()
    s2s = [Scene(f"S2_{k}", T0 + timedelta(hours=h), whole if full else part, cloud_pct=c, crs="EPSG:32631")
           for k, (h, full, c) in enumerate(s2_rows)]
    s1s = [Scene(f"S1_{k}", T0 + timedelta(hours=h), whole if full else part, orbit="DESCENDING", relative_orbit=8)
           for k, (h, full) in enumerate(s1_rows)]
    samples = [(p, sorted(s.id for s in s2s if s.footprint.contains(p.polygon))) for p in patches]
    pairings, dropped = pair_patches(samples, s2s, s1s, max_dt)
    assert len(pairings) + len(dropped) == len(patches)
    for pr in pairings:
        assert abs(pr.dt_hours) <= max_dt and pr.s1.footprint.contains(pr.patch.polygon)
        assert pr.s2.footprint.contains(pr.patch.polygon)
        assert pr.dt_hours == pytest.approx((pr.s1.time - pr.s2.time).total_seconds() / 3600)
        assert pr.pair_id == make_pair_id(pr.patch.lon, pr.patch.lat, pr.s1.id, pr.s2.id)
        rank = (abs(pr.dt_hours), pr.s2.cloud_pct, pr.s2.id)
        for s2 in s2s:
            s1 = best_s1(pr.patch.polygon, s2, s1s, max_dt) if s2.footprint.contains(pr.patch.polygon) else None
            assert s1 is None or (abs((s1.time - s2.time).total_seconds()) / 3600, s2.cloud_pct, s2.id) >= rank
    for patch, reason in dropped:
        containing = [s for s in s2s if s.footprint.contains(patch.polygon)]
        assert reason == (NO_S1 if containing else NO_S2)
        assert all(best_s1(patch.polygon, s2, s1s, max_dt) is None for s2 in containing)
    rng = random.Random(seed)
    s2_mixed, s1_mixed = rng.sample(s2s, len(s2s)), rng.sample(s1s, len(s1s))
    assert pair_patches(samples, s2_mixed, s1_mixed, max_dt) == (pairings, dropped)


def test_dt_histogram_counts_every_pair():
    patches, whole, _ = _world()
    s2 = Scene("S2", T0, whole, cloud_pct=1.0, crs="EPSG:32631")
    s1s = [Scene("S1_near", T0 + timedelta(hours=-30), whole)]
    pairings, _ = pair_patches([(p, ["S2"]) for p in patches], [s2], s1s, 72)
    h = dt_histogram(pairings)
    assert h["n"] == sum(h["counts"]) == 9 and h["median_abs_hours"] == 30
    assert h["counts"][h["edges_hours"].index(-36.0)] == 9
    assert dt_histogram([])["n"] == 0


# --- the grid ---------------------------------------------------------------------------------

# WGS84's meridian arc from the equator to 45° (m), a published constant independent of PROJ.
MERIDIAN_ARC_45 = 4_984_944.378


@pytest.mark.parametrize("zone", [1, 31, 60])
def test_senclr_asks_pyproj_for_lon_lat_order_the_right_zone_and_hemisphere(zone):
    cm = 6.0 * zone - 183.0
    assert lonlat_to_utm(cm, 45.0, zone, True) == pytest.approx((500_000.0, 0.9996 * MERIDIAN_ARC_45), abs=0.01)
    assert lonlat_to_utm(cm, -45.0, zone, False) == pytest.approx((500_000.0, 10_000_000 - 0.9996 * MERIDIAN_ARC_45), abs=0.01)
    (ew, nw), (ee, ne) = lonlat_to_utm(cm - 2, 50.0, zone, True), lonlat_to_utm(cm + 2, 50.0, zone, True)
    assert ew + ee == pytest.approx(1_000_000.0, abs=1e-6) and nw == pytest.approx(ne, abs=1e-6)  # symmetric about the CM


def test_utm_np_matches_the_scalar_calls_and_round_trips():
    lon, lat = np.array([2.35, 5.9, -1.0]), np.array([48.85, 45.0, 60.1])
    e, n = lonlat_to_utm_np(lon, lat, 31, True)
    for k in range(3):
        assert np.allclose((e[k], n[k]), lonlat_to_utm(lon[k], lat[k], 31, True), atol=1e-6)
        assert np.allclose(utm_to_lonlat_np(e[k], n[k], 31, True), (lon[k], lat[k]), atol=1e-9)
    assert np.allclose(utm_to_lonlat(e[0], n[0], 31, True), (lon[0], lat[0]), atol=1e-9)


@pytest.mark.parametrize("crs, zone, north, i, j", [("EPSG:32633", 33, True, 300, 3900),
                                                    ("EPSG:32756", 56, False, 260, 4900)])
def test_patch_transform_polygon_and_centre_agree(crs, zone, north, i, j):
    patch = UtmGrid(crs, 128, 10.0).patch(i, j)
    assert (patch.x0, patch.y0) == (i * 1280.0, j * 1280.0)
    assert patch.transform == (10.0, 0.0, patch.x0, 0.0, -10.0, patch.y0)
    a, _, c, _, e, f = patch.transform
    corners = [(c, f), (c, f + 128 * e), (c + 128 * a, f + 128 * e), (c + 128 * a, f)]  # UL, LL, LR, UR
    ring = list(patch.polygon.exterior.coords)
    for k, (x, y) in enumerate(corners):
        assert np.allclose(lonlat_to_utm(*ring[k * SEGMENTS], zone, north), (x, y), atol=1e-4)
    assert patch.polygon.exterior.is_ccw
    assert np.allclose((patch.lon, patch.lat), utm_to_lonlat(c + 64 * a, f + 64 * e, zone, north), atol=1e-6)


def test_candidate_cells_lie_inside_the_region_on_the_fixed_partition():
    region = shapely.box(2.0, 48.0, 2.1, 48.05)
    cells = list(candidate_cells(region, "EPSG:32631", 128, 10))
    assert 10 < len(cells) < area_km2(region) / 1.28**2
    assert all(region.contains(c.polygon) and c.x0 % 1280 == 0 and c.y0 % 1280 == 0 for c in cells)
    assert len({c.key for c in cells}) == len(cells)


@pytest.fixture(scope="module")
def two_zones():
    """A region across the 31/32 zone boundary (6°E) seen by tiles of both zones, 3 dates each."""
    region = shapely.Polygon([(5.2, 45.2), (6.8, 45.1), (6.9, 46.0), (5.6, 46.1)])
    fps = []
    for zone, e0 in ((31, 650_000), (32, 230_000)):
        for n0 in (4_990_000, 5_090_000):
            for day in range(3):
                fps.append((f"2021060{day}_T{zone}_{n0}", f"EPSG:326{zone}", _utm_square(zone, e0, n0, 109_800)))
    return region, fps


def test_sampled_patches_do_not_overlap_and_lie_inside_region_and_footprints(two_zones):
    region, fps = two_zones
    found = sample_patches(region, fps, 300, 128, 10, seed=1)
    assert len(found) == 300
    assert {p.crs for p, _ in found} == {"EPSG:32631", "EPSG:32632"}
    polys = [p.polygon for p, _ in found]
    tree = shapely.STRtree(polys)
    a, b = tree.query(polys, predicate="intersects")
    pairs = [(i, j) for i, j in zip(a, b) if i < j]
    assert not any(shapely.relate_pattern(polys[i], polys[j], "T********") for i, j in pairs)
    for patch, ids in found:
        assert region.contains(patch.polygon)
        want = sorted(i for i, crs, g in fps if crs == patch.crs and g.contains(patch.polygon))
        assert ids == want and ids
        assert patch.x0 % 10 == 0 and patch.y0 % 10 == 0 and patch.x0 % 1280 == 0


def test_patches_of_two_zones_never_overlap_even_where_the_region_is_packed(two_zones):
    """A strip along the 6°E zone boundary sampled to exhaustion: cells of the two zones' grids
    cross each other there, so only the lon/lat occupancy check keeps them apart."""
    _, fps = two_zones
    strip = shapely.box(5.97, 45.3, 6.03, 45.45)
    found = sample_patches(strip, fps, 1000, 64, 10, seed=2)
    assert {p.crs for p, _ in found} == {"EPSG:32631", "EPSG:32632"} and len(found) > 100
    polys = [p.polygon for p, _ in found]
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    assert not any(shapely.relate_pattern(polys[i], polys[j], "T********") for i, j in zip(a, b) if i < j)


def test_sampling_is_reproducible_from_the_seed_and_order_free(two_zones):
    region, fps = two_zones
    keys = lambda found: [p.key for p, _ in found]  # noqa: E731
    first = sample_patches(region, fps, 50, 64, 10, seed=7)
    assert keys(first) == keys(sample_patches(region, fps[::-1], 50, 64, 10, seed=7))
    assert first == sample_patches(region, fps, 50, 64, 10, seed=7)
    other = sample_patches(region, fps, 50, 64, 10, seed=8)
    assert len(set(keys(first)) & set(keys(other))) < 10


def test_sampling_spreads_over_the_region(two_zones):
    region, fps = two_zones
    found = sample_patches(region, fps, 64, 128, 10, seed=3)
    lons = np.array([p.lon for p, _ in found])
    lats = np.array([p.lat for p, _ in found])
    quarters = np.histogram2d(lons, lats, bins=2, range=[[5.2, 6.9], [45.1, 46.1]])[0]
    assert quarters.min() >= 8  # an even share is 16 of 64 (the region is a quadrilateral)


def test_a_small_region_is_exhausted_quickly():
    region = shapely.box(3.0, 46.0, 3.2, 46.1)
    fps = [("S2_x", "EPSG:32631", _utm_square(31, 400_000, 5_000_000, 109_800))]
    found = sample_patches(region, fps, 10_000, 128, 10, seed=0)
    every = [c for c in candidate_cells(region, "EPSG:32631", 128, 10) if fps[0][2].contains(c.polygon)]
    assert sorted(p.key for p, _ in found) == sorted(c.key for c in every) and len(every) > 40
    assert sample_patches(region, [], 10, 128, 10, seed=0) == []
    far = [("S2_y", "EPSG:32631", _utm_square(31, 400_000, 4_000_000, 109_800))]
    assert sample_patches(region, far, 10, 128, 10, seed=0) == []


def test_a_region_of_the_size_limit_is_sampled_lazily():
    region = shapely.box(0.0, 44.0, 7.3, 48.0)  # ~251,000 km², ~150,000 cells of 1.28 km, zones 30-32
    assert 245_000 < area_km2(region) < 255_000
    fps = [(f"S2_{zone}_{e0}_{n0}", f"EPSG:326{zone}", _utm_square(zone, e0, n0, 109_800))
           for zone in (30, 31, 32) for e0 in range(100_000, 800_000, 100_000)
           for n0 in range(4_800_000, 5_400_000, 100_000)]
    found = sample_patches(region, fps, 1000, 128, 10, seed=0)
    assert len(found) == 1000
