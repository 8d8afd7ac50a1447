"""PatchPair: the raw unit every export path produces: one place, two sensors, one grid."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, fields
from datetime import datetime

import numpy as np

from senclr.bands import S1_BANDS


def make_pair_id(lon: float, lat: float, s1_id: str, s2_id: str) -> str:
    """Stable id from location and acquisition ids, so a rerun names the same pair the same way."""
    key = f"{lon:.6f},{lat:.6f}|{s1_id}|{s2_id}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def _hours_between(a: str, b: str) -> float:
    if not a or not b:
        return float("nan")  # an acquisition time is unknown
    ta, tb = datetime.fromisoformat(a), datetime.fromisoformat(b)
    return round((ta - tb).total_seconds() / 3600.0, 4)


@dataclass(frozen=True)
class PairMeta:
    """Where and when a pair was taken. Times are ISO-8601 UTC strings."""

    pair_id: str
    lon: float
    lat: float
    crs: str  # e.g. "EPSG:32633", the UTM zone of the S2 tile
    transform: tuple[float, float, float, float, float, float]  # affine a, b, c, d, e, f
    pixel_size: float  # metres (or degrees for EPSG:4326 chips)
    s1_id: str
    s2_id: str
    s1_time: str
    s2_time: str
    s1_orbit: str  # ASCENDING / DESCENDING
    s1_relative_orbit: int
    s2_cloud_pct: float
    source: str = ""  # what produced it: "synthetic", "ee-highvolume", "geotiff", ...

    def __post_init__(self):
        # The precision make_pair_id hashes: stored coordinates and the id always agree.
        object.__setattr__(self, "lon", round(float(self.lon), 6))
        object.__setattr__(self, "lat", round(float(self.lat), 6))

    @property
    def dt_hours(self) -> float:
        """Δt = S1 time - S2 time, in hours (negative when the radar came first)."""
        return _hours_between(self.s1_time, self.s2_time)

    def to_json(self) -> dict:
        """JSON-safe dict: unknown numbers (NaN) become null, which JSON has and NaN is not."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}  # flat: asdict's deep copies cost 0.2 ms
        d["transform"] = list(self.transform)
        d["dt_hours"] = self.dt_hours
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}

    @classmethod
    def from_json(cls, d: dict) -> "PairMeta":
        d = {k: v for k, v in d.items() if k != "dt_hours"}
        d["transform"] = tuple(float(x) for x in d["transform"])
        if d.get("s2_cloud_pct") is None:
            d["s2_cloud_pct"] = float("nan")
        return cls(**d)


def meta_from_plan_entry(entry: dict, source: str) -> PairMeta:
    """The PairMeta of one pair of an export plan (``ledger/plan.json``'s ``pairs``).

    In the core because both the export (writing raw archives) and the readers of batch exports
    (which find a pair's metadata only in the plan) need it.
    """
    patch, s1, s2 = entry["patch"], entry["s1"], entry["s2"]
    cloud = s2.get("cloud_pct")
    return PairMeta(
        pair_id=entry["pair_id"], lon=patch["lon"], lat=patch["lat"], crs=patch["crs"],
        transform=tuple(patch["transform"]), pixel_size=patch["scale"],
        s1_id=s1["id"], s2_id=s2["id"], s1_time=s1["time"], s2_time=s2["time"],
        s1_orbit=s1.get("orbit") or "", s1_relative_orbit=int(s1.get("relative_orbit") or 0),
        s2_cloud_pct=float("nan") if cloud is None else float(cloud), source=source,
    )


@dataclass
class PatchPair:
    """S1 [H,W,2] dB float32, S2 [H,W,C] reflectance x 10000 uint16, cs_cdf [H,W] float32.

    ``labels`` maps a label name ("water": int8 with -1 no data; "landcover", "worldcover",
    "dynamicworld": uint8 class index with 255 no data) to an [H,W] array, and "embedding" to an
    int8 [H,W,64] array (``senclr.label_bands``); it is empty for unlabelled exports.
    """

    meta: PairMeta
    s1: np.ndarray
    s2: np.ndarray
    cloud: np.ndarray
    s2_bands: tuple[str, ...]
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    s1_bands: tuple[str, ...] = S1_BANDS
    origin: str = ""  # the URI it was read from, for naming it in rejects and errors

    @property
    def pair_id(self) -> str:
        return self.meta.pair_id

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.s1.shape[:2])

    def clear_fraction(self, threshold: float = 0.6) -> float:
        """Share of pixels whose Cloud Score+ cs_cdf is at least ``threshold`` (clear sky)."""
        return float(np.mean(self.cloud >= threshold))

    def check_shapes(self) -> str | None:
        """None when the arrays agree with each other and the band lists, else what is wrong."""
        h, w = self.s1.shape[:2]
        if self.s1.ndim != 3 or self.s1.shape[2] != len(self.s1_bands):
            return f"s1 shape {self.s1.shape} does not match bands {self.s1_bands}"
        if self.s2.ndim != 3 or self.s2.shape != (h, w, len(self.s2_bands)):
            return f"s2 shape {self.s2.shape} does not match ({h}, {w}, {len(self.s2_bands)})"
        if self.cloud.shape != (h, w):
            return f"cloud shape {self.cloud.shape} is not ({h}, {w})"
        for name, lab in self.labels.items():
            if lab.shape[:2] != (h, w) or lab.ndim != (3 if name == "embedding" else 2):
                return f"label {name!r} shape {lab.shape} is not ({h}, {w}{', 64' if name == 'embedding' else ''})"
        return None
