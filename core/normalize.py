"""Per-band normalisation from manifest statistics: clip to [p1, p99], then standardise.

The numpy reader, the tf.data reader and the model's on-device normalisation all call
``band_params`` and apply the same arithmetic in float32, so their outputs agree bit for bit.
S2 stores no data as 0; clipping would turn it into p1, a plausible dark pixel, so an S2 0
becomes exactly 0.0 instead: the band's mean, no information either way.
"""

from __future__ import annotations

import numpy as np

from senclr.bands import S2_BANDS

VERSION = 2  # 1: S2 no data clipped to p1 like any value; 2: S2 no data -> 0.0 (caches key on it)
_ZERO_IS_NODATA = frozenset(S2_BANDS["l1c"]) | frozenset(S2_BANDS["l2a"])


def band_params(stats: dict, bands: list[str]) -> dict[str, np.ndarray]:
    """Arrays lo, hi, mean, std (float32, one entry per band) from ``manifest['statistics']``, and
    nodata0 (bool: the band stores no data as 0, i.e. an S2 band)."""
    missing = [b for b in bands if b not in stats]
    if missing:
        raise KeyError(f"no statistics for bands {missing}")
    get = lambda key: np.array([stats[b][key] for b in bands], np.float32)  # noqa: E731
    std = get("std")
    return {"lo": get("p1"), "hi": get("p99"), "mean": get("mean"), "std": np.where(std > 0, std, 1).astype(np.float32),
            "nodata0": np.array([b in _ZERO_IS_NODATA for b in bands])}


def apply(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """``x`` [..., C] in physical units -> float32: clipped to [p1, p99], standardised; S2's 0 -> 0.0."""
    y = (np.clip(x.astype(np.float32), p["lo"], p["hi"]) - p["mean"]) / p["std"]
    if p["nodata0"].any():
        y[(x == 0) & p["nodata0"]] = 0.0
    return y


def sample_statistics(x: np.ndarray, bands: list[str], where: str) -> dict:
    """p1/p99/mean/std per band of pixel samples ``x`` [N, len(bands)] (NaN is no data), in the
    manifest's layout, for ``band_params``. ValueError naming a band without one valid pixel in ``where``."""
    out = {}
    for i, b in enumerate(bands):
        v = x[:, i][np.isfinite(x[:, i])]
        if not v.size:
            raise ValueError(f"band {b} has no valid pixel in {where}; it cannot be normalised")
        out[b] = {"p1": float(np.percentile(v, 1)), "p99": float(np.percentile(v, 99)),
                  "mean": float(v.mean()), "std": float(v.std())}
    return out
