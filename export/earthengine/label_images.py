"""Earth Engine images of the label and feature fields (``senclr.label_bands``) for one pair.

Each is added to the pair image, so it is cut on the pair's own patch grid in both modes. No
``resample`` call: Earth Engine's default is nearest neighbour, which is right for classes (a
class index must never be interpolated) and keeps an embedding vector whole. Masked pixels, in
the product or outside it, are filled with the field's no-data value (``sameFootprint=False``,
as for the sensor bands).
"""

from __future__ import annotations

from datetime import datetime, timezone

import ee

from senclr.errors import AnswerError
from senclr.label_bands import (CLASS_MAPS, CLASS_NODATA, DYNAMICWORLD, EMBEDDING, EMBEDDING_BANDS,
                                EMBEDDING_ID, EMBEDDING_NODATA, EMBEDDING_SCALE, WORLDCOVER, ClassMap)


def _class_index(image: ee.Image, cmap: ClassMap, name: str) -> ee.Image:
    """Class values -> indices 0..K-1 (other values masked), then no data 255, as uint8."""
    if list(cmap.codes) != list(range(len(cmap.codes))):
        image = image.remap(list(cmap.codes), list(range(len(cmap.codes))))
    return image.unmask(CLASS_NODATA, False).toUint8().rename(name)


def worldcover() -> ee.Image:
    """ESA WorldCover v200 (2021): one global map, whatever the pair's dates."""
    return _class_index(ee.ImageCollection(WORLDCOVER.ee_id).mosaic().select(WORLDCOVER.band), WORLDCOVER,
                        "worldcover")


def dynamicworld(s2_asset: str, s1_ms: int, s2_ms: int) -> ee.Image:
    """The mode of Dynamic World's ``label`` over the images from the earlier acquisition of the
    pair to the later one, both included, over the S2 scene (Dynamic World is made from S2 scenes,
    so the pair's own scene is among them when Dynamic World processed it)."""
    lo, hi = min(s1_ms, s2_ms), max(s1_ms, s2_ms) + 1  # filterDate's end is exclusive
    images = (ee.ImageCollection(DYNAMICWORLD.ee_id).filterBounds(ee.Image(s2_asset).geometry())
              .filterDate(lo, hi).select(DYNAMICWORLD.band))
    return _class_index(images.mode(), DYNAMICWORLD, "dynamicworld")


def embedding(s2_ms: int) -> ee.Image:
    """The AlphaEarth annual embedding of the S2 acquisition's year, as int8 round(127 v)."""
    year = datetime.fromtimestamp(s2_ms / 1000, timezone.utc).year
    annual = ee.ImageCollection(EMBEDDING_ID).filterDate(f"{year}-01-01", f"{year + 1}-01-01").mosaic()
    return (annual.select(list(EMBEDDING_BANDS)).multiply(EMBEDDING_SCALE).round()
            .unmask(EMBEDDING_NODATA, False).toInt8())


def embedding_years(region: ee.Geometry) -> set[int]:
    """The years the annual embedding covers over ``region`` (one getInfo): a pair of another
    year would get an all no-data embedding."""
    starts = ee.ImageCollection(EMBEDDING_ID).filterBounds(region).aggregate_array("system:time_start").getInfo() or []
    if not isinstance(starts, list) or not all(isinstance(ms, (int, float)) and not isinstance(ms, bool) for ms in starts):
        raise AnswerError(f"Earth Engine answered the embedding's coverage query with {str(starts)[:200]} "
                          "instead of a list of start times (ms)")
    return {datetime.fromtimestamp(ms / 1000, timezone.utc).year for ms in starts}


def field_image(field: str, s2_asset: str, s1_ms: int, s2_ms: int) -> ee.Image:
    if field == "worldcover":
        return worldcover()
    if field == "dynamicworld":
        return dynamicworld(s2_asset, s1_ms, s2_ms)
    if field == EMBEDDING:
        return embedding(s2_ms)
    raise ValueError(f"unknown field {field!r}; senclr exports {', '.join([*CLASS_MAPS, EMBEDDING])}")
