"""Earth Engine expressions of the export: scene queries, server-side pairing, the pair image.

Everything here builds ``ee`` objects and, where it says so, makes one ``getInfo`` call; nothing
starts a task. The pure-Python policy in ``pairing.py`` is the reference the server-side join is
checked against (``check_agreement``).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone

import ee
import shapely
from shapely.geometry import mapping, shape

from senclr.bands import CLOUD_SCORE_PLUS, S1_BANDS, S1_GRD, s2_collection
from senclr.errors import AnswerError, InputError

from . import label_images, limits
from .geodesic import densify
from .grid import Patch
from .pairing import Pairing, Scene

MAX_SCENES = 5000  # getInfo answers at most 5000 elements: beyond, ask for a smaller query
S1_NODATA = -9999.0  # masked S1 pixels: outside the physical range, so preprocessing rejects them


def ee_geometry(geom) -> ee.Geometry:
    """A planar lon/lat geometry: a bbox drawn on a map is straight in lon/lat, not geodesic."""
    return ee.Geometry(mapping(geom), None, False)


def _date(d) -> str:
    return d.isoformat()


def s2_images(params) -> ee.ImageCollection:
    """S2 scenes under the cloud limit that Cloud Score+ has scored (its images share system:index)."""
    region, start, end = ee_geometry(params.region), _date(params.start), _date(params.end)
    scored = ee.ImageCollection(CLOUD_SCORE_PLUS.ee_id).filterBounds(region).filterDate(start, end)
    return (
        ee.ImageCollection(s2_collection(params.s2_level).ee_id)
        .filterBounds(region)
        .filterDate(start, end)
        .filter(ee.Filter.lte("CLOUDY_PIXEL_PERCENTAGE", params.s2_max_cloud))
        .filter(ee.Filter.inList("system:index", scored.aggregate_array("system:index")))
    )


def _instant(d, pad: timedelta) -> str:
    """Midnight UTC of date ``d`` shifted by ``pad``, exactly: a date when whole, else date and time
    (``date - timedelta(days=1.5)`` would silently drop the half day)."""
    t = datetime(d.year, d.month, d.day, tzinfo=timezone.utc) + pad
    return t.date().isoformat() if t.time() == datetime.min.time() else t.strftime("%Y-%m-%dT%H:%M:%S")


def s1_images(params) -> ee.ImageCollection:
    """IW scenes with both VV and VH, over the dates widened by Δt on each side."""
    pad = timedelta(days=params.max_dt_days)
    return (
        ee.ImageCollection(S1_GRD.ee_id)
        .filterBounds(ee_geometry(params.region))
        .filterDate(_instant(params.start, -pad), _instant(params.end, pad))
        .filter(ee.Filter.eq("instrumentMode", "IW"))
        .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VV"))
        .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VH"))
    )


def _s2_row(img: ee.Image) -> ee.Feature:
    return ee.Feature(img.geometry(), {
        "id": img.get("system:index"), "time": img.get("system:time_start"),
        "cloud_pct": img.get("CLOUDY_PIXEL_PERCENTAGE"), "tile": img.get("MGRS_TILE"),
        "crs": img.select("B2").projection().crs(),
    })


def _s1_row(img: ee.Image) -> ee.Feature:
    return ee.Feature(img.geometry(), {
        "id": img.get("system:index"), "time": img.get("system:time_start"),
        "orbit": img.get("orbitProperties_pass"), "relative_orbit": img.get("relativeOrbitNumber_start"),
    })


def scene_table(images: ee.ImageCollection, sensor: str) -> ee.List:
    """At most MAX_SCENES + 1 scene rows (one more than allowed, to detect an oversized query)."""
    rows = images.map(_s2_row if sensor == "s2" else _s1_row)
    return ee.FeatureCollection(rows).toList(MAX_SCENES + 1)


def parse_scenes(rows: list, sensor: str) -> list[Scene]:
    """getInfo'd rows (GeoJSON features) -> Scenes; InputError when the query was too large."""
    if len(rows) > MAX_SCENES:
        raise InputError(
            f"more than {MAX_SCENES} {sensor.upper()} scenes match the region and dates: "
            "split the region or the date range into smaller exports"
        )
    scenes = []
    for i, row in enumerate(rows):
        try:
            p = row["properties"]
            scenes.append(Scene(
                id=_text(p["id"]), time=datetime.fromtimestamp(p["time"] / 1000, timezone.utc),
                footprint=densify(shapely.make_valid(shape(row["geometry"]))),  # edges geodesic, as EE tests them
                orbit=p.get("orbit"), relative_orbit=p.get("relative_orbit"),
                cloud_pct=p.get("cloud_pct"), crs=p.get("crs"), tile=p.get("tile"),
            ))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise AnswerError(f"Earth Engine answered the {sensor.upper()} scene query with a malformed row {i} "
                              f"({type(e).__name__}: {e}; a row needs id, time and a geometry): "
                              f"{json.dumps(row, default=str)[:200]}") from None
    return sorted(scenes, key=lambda s: (s.time, s.id))


