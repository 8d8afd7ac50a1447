"""export/earthengine/geodesic.py: footprint edges along great circles, as Earth Engine tests containment."""

import numpy as np
from datetime import datetime, timedelta, timezone
from shapely.geometry import Point, box

from senclr.export.earthengine.geodesic import densify, great_circle
from senclr.export.earthengine.pairing import Scene, best_s1


def test_an_east_west_edge_bows_poleward_by_the_great_circle_amount():
    pts = great_circle((9.0, 46.0), (12.0, 46.0))
    # highest point at mid-longitude: tan(lat_max) = tan(46°) / cos(1.5°)
    expected = np.degrees(np.arctan(np.tan(np.radians(46.0)) / np.cos(np.radians(1.5))))
    assert abs(pts[:, 1].max() - expected) < 1e-4 and abs(pts[np.argmax(pts[:, 1]), 0] - 10.5) < 0.05
    assert np.allclose(great_circle((10.0, 44.0), (10.0, 46.0))[:, 0], 10.0)  # meridians stay straight
    assert densify(box(9, 45, 12, 46)).is_valid


def test_a_patch_just_beyond_a_straight_edge_pairs_as_earth_engine_would():
    """~1.1 km of bow at 46°N over 3° of longitude: a patch 0.5 km north of the straight edge is inside
    the geodesic footprint. The straight-line policy (the old one) dropped it; Earth Engine pairs it."""
    t0 = datetime(2021, 6, 10, 10, 30, tzinfo=timezone.utc)
    s2 = Scene("s2", t0, box(9, 44, 12, 47))
    raw = Scene("S1_near", t0 + timedelta(hours=2), box(9.0, 45.0, 12.0, 46.0))
    far = Scene("S1_far", t0 + timedelta(hours=40), box(9.0, 45.0, 12.0, 47.0))
    patch = Point(10.5, 46.0045).buffer(0.0015, cap_style="square")
    assert best_s1(patch, s2, [raw, far], 72).id == "S1_far"  # straight edges: the nearer scene missed
    geo = [Scene(s.id, s.time, densify(s.footprint)) for s in (raw, far)]
    assert best_s1(patch, s2, geo, 72).id == "S1_near"
