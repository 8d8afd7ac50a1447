"""senclr.export.preview: the plan over the real scenes in a geemap.Map, against the fake server
(map tile requests answered)."""

import json
import os
import urllib.request

import pytest

from senclr.errors import InputError
from tests.fake_ee import fake_ee_server, find_calls  # noqa: F401
from tests.test_export_ee import _plan, ee_server  # noqa: F401


@pytest.fixture
def planned(ee_server, tmp_path):  # noqa: F811
    out = _plan(ee_server, tmp_path / "plan")
    return out, json.load(open(os.path.join(out, "plan.json")))


def _loaded(body) -> set[str]:
    return {c["id"] for c in find_calls(body["expression"], "Image.load")}


def test_preview_shows_one_pair_over_its_scenes_as_earth_engine_tile_layers(planned, ee_server):  # noqa: F811
    from senclr.export import preview

    out, plan = planned
    entry = plan["pairs"][3]
    s2, s1 = entry["s2"]["id"], entry["s1"]["id"]
    m = preview(out, pair=entry["pair_id"], credentials="none", api_url=ee_server.url)
    layers = {layer.name: layer for layer in m.layers}
    asked = [_loaded(b) for b in ee_server.maps]
    assert asked[:3] == [{f"COPERNICUS/S2_HARMONIZED/{s2}"}, {f"COPERNICUS/S1_GRD/{s1}"},
                         {f"GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED/{s2}"}]
    assert asked[3] == {f"COPERNICUS/S2_HARMONIZED/{s2}", f"COPERNICUS/S1_GRD/{s1}"}  # both footprints
    vis = [{k: v for k, v in find_calls(b["expression"], "Image.visualize")[0].items() if k != "image"}
           for b in ee_server.maps[:3]]
    assert vis == [{"bands": ["B4", "B3", "B2"], "min": 0, "max": 3000}, {"bands": ["VV"], "min": -25, "max": 0},
                   {"bands": ["cs_cdf"], "min": 0, "max": 1, "palette": ["#440154", "#21918c", "#fde725"]}]
    for name in (f"S2 true colour {s2}", f"S1 VV {s1}", f"cs_cdf {s2}", "pair footprints"):
        url = layers[name].url.format(z=12, x=2100, y=1400)
        assert url.startswith(ee_server.url)
        with urllib.request.urlopen(url) as r:  # the tile the widget would fetch
            assert r.status == 200 and r.read(8) == b"\x89PNG\r\n\x1a\n"
    patches = next(layer for name, layer in layers.items() if name.startswith("patches"))
    assert len(patches.data["features"]) == len(plan["pairs"]) == 12
    assert {f["properties"]["pair_id"] for f in patches.data["features"]} == {p["pair_id"] for p in plan["pairs"]}
    assert "region" in layers
    assert (m.center[0], m.center[1]) == pytest.approx((entry["patch"]["lat"], entry["patch"]["lon"]))


def test_preview_refuses_what_is_not_a_plan_or_a_pair(planned, ee_server, tmp_path):  # noqa: F811
    from senclr.export import preview

    out, plan = planned
    with pytest.raises(InputError, match="no plan at"):
        preview(str(tmp_path / "nothing"), api_url=ee_server.url)
    with pytest.raises(InputError, match="out of range: the plan has 12 pairs"):
        preview(plan, pair=12, credentials="none", api_url=ee_server.url)
    with pytest.raises(InputError, match="no pair 'feedface'"):
        preview(plan, pair="feedface", credentials="none", api_url=ee_server.url)
    with pytest.raises(InputError, match="not a senclr export plan"):
        preview({"kind": "something else"}, api_url=ee_server.url)
    assert not ee_server.maps  # nothing asked of Earth Engine