def _text(value) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"id {value!r} is not a scene id")
    return value


def fetch_scenes(params) -> tuple[list[Scene], list[Scene]]:
    """(S2 scenes, S1 scenes) of the export, in one getInfo call."""
    both = ee.List([scene_table(s2_images(params), "s2"), scene_table(s1_images(params), "s1")]).getInfo()
    if not (isinstance(both, list) and len(both) == 2 and all(isinstance(t, list) for t in both)):
        raise AnswerError(f"Earth Engine answered the scene query with {json.dumps(both, default=str)[:200]} "
                          "instead of two scene tables (S2, S1)")
    return parse_scenes(both[0], "s2"), parse_scenes(both[1], "s1")


def server_side_s1(pairings: list[Pairing], params) -> ee.List:
    """For each pairing's patch and S2 time: the S1 scene Earth Engine's join picks.

    saveBest accepts a single join condition, so the footprint condition (the S1 footprint
    contains the patch) narrows the candidates per patch before the maxDifference join.
    """
    s1 = s1_images(params)
    max_diff = ee.Filter.maxDifference(
        difference=params.max_dt_hours * 3600 * 1000, leftField="system:time_start", rightField="system:time_start",
    )
    patches = ee.FeatureCollection([
        ee.Feature(ee_geometry(p.patch.polygon), {"pair_id": p.pair_id, "system:time_start": int(p.s2.time.timestamp() * 1000)})
        for p in pairings
    ])

    def best(patch: ee.Feature) -> ee.Feature:
        candidates = s1.filter(ee.Filter.contains(leftField=".geo", rightValue=patch.geometry()))
        joined = ee.Join.saveBest(matchKey="s1", measureKey="dt_ms").apply(ee.FeatureCollection([patch]), candidates, max_diff)
        s1_id = ee.Algorithms.If(joined.size().gt(0), ee.Image(joined.first().get("s1")).get("system:index"), "")
        return ee.Feature(None, {"row": ee.List([patch.get("pair_id"), s1_id])})

    return patches.map(best).aggregate_array("row")


AGREEMENT_CHUNK = 100  # pairs per agreement request: Earth Engine limits concurrent aggregations per request
_SPLIT_ON = ("too many concurrent aggregations", "memory limit", "out of memory")


