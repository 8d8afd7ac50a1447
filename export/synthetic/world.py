"""A procedural landscape for one patch: the land-cover map both sensors are rendered from.

Everything is built from smooth random fields (FFT-filtered white noise, numpy only) and a few
analytic shapes, so a patch shows the spatial structure encoders must learn: lakes in low ground,
meandering rivers, rectangular crop parcels, clustered built-up areas, roads, forest stands.
Class codes are indices into ``senclr.bands.LANDCOVER_CLASSES``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from senclr.bands import LANDCOVER_CLASSES

WATER, TREES, GRASS, CROPS, BUILT, BARE = (LANDCOVER_CLASSES.index(c) for c in
                                           ("water", "trees", "grass", "crops", "built", "bare"))

P_WATER = 0.5  # share of patches that hold a lake or river: keeps water segmentation balanced
WATER_FRAC = (0.05, 0.4)  # covered share of a patch that holds water (log-uniform)

# name: (probability, tree cover range, mean built clusters, parcel classes P(crops, grass, bare))
LANDSCAPES = {
    "farmland": (0.40, (0.0, 0.15), 0.3, (0.70, 0.25, 0.05)),
    "forest": (0.20, (0.5, 0.9), 0.1, (0.30, 0.60, 0.10)),
    "mixed": (0.20, (0.15, 0.45), 0.5, (0.50, 0.40, 0.10)),
    "urban": (0.12, (0.0, 0.2), 2.0, (0.30, 0.50, 0.20)),
    "upland": (0.08, (0.0, 0.3), 0.1, None),  # no parcels: grass and bare rock in natural shapes
}


@dataclass(frozen=True)
class World:
    """Land cover plus the per-parcel structure the renderers need for field-to-field variation."""

    landcover: np.ndarray  # [H, W] uint8 class codes
    parcel: np.ndarray  # [H, W] int32 parcel index (0..n_parcels-1), shared by both sensors
    n_parcels: int
    vigour: np.ndarray  # [H, W] float32 in [0, 1]: crop greenness / biomass per parcel
    road: np.ndarray  # [H, W] bool: roads (class built) are smooth asphalt, dark to radar
    landscape: str


@functools.lru_cache(maxsize=32)
def _freq2(gh: int, gw: int) -> np.ndarray:
    """Squared spatial frequency of each rfft2 coefficient (cached: patch sizes repeat)."""
    return np.fft.fftfreq(gh)[:, None] ** 2 + np.fft.rfftfreq(gw)[None, :] ** 2


def smooth_field(rng: np.random.Generator, shape, scales, pad: int | None = None) -> np.ndarray:
    """White noise low-pass filtered in Fourier space, zero mean and unit std.

    ``scales`` is a correlation length in pixels or [(length, weight), ...] mixed in one FFT,
    which gives less blobby, more natural shapes. The field is made on a grid padded by ``pad``
    pixels on every side and cropped, so FFT wrap-around never shows; pad=0 returns the raw grid.
    """
    scales = [(float(scales), 1.0)] if np.isscalar(scales) else scales
    h, w = shape
    if pad is None:
        pad = int(min(2 * max(s for s, _ in scales), max(h, w)))
    gh, gw = h + 2 * pad, w + 2 * pad
    k2 = _freq2(gh, gw)
    filt = sum(wt * s * np.exp(-2 * (np.pi * s) ** 2 * k2) for s, wt in scales)
    f = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((gh, gw))) * filt, s=(gh, gw))
    f = f[pad:pad + h, pad:pad + w]
    return (f - f.mean()) / (f.std() + 1e-12)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float64)


def _line_coords(rng, h, w):
    """Along/across coordinates of a random straight line through the patch's central part."""
    y, x = _grid(h, w)
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    a = rng.uniform(0, np.pi)
    along = (x - cx) * np.cos(a) + (y - cy) * np.sin(a)
    across = -(x - cx) * np.sin(a) + (y - cy) * np.cos(a)
    return along, across


def river(rng, h: int, w: int, frac: float) -> tuple[np.ndarray, np.ndarray]:
    """A meandering channel covering about ``frac`` of the patch; also its bank distance."""
    along, across = _line_coords(rng, h, w)
    size = max(h, w)
    meander = sum(rng.uniform(0.03, 0.12) * size * np.sin(2 * np.pi * along / (size * rng.uniform(0.5, 2.0))
                                                          + rng.uniform(0, 2 * np.pi)) for _ in range(2))
    width = np.clip(frac * size, 1.5, 0.45 * size) * (1 + 0.2 * np.sin(along / size * 3 + rng.uniform(0, 6)))
    dist = np.abs(across - meander) - width / 2
    return dist < 0, dist


