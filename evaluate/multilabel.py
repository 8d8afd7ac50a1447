"""Multi-label classification metrics (BigEarthNet practice), pure numpy.

Average precision (AP) is computed as scikit-learn's ``average_precision_score``: scores sorted
from high to low, one operating point per distinct score (tied scores enter together), and
AP = sum_n (R_n - R_{n-1}) P_n with R_0 = 0, no interpolation. Macro mAP is the mean of the
per-class APs; micro AP is the AP of all (sample, class) cells pooled, so frequent classes weigh
more. F1 uses predictions ``score >= threshold``: per class 2TP / (2TP + FP + FN), micro F1 from
the TP/FP/FN summed over classes.

Undefined values are NaN inside and None in the returned dict (so it serialises to JSON): the AP
of a class with no positive in ``y_true`` (no recall to speak of), the F1 of a class that is
neither present nor predicted. They are left out of the macro means, which average the classes
that remain; a class that is present but never predicted counts with F1 = 0.
"""

from __future__ import annotations

import numpy as np


def _check(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    t, s = np.asarray(y_true), np.asarray(scores, np.float64)
    if t.ndim != 2 or t.shape != s.shape:
        raise ValueError(f"y_true {t.shape} and scores {s.shape} must both be [samples, classes]")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return t.astype(bool), s


def average_precision(y_true, scores) -> float:
    """AP of one binary problem (1-D arrays); NaN when ``y_true`` has no positive."""
    t = np.asarray(y_true).ravel().astype(bool)
    s = np.asarray(scores, np.float64).ravel()
    if not t.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each group of equal scores
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _f1(tp, fp, fn) -> np.ndarray:
    """2TP / (2TP + FP + FN); NaN where the denominator is 0."""
    num, den = 2.0 * np.asarray(tp, np.float64), 2.0 * np.asarray(tp) + fp + fn
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")


def _json(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def multilabel_metrics(y_true, scores, threshold: float = 0.5) -> dict:
    """Micro/macro mAP and F1 of ``scores`` (e.g. sigmoid outputs) against multi-hot ``y_true``,
    both [samples, classes]; see the module notes for undefined classes."""
    t, s = _check(y_true, scores)
    pred = s >= threshold
    ap = np.array([average_precision(t[:, c], s[:, c]) for c in range(t.shape[1])])
    tp, fp, fn = (pred & t).sum(0), (pred & ~t).sum(0), (~pred & t).sum(0)
    f1 = _f1(tp, fp, fn)
    return {
        "micro_map": _json(average_precision(t, s)),
        "macro_map": _json(_mean(ap)),
        "micro_f1": _json(float(_f1(tp.sum(), fp.sum(), fn.sum()))),
        "macro_f1": _json(_mean(f1)),
        "per_class_ap": [_json(v) for v in ap],
        "per_class_f1": [_json(v) for v in f1],
        "positives": [int(v) for v in t.sum(0)],
        "threshold": float(threshold),
        "samples": int(t.shape[0]),
    }
