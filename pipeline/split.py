"""Split by place: a coarse lon/lat cell decides the split of every patch inside it.

Neighbouring patches share clouds, fields and rivers; splitting them by index would leak the test
set into training. Hashing the cell (not the patch) keeps whole places on one side.
"""

from __future__ import annotations

import hashlib
import math

from senclr.schema import SPLITS


def parse_fractions(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' -> fractions for train, val, test (must be >= 0 and sum to 1)."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"split fractions {text!r} are not numbers: use e.g. 0.8,0.1,0.1") from None
    if len(parts) != 3 or any(f < 0 for f in parts) or abs(sum(parts) - 1) > 1e-6:
        raise ValueError(f"split fractions {text!r} must be three non-negative numbers summing to 1 (train,val,test)")
    return parts  # type: ignore[return-value]


def cell_of(lon: float, lat: float, cell_deg: float) -> tuple[int, int]:
    return math.floor(lon / cell_deg), math.floor(lat / cell_deg)


def split_of(lon: float, lat: float, cell_deg: float, fractions: tuple[float, float, float], seed: int) -> str:
    cx, cy = cell_of(lon, lat, cell_deg)
    digest = hashlib.sha256(f"{seed}:{cx}:{cy}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return name
    return SPLITS[-1]
