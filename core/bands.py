"""Band registry: every Earth Engine band senclr reads, with unit, resolution, dtype and range.

The physical ranges are the limits a value can take in the source product; values outside them
mark a broken patch (preprocessing rejects it with reason ``out_of_range``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    name: str
    unit: str
    resolution_m: int
    dtype: str
    nodata: float | None
    valid_min: float
    valid_max: float
    description: str = ""


@dataclass(frozen=True)
class Collection:
    key: str
    ee_id: str
    bands: tuple[Band, ...]
    description: str

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def band(self, name: str) -> Band:
        for b in self.bands:
            if b.name == name:
                return b
        raise KeyError(f"{name!r} is not a band of {self.ee_id}; bands: {', '.join(self.band_names)}")


# Sentinel-1 GRD in Earth Engine is already terrain-corrected backscatter in dB (float32).
S1_GRD = Collection(
    key="s1_grd",
    ee_id="COPERNICUS/S1_GRD",
    description="Sentinel-1 C-band SAR GRD, IW mode, dual polarisation, sigma0 in dB",
    bands=(
        Band("VV", "dB", 10, "float32", None, -50.0, 30.0, "co-polarised backscatter"),
        Band("VH", "dB", 10, "float32", None, -60.0, 20.0, "cross-polarised backscatter"),
    ),
)


def _s2(name: str, res: int, desc: str) -> Band:
    # TOA / surface reflectance scaled by 10000, stored as uint16; 0 is no data.
    return Band(name, "reflectance x 10000", res, "uint16", 0, 0.0, 65535.0, desc)


_S2_ALL = (
    _s2("B1", 60, "aerosols, 443 nm"),
    _s2("B2", 10, "blue, 490 nm"),
    _s2("B3", 10, "green, 560 nm"),
    _s2("B4", 10, "red, 665 nm"),
    _s2("B5", 20, "red edge 1, 705 nm"),
    _s2("B6", 20, "red edge 2, 740 nm"),
    _s2("B7", 20, "red edge 3, 783 nm"),
    _s2("B8", 10, "NIR, 842 nm"),
    _s2("B8A", 20, "red edge 4 / narrow NIR, 865 nm"),
    _s2("B9", 60, "water vapour, 945 nm"),
    _s2("B10", 60, "cirrus, 1375 nm (L1C only)"),
    _s2("B11", 20, "SWIR 1, 1610 nm"),
    _s2("B12", 20, "SWIR 2, 2190 nm"),
)

S2_L1C = Collection(
    key="s2_l1c",
    ee_id="COPERNICUS/S2_HARMONIZED",
    description="Sentinel-2 MSI Level-1C top-of-atmosphere reflectance, 13 bands",
    bands=_S2_ALL,
)

S2_L2A = Collection(
    key="s2_l2a",
    ee_id="COPERNICUS/S2_SR_HARMONIZED",
    description="Sentinel-2 MSI Level-2A surface reflectance, 12 bands (no B10)",
    bands=tuple(b for b in _S2_ALL if b.name != "B10"),
)

# Cloud Score+ images share system:index with the S2 scene they score; cs_cdf near 1 is clear.
CLOUD_SCORE_PLUS = Collection(
    key="cloud_score_plus",
    ee_id="GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED",
    description="Cloud Score+ per-pixel clear-sky score for Sentinel-2",
    bands=(
        Band("cs", "score", 10, "float32", None, 0.0, 1.0, "atmospheric similarity to a clear reference"),
        Band("cs_cdf", "score", 10, "float32", None, 0.0, 1.0, "cs as a cumulative distribution over time"),
    ),
)

COLLECTIONS = {c.key: c for c in (S1_GRD, S2_L1C, S2_L2A, CLOUD_SCORE_PLUS)}
S1_BANDS = S1_GRD.band_names
S2_BANDS = {"l1c": S2_L1C.band_names, "l2a": S2_L2A.band_names}

# Labels the synthetic source (and Sen1Floods11) provide.
WATER_NODATA = -1
LANDCOVER_CLASSES = ("water", "trees", "grass", "crops", "built", "bare")
LANDCOVER_NODATA = 255


def s2_collection(level: str) -> Collection:
    """The S2 collection for a processing level, 'l1c' or 'l2a'."""
    try:
        return {"l1c": S2_L1C, "l2a": S2_L2A}[level.lower()]
    except KeyError:
        raise ValueError(f"unknown Sentinel-2 level {level!r}: use 'l1c' or 'l2a'") from None


def physical_range(name: str) -> tuple[float, float]:
    """Valid (min, max) of a band name from any S1/S2/Cloud Score+ collection."""
    for c in COLLECTIONS.values():
        if name in c.band_names:
            b = c.band(name)
            return b.valid_min, b.valid_max
    raise KeyError(f"unknown band {name!r}")
