"""Why a pair is rejected: small pure checks, each returning a reason code or None.

Reason codes are stable names used in Beam metrics, the manifest's ``counts.rejected`` and the
rejects file: unreadable, bad_shape, missing_bands, non_finite, out_of_range, s2_nodata, cloudy,
duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from senclr.bands import physical_range
from senclr.pair import PatchPair

REASONS = ("unreadable", "bad_shape", "missing_bands", "non_finite", "out_of_range", "s2_nodata", "cloudy", "duplicate")


@dataclass(frozen=True)
class FilterConfig:
    s2_bands: tuple[str, ...]
    patch_size: int | None = None  # None: take the archive's patch size
    min_clear: float = 0.8  # share of pixels with cs_cdf >= cs_threshold
    cs_threshold: float = 0.6  # Cloud Score+ cs_cdf above which a pixel counts as clear
    max_nodata: float = 0.05  # share of S2 pixels that are 0 in every band


def _out_of_range(arr: np.ndarray, bands: tuple[str, ...]) -> str | None:
    for i, b in enumerate(bands):
        lo, hi = physical_range(b)
        x = arr[..., i]
        if x.min() < lo or x.max() > hi:
            return b
    return None


def check(pair: PatchPair, cfg: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) when the pair must be dropped, else None. Checks run cheapest first."""
    if tuple(pair.s2_bands) != tuple(cfg.s2_bands):
        return "missing_bands", f"S2 bands {list(pair.s2_bands)} != expected {list(cfg.s2_bands)}"
    problem = pair.check_shapes()
    if problem:
        return "bad_shape", problem
    if cfg.patch_size and pair.shape != (cfg.patch_size, cfg.patch_size):
        return "bad_shape", f"patch {pair.shape} is not {cfg.patch_size}x{cfg.patch_size}"
    for name, arr in (("s1", pair.s1), ("cloud", pair.cloud)):
        if not np.isfinite(arr).all():
            return "non_finite", f"{name} has NaN or inf"
    band = _out_of_range(pair.s1, pair.s1_bands) or _out_of_range(pair.s2, pair.s2_bands)
    if band:
        return "out_of_range", f"band {band} outside its physical range {physical_range(band)}"
    if pair.cloud.min() < 0 or pair.cloud.max() > 1:
        return "out_of_range", "cs_cdf outside [0, 1]"
    nodata = float(np.mean(np.all(pair.s2 == 0, axis=-1)))
    if nodata > cfg.max_nodata:
        return "s2_nodata", f"{nodata:.1%} of S2 pixels are no data (limit {cfg.max_nodata:.0%})"
    clear = pair.clear_fraction(cfg.cs_threshold)
    if clear < cfg.min_clear:
        return "cloudy", f"clear fraction {clear:.2f} < {cfg.min_clear} (cs_cdf >= {cfg.cs_threshold})"
    return None
