"""Per-band normalisation from manifest statistics: clip to [p1, p99], then standardise.

The numpy reader and the tf.data reader both call ``band_params`` and apply the same arithmetic
in float32, so their outputs agree.
"""

from __future__ import annotations

import numpy as np


def band_params(stats: dict, bands: list[str]) -> dict[str, np.ndarray]:
    """Arrays lo, hi, mean, std (float32, one entry per band) from ``manifest['statistics']``."""
    missing = [b for b in bands if b not in stats]
    if missing:
        raise KeyError(f"no statistics for bands {missing}")
    get = lambda key: np.array([stats[b][key] for b in bands], np.float32)  # noqa: E731
    std = get("std")
    return {"lo": get("p1"), "hi": get("p99"), "mean": get("mean"), "std": np.where(std > 0, std, 1).astype(np.float32)}


def apply(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    x = np.clip(x.astype(np.float32), p["lo"], p["hi"])
    return (x - p["mean"]) / p["std"]


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