def lake(rng, h: int, w: int, frac: float) -> np.ndarray:
    """Water fills the lowest ``frac`` of a smooth terrain: lakes and ponds in hollows."""
    size = max(h, w)
    elev = smooth_field(rng, (h, w), [(min(0.35 * size, 150), 1.0), (min(0.1 * size, 40), 0.4)])
    return elev < np.quantile(elev, frac)


def parcels(rng, h: int, w: int) -> tuple[np.ndarray, int]:
    """Rectangular-ish fields: a rotated grid of strips whose boundaries jitter row by row."""
    y, x = _grid(h, w)
    a = rng.uniform(0, np.pi)
    u = x * np.cos(a) + y * np.sin(a)
    v = -x * np.sin(a) + y * np.cos(a)
    sx, sy = rng.uniform(6, 22), rng.uniform(5, 16)  # 60-220 m by 50-160 m at 10 m pixels
    rows = np.floor((v - v.min()) / sy + rng.uniform()).astype(np.int64)
    n_rows = int(rows.max()) + 1
    shift = rng.uniform(0, sx, n_rows)  # each strip of fields starts somewhere else
    cols = np.floor((u - u.min() + shift[rows]) / sx).astype(np.int64)
    n_cols = int(cols.max()) + 1
    return (rows * n_cols + cols).astype(np.int32), n_rows * n_cols


def built_clusters(rng, h: int, w: int, mean_clusters: float, urban: bool) -> np.ndarray:
    """Settlements: Gaussian blobs around a few centres with a ragged edge."""
    n = rng.poisson(mean_clusters) + (1 if urban else 0)
    if n == 0:
        return np.zeros((h, w), bool)
    y, x = _grid(h, w)
    size = max(h, w)
    density = np.zeros((h, w))
    for _ in range(n):
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        r = rng.uniform(0.15, 0.5 if urban else 0.25) * size
        density += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    return density + 0.2 * smooth_field(rng, (h, w), 1.5) > 0.55


def road(rng, h: int, w: int) -> np.ndarray:
    """A straight road about one pixel wide."""
    _, across = _line_coords(rng, h, w)
    return np.abs(across) < rng.uniform(0.5, 0.9)


def _pick(rng, options: dict):
    names = list(options)
    return names[rng.choice(len(names), p=[options[n][0] for n in names])]


def make_world(rng: np.random.Generator, size: int) -> World:
    """One patch of landscape, ``size`` x ``size`` pixels of 10 m."""
    h = w = size
    name = _pick(rng, LANDSCAPES)
    _, tree_range, mean_built, parcel_p = LANDSCAPES[name]
    lc = np.empty((h, w), np.uint8)

    if parcel_p is None:
        parcel, n_parcels = np.zeros((h, w), np.int32), 1
        rock = smooth_field(rng, (h, w), [(0.2 * size, 1.0), (2.0, 0.3)])
        lc[:] = np.where(rock > np.quantile(rock, rng.uniform(0.3, 0.8)), BARE, GRASS)
    else:
        parcel, n_parcels = parcels(rng, h, w)
        lc[:] = np.array([CROPS, GRASS, BARE], np.uint8)[rng.choice(3, n_parcels, p=parcel_p)][parcel]
    vigour = rng.beta(2.0, 1.5, n_parcels).astype(np.float32)[parcel]

    has_water = rng.random() < P_WATER
    kind = rng.choice(["lake", "river", "both"], p=[0.45, 0.4, 0.15]) if has_water else None
    frac = float(np.exp(rng.uniform(*np.log(WATER_FRAC))))
    water = np.zeros((h, w), bool)
    forest = smooth_field(rng, (h, w), [(min(0.2 * size, 80), 1.0), (2.0, 0.25)])
    if kind in ("river", "both"):
        water, bank = river(rng, h, w, frac * (0.5 if kind == "both" else 1.0))
        if rng.random() < 0.5:  # riparian woodland lines the banks
            forest = forest + 2.0 * np.exp(-np.maximum(bank, 0) / 3.0)
    if kind in ("lake", "both"):
        water |= lake(rng, h, w, frac * (0.5 if kind == "both" else 1.0))

    tree_frac = rng.uniform(*tree_range)
    if tree_frac > 0:
        lc[forest > np.quantile(forest, 1 - tree_frac)] = TREES
    lc[built_clusters(rng, h, w, mean_built, name == "urban")] = BUILT
    roads = road(rng, h, w) & ~water if rng.random() < (0.8 if name == "urban" else 0.3) else np.zeros((h, w), bool)
    lc[roads] = BUILT
    lc[water] = WATER
    return World(landcover=lc, parcel=parcel, n_parcels=n_parcels, vigour=vigour, road=roads, landscape=name)


def labels(world: World) -> dict[str, np.ndarray]:
    """The label arrays a pair carries: binary water (int8) and the land-cover map (uint8)."""
    return {"water": (world.landcover == WATER).astype(np.int8), "landcover": world.landcover.copy()}
