"""Per-band statistics (mean, std, min, max, p1, p99) as a Beam CombineFn.

Values are quantised to integers (S1 to 1/256 dB, S2 reflectance is already an integer) and summed
with Python ints, so the result does not depend on how Beam splits and merges bundles: the same
input gives the same manifest, byte for byte, on any runner.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from senclr.bands import physical_range
from senclr.pair import PatchPair

BINS = 4096
S1_QUANTUM = 1 / 256  # dB
S2_HIST_MAX = 20000  # reflectance x 10000; brighter values share the top bin


def _quantum(sensor: str) -> float:
    return S1_QUANTUM if sensor == "s1" else 1.0


def _hist_range(sensor: str, band: str) -> tuple[int, int]:
    lo, hi = physical_range(band)
    if sensor == "s2":
        hi = S2_HIST_MAX
    q = _quantum(sensor)
    return int(np.floor(lo / q)), int(np.ceil(hi / q))


class BandStatsFn(beam.CombineFn):
    """Combine PatchPairs into {band: {mean, std, min, max, p1, p99, count}}."""

    def __init__(self, s1_bands: tuple[str, ...], s2_bands: tuple[str, ...]):
        self.bands = [("s1", b, i) for i, b in enumerate(s1_bands)] + [("s2", b, i) for i, b in enumerate(s2_bands)]

    def create_accumulator(self):
        return {b: [0, 0, 0, None, None, np.zeros(BINS, np.int64)] for _, b, _ in self.bands}

    def add_input(self, acc, pair: PatchPair):
        for sensor, band, i in self.bands:
            x = (pair.s1 if sensor == "s1" else pair.s2)[..., i].ravel()
            if sensor == "s2":
                x = x[x != 0]  # 0 is S2 no data
            if x.size == 0:
                continue
            k = np.rint(x.astype(np.float64) / _quantum(sensor)).astype(np.int64)
            a = acc[band]
            a[0] += int(k.size)
            a[1] += int(k.sum())
            a[2] += int(np.dot(k, k))
            a[3] = int(k.min()) if a[3] is None else min(a[3], int(k.min()))
            a[4] = int(k.max()) if a[4] is None else max(a[4], int(k.max()))
            lo, hi = _hist_range(sensor, band)
            idx = np.clip((k - lo) * BINS // (hi - lo), 0, BINS - 1)
            a[5] += np.bincount(idx, minlength=BINS)
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        out = self.create_accumulator()
        for acc in accs:
            for band, a in acc.items():
                o = out[band]
                o[0] += a[0]
                o[1] += a[1]
                o[2] += a[2]
                if a[3] is not None:
                    o[3] = a[3] if o[3] is None else min(o[3], a[3])
                    o[4] = a[4] if o[4] is None else max(o[4], a[4])
                o[5] += a[5]
        return out

    def extract_output(self, acc):
        return {band: _summary(sensor, band, acc[band]) for sensor, band, _ in self.bands}


class MergeStatsFn(BandStatsFn):
    """Combine partial ``BandStatsFn`` accumulators (one per shard) into the same summary."""

    def add_input(self, acc, partial):
        return self.merge_accumulators([acc, partial])


def _percentile(hist: np.ndarray, q: float, lo: int, hi: int, quantum: float) -> float:
    cum = np.cumsum(hist)
    b = int(np.searchsorted(cum, q * cum[-1], side="left"))
    centre = lo + (b + 0.5) * (hi - lo) / BINS
    return round(centre * quantum, 4)


def _summary(sensor: str, band: str, a: list) -> dict:
    n, s, ss = a[0], a[1], a[2]
    if n == 0:
        return {"count": 0, "mean": 0.0, "std": 1.0, "min": 0.0, "max": 0.0, "p1": 0.0, "p99": 0.0}
    q = _quantum(sensor)
    lo, hi = _hist_range(sensor, band)
    var = max((ss * n - s * s) / (n * n), 0.0)  # exact integers until this division
    return {
        "count": n,
        "mean": round(s / n * q, 6),
        "std": round(float(np.sqrt(var)) * q, 6),
        "min": round(a[3] * q, 4),
        "max": round(a[4] * q, 4),
        "p1": max(_percentile(a[5], 0.01, lo, hi, q), round(a[3] * q, 4)),
        "p99": min(_percentile(a[5], 0.99, lo, hi, q), round(a[4] * q, 4)),
    }
