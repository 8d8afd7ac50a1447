"""Render co-registered Sentinel-1, Sentinel-2 and Cloud Score+ from a synthetic land-cover map.

The physics is simplified but points the right way, so what an encoder learns from the pairs
transfers: water is dark to radar (specular) and in NIR/SWIR; vegetation has the red edge and NIR
plateau; built-up areas are radar-bright (double bounce) and SWIR-bright. Radar speckle is
multiplicative in linear power. Clouds hide the surface from S2 only: S1 never sees them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from senclr.bands import S1_BANDS, S2_BANDS, physical_range

from .world import CROPS, WATER, World, smooth_field

L1C = S2_BANDS["l1c"]
ENL = 4.4  # equivalent number of looks of an IW GRD high-resolution product

# sigma0 in dB per class (VV, VH) and within-class texture std in dB;
# rows: water, trees, grass, crops, built, bare
S1_DB = np.array([[-22.0, -28.0], [-7.5, -13.5], [-11.0, -18.0], [-10.0, -16.0], [-1.0, -8.0], [-14.0, -22.0]])
ROAD_DB = np.array([-15.0, -23.0])  # asphalt reflects specularly away from the radar
S1_TEXTURE_DB = np.array([0.6, 1.0, 1.0, 0.8, 2.5, 1.2])

# Surface reflectance per class over B1..B12 (order of L1C; B10 is the cirrus band, ~0 at ground).
#                  B1     B2     B3     B4     B5     B6     B7     B8    B8A     B9    B10    B11    B12
SURFACE = np.array([
    [0.045, 0.050, 0.055, 0.035, 0.028, 0.020, 0.016, 0.014, 0.012, 0.008, 0.001, 0.006, 0.004],  # water
    [0.020, 0.025, 0.045, 0.025, 0.070, 0.200, 0.250, 0.280, 0.290, 0.280, 0.001, 0.140, 0.065],  # trees
    [0.030, 0.035, 0.065, 0.045, 0.100, 0.240, 0.290, 0.310, 0.320, 0.300, 0.001, 0.220, 0.120],  # grass
    [0.025, 0.030, 0.070, 0.040, 0.110, 0.300, 0.370, 0.400, 0.410, 0.380, 0.001, 0.230, 0.120],  # crops
    [0.090, 0.100, 0.110, 0.120, 0.130, 0.145, 0.155, 0.165, 0.170, 0.160, 0.002, 0.220, 0.200],  # built
    [0.070, 0.085, 0.115, 0.160, 0.190, 0.215, 0.230, 0.245, 0.255, 0.240, 0.002, 0.330, 0.280],  # bare
])
SURFACE32 = SURFACE.astype(np.float32)
SOIL = SURFACE[-1]  # a crop parcel with little vigour shows its soil
TEXTURE = np.array([0.05, 0.10, 0.05, 0.06, 0.12, 0.08])  # within-class relative variation
# Top-of-atmosphere extras: Rayleigh/aerosol path reflectance (L1C only), B9 water-vapour absorption.
PATH = np.array([0.095, 0.065, 0.040, 0.022, 0.018, 0.013, 0.010, 0.008, 0.007, 0.004, 0.0, 0.001, 0.0])
TRANSMIT = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.45, 1.0, 1.0, 1.0])
CLOUD = np.array([0.50, 0.48, 0.47, 0.46, 0.47, 0.48, 0.48, 0.48, 0.48, 0.35, 0.12, 0.36, 0.24])
HAZE = np.array([0.80, 0.75, 0.65, 0.55, 0.50, 0.45, 0.40, 0.38, 0.37, 0.30, 0.25, 0.20, 0.12])
SKY_REGIMES = {"clear": 0.55, "partly": 0.30, "overcast": 0.15}


@dataclass(frozen=True)
class Sky:
    """What lies between S2 and the ground: cloud opacity, the cloud's shadow and thin haze."""

    opacity: np.ndarray  # [H, W] 0 clear .. 1 opaque
    shadow: np.ndarray  # [H, W] 0 lit .. 1 fully in cloud shadow
    haze: float  # thin haze / cirrus reflectance added everywhere
    regime: str

    def cloud_fraction(self, threshold: float = 0.3) -> float:
        return float(np.mean(self.opacity > threshold))


def _clip_db(db: np.ndarray, band: str) -> np.ndarray:
    lo, hi = physical_range(band)
    return np.clip(db, lo, hi)


