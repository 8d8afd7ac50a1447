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
