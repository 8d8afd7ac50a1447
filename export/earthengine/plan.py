"""``senclr export plan``: what an export would do, computed without starting anything.

A plan is JSON: the arguments (no credentials), scene counts, every pair (patch on its UTM grid,
both products, Δt), the patches dropped with their reason, the Δt distribution, the requests or
tasks needed, the bytes expected and the compute (``cost``: EECU-hours and how they were derived,
see ``cost.py``). Planning is deterministic (same arguments, same pairs);
``run`` plans once, keeps the plan in its ledger and executes exactly that list on every rerun.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

from senclr import __version__
from senclr.label_bands import EMBEDDING
from senclr.pair import PairMeta, meta_from_plan_entry

from . import cost, label_images, query, limits
from .grid import Patch, sample_patches
from .pairing import PAIRING_DISAGREEMENT, Pairing, Scene, dt_histogram, pair_patches

SOURCE = {"highvolume": "ee-highvolume", "batch": "ee-batch"}


def bytes_per_pair(patch_size: int, s2_level: str, mode: str = "highvolume", labels=()) -> int:
    """Stored size of one pair. High-volume NPY: each band at its dtype (S1 2 x float32, S2 bands x
    uint16, cs_cdf float32, labels 1 byte a band). Batch TFRecord tables store every value as a
    float (4 bytes), before gzip."""
    bands = limits.pair_bands(s2_level, labels)
    per_pixel = (sum(limits.DTYPE_BYTES[d] for _, d in bands) if mode == "highvolume" else 4 * len(bands))
    return patch_size * patch_size * per_pixel + 512


def _scene_json(s: Scene) -> dict:
    d = {"id": s.id, "time": s.time.isoformat()}
    for k in ("orbit", "relative_orbit", "cloud_pct", "tile", "crs"):
        if getattr(s, k) is not None:
            d[k] = getattr(s, k)
    return d


def pairing_json(p: Pairing) -> dict:
    return {"pair_id": p.pair_id, "patch": p.patch.to_json(), "s2": _scene_json(p.s2), "s1": _scene_json(p.s1),
            "dt_hours": p.dt_hours}


def pairing_from_json(d: dict) -> Pairing:
    """The Pairing a plan entry describes (footprints and the patch polygon are not kept)."""
    patch = Patch(**{**d["patch"], "transform": tuple(d["patch"]["transform"]), "polygon": None})

    def scene(s: dict) -> Scene:
        return Scene(**{**s, "time": datetime.fromisoformat(s["time"]), "footprint": None})

    return Pairing(patch, scene(d["s2"]), scene(d["s1"]), d["dt_hours"], d["pair_id"])


def pair_meta(d: dict, mode: str) -> PairMeta:
    """The raw archive's metadata of a planned pair (the conversion itself lives in the core)."""
    return meta_from_plan_entry(d, SOURCE[mode])


def agreed(pairings: list[Pairing], params) -> tuple[list[Pairing], list[Pairing]]:
    """(the pairings Earth Engine's own join also picks, the others).

    The policy mirrors the join (geodesic footprints, nearest in time, ties to the smaller id),
    but saveBest documents no tie-break and geometry tests can differ at the last metre: a pair
    the two sides disagree on is left out, counted and named in the plan, never exported.
    """
    disagree = set(query.check_agreement(pairings, params)) if pairings else set()
    return ([p for p in pairings if p.pair_id not in disagree],
            [p for p in pairings if p.pair_id in disagree])