def render_s1(world: World, rng: np.random.Generator) -> np.ndarray:
    """VV, VH sigma0 in dB [H, W, 2] float32: class backscatter, texture, field effects, speckle."""
    lc = world.landcover
    h, w = lc.shape
    db = S1_DB[lc].copy()
    db[world.road] = ROAD_DB
    texture = smooth_field(rng, (h, w), 1.5)
    db += (texture * S1_TEXTURE_DB[lc])[..., None]
    field_db = rng.normal(0.0, 1.0, world.n_parcels)[world.parcel]  # tillage, moisture per parcel
    crop = lc == CROPS
    db[crop, 0] += field_db[crop] + 2.0 * (world.vigour[crop] - 0.5)
    db[crop, 1] += field_db[crop] + 4.0 * (world.vigour[crop] - 0.5)  # VH follows biomass
    land = lc != WATER
    db[land] += rng.normal(0.0, 0.8)  # soil moisture of the day
    water = ~land
    wind = rng.uniform(0.0, 5.0) * np.abs(smooth_field(rng, (h, w), 4.0))  # wind-roughened water
    db[water, 0] += wind[water]
    db[water, 1] += 0.5 * wind[water]
    y, x = np.mgrid[0:h, 0:w]
    db += (rng.normal(0, 0.02) * (x if rng.random() < 0.5 else y))[..., None]  # incidence angle
    power = 10.0 ** (db / 10.0) * rng.gamma(ENL, 1.0 / ENL, db.shape)  # multiplicative speckle
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    return np.stack([_clip_db(db[..., i], b) for i, b in enumerate(S1_BANDS)], axis=-1).astype(np.float32)


def make_sky(rng: np.random.Generator, size: int, regime: str | None = None) -> Sky:
    """Cloud opacity from a smooth field cut at a coverage quantile, with a displaced shadow."""
    regime = regime or list(SKY_REGIMES)[rng.choice(len(SKY_REGIMES), p=list(SKY_REGIMES.values()))]
    haze = float(rng.uniform(0.01, 0.06)) if rng.random() < 0.3 else 0.0
    zeros = np.zeros((size, size))
    if regime == "clear":
        return Sky(zeros, zeros, haze, regime)
    cover, peak = (rng.uniform(0.1, 0.7), rng.uniform(0.6, 1.0)) if regime == "partly" else \
        (rng.uniform(0.85, 1.0), rng.uniform(0.85, 1.0))
    pad = size // 2
    field = smooth_field(rng, (2 * size, 2 * size), [(size * rng.uniform(0.15, 0.4), 1.0), (2.0, 0.1)], pad=0)
    q = np.quantile(field[pad:pad + size, pad:pad + size], 1 - cover)
    full = peak * np.clip((field - q) / 0.6, 0, 1) ** 0.7
    dy, dx = rng.integers(-pad // 2, pad // 2 + 1, 2)
    shadow = full[pad + dy:pad + dy + size, pad + dx:pad + dx + size]
    return Sky(full[pad:pad + size, pad:pad + size], shadow, haze, regime)


def surface_reflectance(world: World, rng: np.random.Generator) -> np.ndarray:
    """Ground reflectance [H, W, 13] (fraction): class spectra, crop vigour, texture, noise."""
    lc = world.landcover
    h, w = lc.shape
    refl = SURFACE32[lc]
    crop = lc == CROPS
    g = world.vigour[crop][:, None]
    refl[crop] = g * SURFACE[CROPS] + (1 - g) * SOIL
    texture = smooth_field(rng, (h, w), 1.2)
    refl *= (1.0 + TEXTURE[lc] * texture).astype(np.float32)[..., None]
    water = lc == WATER
    turbidity = rng.uniform(0.0, 0.04) * (1 + 0.5 * smooth_field(rng, (h, w), 5.0))
    refl[water, 1:5] += turbidity[water, None] * np.array([0.6, 1.0, 0.9, 0.5])  # sediment in B2-B5
    noise = rng.standard_normal((2, *refl.shape), dtype=np.float32)
    return np.maximum(refl * (1.0 + 0.02 * noise[0]) + 0.002 * noise[1], 0.0)  # sensor noise


def render_s2(world: World, sky: Sky, rng: np.random.Generator, level: str = "l1c") -> np.ndarray:
    """S2 reflectance x 10000 [H, W, C] uint16 as seen through the sky; 12 bands for L2A."""
    refl = surface_reflectance(world, rng)
    if level == "l1c":
        refl = refl * TRANSMIT + PATH  # top of atmosphere
    lit = 1.0 - 0.65 * sky.shadow * (1.0 - sky.opacity)
    a = sky.opacity[..., None]
    brightness = 0.85 + 0.3 * a
    toa = (1 - a) * refl * lit[..., None] + a * brightness * CLOUD + sky.haze * HAZE
    if sky.opacity.any():
        toa *= 1.0 + 0.01 * rng.standard_normal(toa.shape, dtype=np.float32) * a  # cloud tops are lumpy
    dn = np.clip(np.rint(toa * 10000.0), 1, 65535).astype(np.uint16)  # 0 is no data
    if level == "l2a":
        dn = dn[..., [i for i, b in enumerate(L1C) if b in S2_BANDS["l2a"]]]
    return dn


def cloud_score(sky: Sky, rng: np.random.Generator) -> np.ndarray:
    """Cloud Score+ cs_cdf [H, W] float32: near 1 over clear ground, low under cloud or shadow."""
    clear = rng.uniform(0.88, 1.0)
    cs = clear - 1.2 * sky.opacity - 0.5 * sky.shadow * (1 - sky.opacity) - 3.0 * sky.haze
    cs += rng.normal(0.0, 0.03, cs.shape)
    return np.clip(cs, 0.0, 1.0).astype(np.float32)