def check_agreement(pairings: list[Pairing], params, chunk: int = AGREEMENT_CHUNK) -> list[str]:
    """Pair ids where Earth Engine's join picks another S1 scene ("" for none) than the Python policy.

    A chunk Earth Engine refuses as too heavy (too many concurrent aggregations, memory) is
    halved and asked again; any other error, or a single pair refused, is raised.
    """
    disagree, todo = [], [pairings[i : i + chunk] for i in range(0, len(pairings), chunk)]
    while todo:
        part = todo.pop()
        try:
            picked = _join_rows(server_side_s1(part, params).getInfo())  # keyed by pair id: order-proof
        except ee.EEException as e:
            if len(part) > 1 and any(m in str(e).lower() for m in _SPLIT_ON):
                todo += [part[len(part) // 2 :], part[: len(part) // 2]]
                continue
            raise
        disagree += [p.pair_id for p in part if picked.get(p.pair_id) != p.s1.id]
    return sorted(disagree)


def _join_rows(answer) -> dict[str, str]:
    """{pair_id: S1 id or ""} from the join's [pair_id, s1 id] rows; AnswerError for anything else."""
    if not isinstance(answer, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(v, str) for v in r) for r in answer):
        raise AnswerError(f"Earth Engine answered the pairing join with {json.dumps(answer, default=str)[:200]} "
                          "instead of [pair id, S1 scene id] rows")
    return dict(answer)


def pair_image(pairing: Pairing, s2_level: str, labels: tuple[str, ...] = ()) -> ee.Image:
    """``scene_pair_image`` of the pairing's scenes (the expression does not depend on the patch)."""
    ms = (round(pairing.s1.time.timestamp() * 1000), round(pairing.s2.time.timestamp() * 1000)) if labels else (0, 0)
    return scene_pair_image(pairing.s1.id, pairing.s2.id, s2_level, tuple(labels), *ms)


@functools.lru_cache(maxsize=4096)
def scene_pair_image(s1_id: str, s2_id: str, s2_level: str, labels: tuple[str, ...] = (), s1_ms: int = 0,
                     s2_ms: int = 0) -> ee.Image:
    """S1 VV/VH (float32 dB, bilinear), S2 bands (uint16), cs_cdf (float32), then the ``labels``
    fields (``label_images``; their dates are the scenes' times in ms): one stacked image.

    Cloud Score+ shares ``system:index`` with the S2 scene it scores. Masked pixels, inside the
    footprint or out, are filled so the NPY has no masked values: S2 with 0 (its no-data value),
    S1 with S1_NODATA, cs_cdf with 0 (cloudy, so the filter drops such pixels).
    """
    s2_bands = list(s2_collection(s2_level).band_names)
    s1 = ee.Image(f"{S1_GRD.ee_id}/{s1_id}").select(list(S1_BANDS)).resample("bilinear")
    s2 = ee.Image(f"{s2_collection(s2_level).ee_id}/{s2_id}").select(s2_bands)
    cs = ee.Image(f"{CLOUD_SCORE_PLUS.ee_id}/{s2_id}").select("cs_cdf")
    # sameFootprint=False: pixels outside a scene's footprint get the no-data value too, instead of
    # staying masked and arriving as whatever the encoder fills masked cells with (0 dB passes as S1).
    s1 = s1.unmask(S1_NODATA, False).toFloat()
    s2 = s2.unmask(0, False).toUint16()
    cs = cs.unmask(0, False).toFloat()
    image = s1.addBands(s2).addBands(cs)
    s2_asset = f"{s2_collection(s2_level).ee_id}/{s2_id}"
    for name in labels:
        image = image.addBands(label_images.field_image(name, s2_asset, s1_ms, s2_ms))
    return image


def affine_transform(p: Patch) -> dict:
    """The patch grid as computePixels' ``affineTransform``: ``Patch.transform`` (north up, y
    scale negative) is the one definition both modes cut on."""
    a, b, c, d, e, f = p.transform
    return {"scaleX": a, "shearX": b, "translateX": c, "shearY": d, "scaleY": e, "translateY": f}


def patch_projection(p: Patch) -> ee.Projection:
    """The patch grid as an Earth Engine projection: the CRS with ``Patch.transform`` as crsTransform."""
    return ee.Projection(p.crs, list(p.transform))


def pixels_request(pairing: Pairing, s2_level: str, labels: tuple[str, ...] = ()) -> dict:
    """The computePixels request of one pair: the pair image on the patch's UTM grid, as NPY."""
    p: Patch = pairing.patch
    return {
        "expression": pair_image(pairing, s2_level, labels),
        "fileFormat": "NPY",
        "grid": {"dimensions": {"width": p.size_px, "height": p.size_px}, "affineTransform": affine_transform(p),
                 "crsCode": p.crs},
    }


def patch_samples(pairing: Pairing, s2_level: str, labels: tuple[str, ...] = ()) -> ee.FeatureCollection:
    """One feature holding the whole patch: every band as a [P, P] array, cut on the patch grid.

    The pair image is reprojected onto the patch grid (``patch_projection``: the same transform
    computePixels gets), turned into P x P neighbourhood arrays with a fixed kernel whose focus
    is pixel (P/2, P/2), and sampled at that pixel's centre *in the patch grid itself*, so the
    arrays cover exactly the patch's cells, north up, row for row as in high-volume mode.
    (Sampling with ``scale=`` and a bare CRS would use that CRS's identity transform, y up: the
    arrays would come out flipped north-south and a row off.) A point has no area to subsample,
    so no ``numPixels``.
    """
    return grid_samples(pair_image(pairing, s2_level, labels), pairing.patch).map(
        lambda f: f.set("pair_id", pairing.pair_id))


def grid_samples(image: ee.Image, p: Patch) -> ee.FeatureCollection:
    """``image`` as one feature of [P, P] arrays cut on patch ``p``'s grid, as ``patch_samples``
    cuts every batch patch (``senclr export doctor`` sends ``pixelCoordinates`` through it)."""
    half = p.size_px // 2
    kernel = ee.Kernel.fixed(p.size_px, p.size_px, [[1] * p.size_px] * p.size_px, half, half, False)
    grid = patch_projection(p)
    a, _, c, _, e, f = p.transform
    focus = ee.Geometry.Point([c + (half + 0.5) * a, f + (half + 0.5) * e], p.crs)
    return image.reproject(grid).neighborhoodToArray(kernel).sample(region=focus, projection=grid, dropNulls=False)


def task_collection(pairings: list[Pairing], s2_level: str, labels: tuple[str, ...] = ()) -> ee.FeatureCollection:
    """The patches of one batch task as one collection (one feature per pair)."""
    return ee.FeatureCollection([patch_samples(p, s2_level, labels) for p in pairings]).flatten()


def table_export_config(pairings: list[Pairing], s2_level: str, bucket: str, prefix: str, description: str,
                        labels: tuple[str, ...] = ()) -> dict:
    """The ExportTableRequest of one batch task: TFRecord files under gs://bucket/prefix."""
    bands = [b for b, _ in limits.pair_bands(s2_level, labels)]
    task = ee.batch.Export.table.toCloudStorage(
        collection=task_collection(pairings, s2_level, labels), description=description, bucket=bucket,
        fileNamePrefix=prefix, fileFormat="TFRecord", selectors=["pair_id", *bands],
    )
    return task.config