def make_plan(params, eecu_per_pair: float | None = None) -> tuple[dict, list[Scene], list[Scene], list[Pairing]]:
    """Query scenes (one getInfo), sample patches, pair them, check the pairs against Earth
    Engine's join: (plan, S2 scenes, S1 scenes, pairings). ``eecu_per_pair``: a measured cost per
    pair for the EECU estimate, instead of the model's."""
    s2, s1 = query.fetch_scenes(params)
    footprints = [(s.id, s.crs, s.footprint) for s in s2 if s.crs]
    samples = sample_patches(params.region, footprints, params.patches, params.patch_size, params.scale, params.seed)
    pairings, dropped = pair_patches(samples, s2, s1, params.max_dt_hours)
    pairings, disagreed = agreed(pairings, params)
    dropped += [(p.patch, PAIRING_DISAGREEMENT) for p in disagreed]
    reasons = dict(Counter(reason for _, reason in dropped))
    per_task = limits.pairs_per_task(params.patch_size, params.s2_level, params.labels)
    n = len(pairings)
    plan = {
        "kind": "senclr-export-plan", "senclr_version": __version__, "parameters": params.to_json(),
        "identity": params.plan_identity(),
        "scenes": {"s2": len(s2), "s1": len(s1)},
        "patches": {"asked": params.patches, "sampled": len(samples), "paired": n, "dropped": reasons},
        "dt_hours": dt_histogram(pairings),
        "pairing_disagreements": sorted(p.pair_id for p in disagreed),
        "requests": n if params.mode == "highvolume" else 0,
        "request_bytes": limits.request_bytes(params.patch_size, params.s2_level, params.labels),
        "pairs_per_task": per_task,
        "tasks": math.ceil(n / per_task) if params.mode == "batch" else 0,
        "estimated_bytes": n * bytes_per_pair(params.patch_size, params.s2_level, params.mode, params.labels),
        "pairs": [pairing_json(p) for p in pairings],
    }
    plan["cost"] = cost.plan_cost(plan, eecu_per_pair)
    if EMBEDDING in params.labels:
        plan["embedding"] = embedding_coverage(params, pairings)
    return plan, s2, s1, pairings


def embedding_coverage(params, pairings: list[Pairing]) -> dict:
    """The years the annual embedding has over the region, and the pairs whose S2 year it lacks
    (their embedding would be all no data: stated in the plan, not dropped)."""
    years = label_images.embedding_years(query.ee_geometry(params.region))
    missing = Counter(p.s2.time.year for p in pairings if p.s2.time.year not in years)
    return {"years": sorted(years), "pairs_without": sum(missing.values()),
            "years_without": {str(y): n for y, n in sorted(missing.items())}}


def summary(plan: dict) -> str:
    p, dt = plan["patches"], plan["dt_hours"]
    lines = [
        f"scenes: {plan['scenes']['s2']} Sentinel-2, {plan['scenes']['s1']} Sentinel-1",
        f"patches: {p['paired']} pairs of {p['sampled']} sampled ({p['asked']} asked); dropped {p['dropped'] or 'none'}",
        f"Δt (S1 - S2): median |Δt| {dt['median_abs_hours']} h over {dt['n']} pairs",
    ]
    labels = plan.get("parameters", {}).get("labels")
    if labels:
        lines.append(f"label and feature bands: {', '.join(labels)} (on each patch grid)")
    emb = plan.get("embedding")
    if emb and emb["pairs_without"]:
        lines.append(f"warning: {emb['pairs_without']} pair(s) in years without an annual embedding here "
                     f"({', '.join(emb['years_without'])}; it has {', '.join(map(str, emb['years'])) or 'none'}): "
                     "their embedding will be all no data (-128)")
    size = f"{plan['request_bytes'] / 1e6:.1f} MB a pair as Earth Engine counts it" if "request_bytes" in plan else ""
    if plan["requests"]:
        lines.append(f"computePixels requests: {plan['requests']} ({size}; limit "
                     f"{limits.COMPUTE_PIXELS_MAX_BYTES / 1e6:.1f} MB)")
    if plan["tasks"]:
        per = plan.get("pairs_per_task", limits.PAIRS_PER_TASK)
        lines.append(f"export tasks: {plan['tasks']} (up to {per} pairs each; {size})")
    lines.append(f"estimated size: {plan['estimated_bytes'] / 1e6:.1f} MB")
    if "cost" in plan:
        c = plan["cost"]
        lines.append(f"estimated compute: {c['eecu_hours']:,.3f} EECU-hours ({c['eecu_seconds_per_pair']:.3g} EECU-seconds "
                     f"a pair; default noncommercial tier {c['tier']['eecu_hours_per_month']:,} a month); basis: "
                     f"{c['basis']}")
    return "\n".join(lines)
