"""Label and feature bands Earth Engine can add to a pair, on the pair's own patch grid.

Three products, each a field of the raw archive and of the training records:

| field        | Earth Engine source                                     | stored                          |
|--------------|---------------------------------------------------------|---------------------------------|
| worldcover   | ``ESA/WorldCover/v200`` band ``Map`` (2021, 10 m)       | uint8 class index, 255 no data  |
| dynamicworld | ``GOOGLE/DYNAMICWORLD/V1`` band ``label``, the mode over | uint8 class index, 255 no data  |
|              | the images between the pair's two acquisitions          |                                 |
| embedding    | ``GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL`` A00..A63, the   | int8 [H, W, 64], round(127 v),  |
|              | year of the S2 acquisition (AlphaEarth Foundations)     | -128 no data                    |

Class maps are stored as indices (0..K-1), the same convention as the synthetic ``landcover``,
so one evaluation reads any of them. The embedding is quantised linearly (its values lie in
[-1, 1] and each vector has unit length): the error is at most 1/254 per axis, and a patch is 64
bytes a pixel instead of 256. AlphaEarth's own Cloud Storage copies are int8 as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NODATA = 255
EMBEDDING_SCALE = 127.0
EMBEDDING_NODATA = -128


@dataclass(frozen=True)
class ClassMap:
    ee_id: str
    band: str
    codes: tuple[int, ...]  # the product's class values, in index order
    classes: tuple[str, ...]


WORLDCOVER = ClassMap(
    "ESA/WorldCover/v200", "Map", (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100),
    ("tree cover", "shrubland", "grassland", "cropland", "built-up", "bare / sparse vegetation", "snow and ice",
     "permanent water bodies", "herbaceous wetland", "mangroves", "moss and lichen"))
DYNAMICWORLD = ClassMap(
    "GOOGLE/DYNAMICWORLD/V1", "label", tuple(range(9)),
    ("water", "trees", "grass", "flooded vegetation", "crops", "shrub and scrub", "built", "bare", "snow and ice"))
CLASS_MAPS = {"worldcover": WORLDCOVER, "dynamicworld": DYNAMICWORLD}

EMBEDDING = "embedding"
EMBEDDING_ID = "GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL"
EMBEDDING_BANDS = tuple(f"A{i:02d}" for i in range(64))

EE_FIELDS = (*CLASS_MAPS, EMBEDDING)  # what `senclr export --labels ... --embedding` can add


def bands_of(field: str) -> list[tuple[str, str]]:
    """(band, dtype) of one field in a pair's image and raw archive array."""
    if field == EMBEDDING:
        return [(b, "int8") for b in EMBEDDING_BANDS]
    return [(field, "uint8")]


def dequantize_embedding(q: np.ndarray) -> np.ndarray:
    """float32 embedding from the stored int8; no-data pixels become NaN."""
    out = q.astype(np.float32) / EMBEDDING_SCALE
    out[q == EMBEDDING_NODATA] = np.nan
    return out
