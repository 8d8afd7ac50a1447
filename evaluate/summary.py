"""Run records -> mean and spread over seeds, and the inconsistencies a reader must know (pure numpy).

A group is one (benchmark, split, mode, encoder, fraction): its seeds' headline metrics give a
mean and a sample standard deviation (ddof=1; null with one seed, which has no spread). Null
metrics (e.g. water IoU of a split without water) are left out, so ``n`` counts the seeds that
have the number. Comparisons are only fair under the same budget, seeds and training subset, so
differences there become warnings listed in the report rather than errors: the numbers stay
readable, with the caveat next to them.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np

from senclr.evaluate.runs import headline_metrics

BASELINES = {"random": "random init (frozen)", "scratch": "supervised from scratch"}
PER_CLASS = {"segmentation": "iou", "multilabel": "per_class_ap"}


def fmt_mean_std(mean: float | None, std: float | None, n: int) -> str:
    """'0.612 ± 0.013 (n=3)'; one seed has no spread; a missing number is 'n/a', never NaN."""
    if mean is None:
        return "n/a"
    spread = "" if std is None else f" ± {std:.3f}"
    return f"{mean:.3f}{spread} (n={n})"


def pct(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def mean_std(values: list) -> dict:
    """Mean and sample std of the defined values, with the per-seed values kept."""
    vals = [float(v) for v in map(_num, values) if v is not None]
    n = len(vals)
    return {"mean": float(np.mean(vals)) if n else None, "std": float(np.std(vals, ddof=1)) if n > 1 else None,
            "n": n, "values": [_num(v) for v in values]}


def _per_class_mean(rows: list[list]) -> list[float | None]:
    """Per-class mean over seeds of the defined values; null where no seed defines the class."""
    width = max((len(r) for r in rows), default=0)
    a = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        a[i, : len(r)] = [np.nan if _num(v) is None else v for v in r]
    ok = np.isfinite(a)
    counts, sums = ok.sum(0), np.where(ok, a, 0.0).sum(0)
    return [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]


def _group(key: tuple, recs: list[dict]) -> dict:
    benchmark, split, mode, encoder, fraction = key
    recs = sorted(recs, key=lambda r: r["seed"])
    first = recs[0]
    metrics = [r["splits"][split] for r in recs]
    per_class = PER_CLASS[first["task"]]
    return {
        "benchmark": benchmark, "split": split, "mode": mode, "encoder": encoder, "fraction": fraction,
        "task": first["task"], "label": first["label"], "kind": first["kind"], "input": first["input"],
        "budget": first["budget"], "head": first.get("head"), "class_names": first["class_names"],
        "seeds": [r["seed"] for r in recs], "n_seeds": len(recs),
        "items": [m.get("items") for m in metrics], "train_items": [r["train_items"] for r in recs],
        "metrics": {k: mean_std([m.get(k) for m in metrics]) for k, _ in headline_metrics(benchmark, first["task"])},
        "per_class": {"metric": per_class, "mean": _per_class_mean([m.get(per_class) or [] for m in metrics])},
    }


def groups(records: list[dict]) -> list[dict]:
    """One summary per (benchmark, split, mode, encoder, fraction), in first-seen record order."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        for split in r["splits"]:
            by_key[(r["benchmark"], split, r["mode"], r["encoder"], r["fraction"])].append(r)
    return [_group(k, v) for k, v in by_key.items()]


def _canon(v) -> str:
    return json.dumps(v, sort_keys=True)


def _listing(per_encoder: dict[str, set]) -> str:
    return "; ".join(f"{e}: {', '.join(map(str, sorted(s)))}" for e, s in per_encoder.items())


def _budget_and_seeds(records: list[dict]) -> list[str]:
    """Same (benchmark, mode, fraction): every encoder must have had the same budget, seeds and subset size."""
    cells: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        cells[(r["benchmark"], r["mode"], r["fraction"])][r["encoder"]].append(r)
    out = []
    for (bench, mode, frac), encs in cells.items():
        where = f"{bench}, {mode}, {pct(frac)} labels"
        budgets = {e: {_canon(r["budget"]) for r in rs} for e, rs in encs.items()}
        if len(set().union(*budgets.values())) > 1:
            out.append(f"{where}: budgets differ ({_listing(budgets)})")
        seeds = {e: frozenset(r["seed"] for r in rs) for e, rs in encs.items()}
        if len(set(seeds.values())) > 1:
            out.append(f"{where}: seeds differ ({_listing(seeds)})")
        sizes: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
        for e, rs in encs.items():
            for r in rs:
                sizes[r["seed"]][e].add(r["train_items"])
        out += [f"{where}, seed {seed}: training subset sizes differ ({_listing(per)})"
                for seed, per in sorted(sizes.items()) if len(set().union(*per.values())) > 1]
        out += [f"{where}: {e} has seed {s} more than once" for e, rs in encs.items()
                for s in sorted({r["seed"] for r in rs}) if sum(r["seed"] == s for r in rs) > 1]
    return out


def _items(summaries: list[dict]) -> list[str]:
    """A split scored on different numbers of chips is a different test set."""
    seen: dict[tuple, set] = defaultdict(set)
    for g in summaries:
        seen[(g["benchmark"], g["split"])].update(i for i in g["items"] if i is not None)
    return [f"{b}, {s} split: scored on different numbers of items ({', '.join(map(str, sorted(v)))})"
            for (b, s), v in seen.items() if len(v) > 1]


def _missing(records: list[dict]) -> list[str]:
    """Baselines never run, and encoders lacking a fraction their mode has elsewhere."""
    out = []
    for bench in dict.fromkeys(r["benchmark"] for r in records):
        recs = [r for r in records if r["benchmark"] == bench]
        kinds = {r["kind"] for r in recs}
        out += [f"{bench}: baseline '{label}' was not run" for kind, label in BASELINES.items() if kind not in kinds]
        for mode in dict.fromkeys(r["mode"] for r in recs):
            done = defaultdict(set)
            for r in recs:
                if r["mode"] == mode:
                    done[r["encoder"]].add(r["fraction"])
            fractions = set().union(*done.values())
            out += [f"{bench}, {mode}: {e} was not run at {', '.join(pct(f) for f in sorted(fractions - fs))} labels"
                    for e, fs in done.items() if fractions - fs]
    return out


def summarise(records: list[dict]) -> dict:
    """Every aggregated number (JSON-able) and the warnings the report must show."""
    summaries = groups(records)
    return {"groups": summaries, "warnings": _budget_and_seeds(records) + _items(summaries) + _missing(records)}
