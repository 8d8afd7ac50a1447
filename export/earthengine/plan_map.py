"""The plan as an interactive HTML map (folium, the library geemap draws with): region, the
footprints of the scenes used, and every planned patch with its pair id, products and Δt."""

from __future__ import annotations

import folium
from shapely.geometry import mapping

from senclr import storage

MAX_MARKERS = 5000  # beyond this the page gets slow; the plan JSON still lists every pair


def _layer(name: str, features: list, color: str, tooltip_fields: list[str] | None = None) -> folium.GeoJson:
    data = {"type": "FeatureCollection", "features": features}
    tip = folium.GeoJsonTooltip(fields=tooltip_fields) if tooltip_fields and features else None
    return folium.GeoJson(data, name=name, tooltip=tip,
                          style_function=lambda _: {"color": color, "weight": 1, "fillOpacity": 0.05})


def _feature(geom, **props) -> dict:
    return {"type": "Feature", "geometry": mapping(geom), "properties": props}


def write_map(path: str, region, pairings, s2_scenes, s1_scenes) -> None:
    """Write the map to ``path`` (local or gs://) as one self-contained HTML page."""
    w, s, e, n = region.bounds
    fmap = folium.Map(location=[(s + n) / 2, (w + e) / 2], zoom_start=8, tiles="OpenStreetMap")
    fmap.fit_bounds([[s, w], [n, e]])
    used_s2 = {p.s2.id for p in pairings}
    used_s1 = {p.s1.id for p in pairings}
    _layer("region", [_feature(region, name="region")], "#000000").add_to(fmap)
    _layer("Sentinel-2 scenes", [_feature(x.footprint, id=x.id, time=x.time.isoformat()) for x in s2_scenes if x.id in used_s2],
           "#1b9e77", ["id", "time"]).add_to(fmap)
    _layer("Sentinel-1 scenes", [_feature(x.footprint, id=x.id, time=x.time.isoformat(), orbit=x.orbit or "")
                                 for x in s1_scenes if x.id in used_s1], "#d95f02", ["id", "time", "orbit"]).add_to(fmap)
    patches = [_feature(p.patch.polygon, pair_id=p.pair_id, s2=p.s2.id, s1=p.s1.id, dt_hours=p.dt_hours)
               for p in pairings[:MAX_MARKERS]]
    _layer("patches", patches, "#7570b3", ["pair_id", "s2", "s1", "dt_hours"]).add_to(fmap)
    centres = folium.FeatureGroup(name="patch centres")
    for p in pairings[:MAX_MARKERS]:
        folium.CircleMarker([p.patch.lat, p.patch.lon], radius=2, color="#7570b3",
                            tooltip=f"{p.pair_id} Δt {p.dt_hours:+.1f} h").add_to(centres)
    centres.add_to(fmap)
    folium.LayerControl().add_to(fmap)
    storage.write_text(path, fmap.get_root().render())
