"""The plan over the real scenes, in a notebook: an interactive ``geemap.Map``.

``senclr export plan`` writes an offline HTML map of the geometry (``plan_map.py``); this one
also shows what the pixels will be. For one chosen pair it adds, as Earth Engine tile layers,
the S2 scene in true colour, the S1 scene's VV and the pair's Cloud Score+ ``cs_cdf``, plus the
two scenes' footprints as Earth Engine has them; the region and every planned patch come from
the plan itself (local GeoJSON, no request). Earth Engine renders the tiles, so the map needs
the same credentials and project as ``senclr export run``.
"""

from __future__ import annotations

import json

from senclr import storage
from senclr.bands import CLOUD_SCORE_PLUS, S1_GRD, s2_collection
from senclr.errors import InputError

from .grid import UtmGrid
from .ledger import LEDGER, PLAN

MAX_PATCHES = 5000  # as in the HTML map: beyond this the widget gets slow
S2_TRUE_COLOUR = {"bands": ["B4", "B3", "B2"], "min": 0, "max": 3000}
S1_VV = {"bands": ["VV"], "min": -25, "max": 0}
CS_CDF = {"bands": ["cs_cdf"], "min": 0, "max": 1, "palette": ["#440154", "#21918c", "#fde725"]}


def load_plan(plan) -> dict:
    """A plan dict from a dict, a plan JSON file, or an export's --out (its ledger's plan)."""
    if isinstance(plan, dict):
        doc = plan
    else:
        given = str(plan)
        tried = [given] if given.endswith(".json") else [storage.join(given, LEDGER, PLAN), storage.join(given, PLAN)]
        uri = next((u for u in tried if storage.exists(u)), None)
        if uri is None:
            raise InputError(f"no plan at {' or '.join(tried)}: give the plan.json `senclr export plan` wrote, or "
                             "the --out of a plan or run (a run keeps its plan in ledger/plan.json)")
        try:
            doc = json.loads(storage.read_text(uri))
        except ValueError as e:
            raise InputError(f"{uri} is not JSON ({e}): give the plan.json `senclr export plan` wrote") from None
    if not isinstance(doc, dict) or doc.get("kind") != "senclr-export-plan" or not isinstance(doc.get("pairs"), list):
        raise InputError("this is not a senclr export plan (kind 'senclr-export-plan' with a pairs list)")
    return doc


def choose_pair(plan: dict, pair: int | str) -> dict:
    """A plan entry by index or pair id; InputError naming what exists."""
    pairs = plan["pairs"]
    if not pairs:
        raise InputError("the plan has no pairs to preview (its region and dates found none)")
    if isinstance(pair, int) and not isinstance(pair, bool):
        if not -len(pairs) <= pair < len(pairs):
            raise InputError(f"pair index {pair} is out of range: the plan has {len(pairs)} pairs")
        return pairs[pair]
    for entry in pairs:
        if entry["pair_id"] == pair:
            return entry
    raise InputError(f"no pair {pair!r} in the plan; its first ids: {', '.join(p['pair_id'] for p in pairs[:5])}")


def patch_polygon(patch: dict):
    """A plan entry's patch as its lon/lat polygon (the grid's own cell)."""
    grid = UtmGrid(patch["crs"], patch["size_px"], patch["scale"])
    return grid.patch(round(patch["x0"] / grid.side), round(patch["y0"] / grid.side)).polygon


def _feature_collection(features: list) -> dict:
    return {"type": "FeatureCollection", "features": features}


def _geojson_layers(plan: dict) -> tuple[dict, dict]:
    from shapely.geometry import mapping

    region = _feature_collection([{"type": "Feature", "geometry": plan["parameters"]["region"], "properties": {}}])
    patches = _feature_collection([
        {"type": "Feature", "geometry": mapping(patch_polygon(p["patch"])),
         "properties": {"pair_id": p["pair_id"], "dt_hours": p["dt_hours"]}}
        for p in plan["pairs"][:MAX_PATCHES]])
    return region, patches


def preview(plan, pair: int | str = 0, project: str | None = None, credentials: str = "default",
            api_url: str | None = None, height: str = "600px"):
    """A ``geemap.Map`` of ``plan`` (dict, plan JSON or export --out) centred on one pair.

    ``pair`` is an index into the plan's pairs or a pair id. ``project`` defaults to the plan's;
    ``credentials`` and ``api_url`` are those of ``senclr export`` (see docs/export.md).
    """
    import ee
    import geemap

    from .session import connect

    doc = load_plan(plan)
    entry = choose_pair(doc, pair)
    params = doc["parameters"]
    connect(project or params.get("project"), credentials, api_url)
    s2_id, s1_id = entry["s2"]["id"], entry["s1"]["id"]
    s2 = ee.Image(f"{s2_collection(params['s2_level']).ee_id}/{s2_id}")
    s1 = ee.Image(f"{S1_GRD.ee_id}/{s1_id}")
    cs = ee.Image(f"{CLOUD_SCORE_PLUS.ee_id}/{s2_id}")
    footprints = ee.FeatureCollection([ee.Feature(s2.geometry(), {"scene": s2_id}),
                                       ee.Feature(s1.geometry(), {"scene": s1_id})])

    m = geemap.Map(center=(entry["patch"]["lat"], entry["patch"]["lon"]), zoom=13, height=height,
                   add_google_map=False, search_ctrl=False, draw_ctrl=False, measure_ctrl=False, toolbar_ctrl=False,
                   ee_initialize=False)  # connected above, with senclr's credentials and endpoint
    m.add_layer(s2, S2_TRUE_COLOUR, f"S2 true colour {s2_id}")
    m.add_layer(s1, S1_VV, f"S1 VV {s1_id}", shown=False)
    m.add_layer(cs, CS_CDF, f"cs_cdf {s2_id}", shown=False, opacity=0.7)
    m.add_layer(footprints, {"color": "ff7f00"}, "pair footprints")
    region, patches = _geojson_layers(doc)
    m.add_geojson(region, layer_name="region", style={"color": "black", "weight": 2, "fillOpacity": 0})
    m.add_geojson(patches, layer_name=f"patches ({len(patches['features'])} of {len(doc['pairs'])})",
                  style={"color": "#7570b3", "weight": 1, "fillOpacity": 0.1})
    return m
