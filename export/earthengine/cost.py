"""What an export may cost in Earth Engine compute (EECU-hours), and the tier it is held against.

Earth Engine meters compute in EECU-time: an EECU is "an abstraction of computing power", and the
same or a similar request "can sometimes result in very different amounts of computation"
(caching, the data, algorithm changes), so EECU-time does not follow from wall time or request
count (https://developers.google.com/earth-engine/guides/computation_overview). Since 27 April
2026 every noncommercial project has a monthly EECU-hour quota: Community tier 150 (the default),
Contributor 1,000 (billing account, not charged), Partner 100,000 (by application)
(https://developers.google.com/earth-engine/guides/noncommercial_tiers); over it, the project's
work is slowed ("Restricted mode", as https://spatialthoughts.com/2026/02/09/gee-quota-monitoring
describes it, a third-party account that also gives the rule of thumb: one CPU busy for one hour
is about one EECU-hour). Commercial projects pay per EECU-hour.

Earth Engine publishes no EECU price per pixel or per request, so this is a model, not a quote:

    EECU-seconds = pairs x (PAIR_OVERHEAD_S + pixels x bands / 1e6 x MEGAPIXEL_BAND_S)
                   + tasks x TASK_OVERHEAD_S                                   (batch only)

Why this shape: a pair's work is reading, resampling and encoding every band of its patch, so it
grows with pixels x bands (the unit the 48 MiB request limit counts too), plus a fixed part per
pair (loading three scenes' metadata, building the expression) and, in batch mode, a start-up per
task. Both modes read the same pixels, so they differ only by that task term. The constants are
ASSUMPTIONS, not measurements (no Earth Engine account was available): 2 EECU-seconds per million
band pixels, i.e. one core decoding and resampling ~0.5 M band pixels a second, the source tiles
around a patch being larger than the patch; 0.5 EECU-s per pair; 10 EECU-s per task. They were
chosen generously (better a warning too early than too late) and are meant to be replaced by your
own figure: run a small export, read
``senclr export status`` (batch: the EECU its tasks report, per pair; high-volume: the EECU usage
the Cloud console shows under the workload tag, divided by the pairs) and pass it to
``plan``/``run`` as ``--eecu-per-pair`` (measured at the same patch size and bands).
"""

from __future__ import annotations

from . import limits

MEGAPIXEL_BAND_S = 2.0  # assumed EECU-seconds per million band pixels of a pair (see above)
PAIR_OVERHEAD_S = 0.5  # assumed EECU-seconds per pair, whatever its size
TASK_OVERHEAD_S = 10.0  # assumed EECU-seconds per batch task (start-up)
TIERS = {"Community": 150, "Contributor": 1_000, "Partner": 100_000}  # EECU-hours a month, noncommercial
DEFAULT_TIER = "Community"


def per_pair_seconds(patch_size: int, s2_level: str, labels=()) -> float:
    """The model's EECU-seconds for one pair of ``patch_size`` px with the pair's bands."""
    bands = len(limits.pair_bands(s2_level, labels))
    return PAIR_OVERHEAD_S + patch_size * patch_size * bands / 1e6 * MEGAPIXEL_BAND_S


def estimate(pairs: int, patch_size: int, s2_level: str, mode: str, tasks: int = 0, labels=(),
             eecu_per_pair: float | None = None) -> dict:
    """The plan's ``cost``: EECU-hours for ``pairs`` (and ``tasks`` in batch mode), how they were
    derived, and whether they pass the default noncommercial tier. ``eecu_per_pair`` (measured)
    replaces the model's per-pair figure and task term."""
    if eecu_per_pair is not None:
        per_pair, task_s = float(eecu_per_pair), 0.0
        basis = (f"{pairs} pairs x {per_pair:g} EECU-seconds a pair, as measured and passed with --eecu-per-pair "
                 "(Earth Engine's own figure for the same work can vary with caching and the data)")
    else:
        per_pair = per_pair_seconds(patch_size, s2_level, labels)
        task_s = tasks * TASK_OVERHEAD_S if mode == "batch" else 0.0
        bands = len(limits.pair_bands(s2_level, labels))
        basis = (f"model, not a measurement: {pairs} pairs x ({PAIR_OVERHEAD_S:g} + {patch_size}x{patch_size} px x "
                 f"{bands} bands / 1e6 x {MEGAPIXEL_BAND_S:g}) EECU-seconds"
                 + (f" + {tasks} tasks x {TASK_OVERHEAD_S:g}" if task_s else "")
                 + "; assumed constants (senclr.export.earthengine.cost): calibrate with --eecu-per-pair from a small "
                   "run's `senclr export status`")
    hours = (pairs * per_pair + task_s) / 3600
    tier = TIERS[DEFAULT_TIER]
    return {"eecu_hours": round(hours, 6), "eecu_seconds_per_pair": round(per_pair, 6), "basis": basis,
            "calibrated": eecu_per_pair is not None, "tier": {"name": DEFAULT_TIER, "eecu_hours_per_month": tier},
            "over_tier": hours > tier}


def plan_cost(plan: dict, eecu_per_pair: float | None = None) -> dict:
    """``estimate`` for a plan as ``make_plan`` writes it."""
    p = plan["parameters"]
    return estimate(plan["patches"]["paired"], p["patch_size"], p["s2_level"], p["mode"], plan.get("tasks", 0),
                    p.get("labels") or (), eecu_per_pair)


def warning(cost: dict) -> str | None:
    """The warning for an estimate over the default tier (it never blocks: a warning only)."""
    if not cost["over_tier"]:
        return None
    tier = cost["tier"]
    return (f"senclr: warning: this export is estimated at {cost['eecu_hours']:,.1f} EECU-hours, more than the "
            f"{tier['eecu_hours_per_month']:,} EECU-hours a month of Earth Engine's default noncommercial tier "
            f"({tier['name']}); over it a noncommercial project is slowed, a commercial one pays. Split the export "
            f"over months, use the Contributor tier ({TIERS['Contributor']:,} a month), or check the figure "
            "first: " + ("it is your own --eecu-per-pair" if cost["calibrated"] else
                         "it comes from assumed constants, calibrate it with --eecu-per-pair from a small run's "
                         "`senclr export status`"))
