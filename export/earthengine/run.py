"""``senclr export run|status|cancel`` behind the CLI: plan once, fetch, resume, report."""

from __future__ import annotations

import sys
from collections import Counter

from senclr import manifest as manifest_lib
from senclr.bands import S1_BANDS, s2_collection
from senclr.errors import InputError

from . import cost, session, ledger
from .plan import make_plan


class ExportIncomplete(RuntimeError):
    """Some pairs failed after Earth Engine's retries; they are in the ledger and a rerun retries them."""


def connect(params) -> None:
    import ee

    session.connect(params.project, params.ee_credentials, params.ee_api_url)
    ee.data.setWorkloadTag(params.workload_tag)  # tasks and requests carry it: cost shows per tag
    session.check_access()


def planned(params) -> dict:
    """The plan under --out when resuming, else a new one (checked against the server-side join)."""
    plan = ledger.check_same_plan(params.out, params.plan_identity())
    if plan is not None:
        return plan
    plan, _, _, pairings = make_plan(params)
    if not pairings:
        lost = len(plan["pairing_disagreements"])
        why = (f" (Earth Engine's join disagreed with senclr's pairing on all {lost}: please report this)"
               if lost else "")
        raise InputError(f"no S1/S2 pairs in that region and date range{why} (see `senclr export plan`): "
                         "widen the dates, raise --max-dt or --s2-max-cloud, or choose another region")
    ledger.write_plan(params.out, plan)
    return plan


def write_manifest(params, plan: dict, counts: dict) -> dict:
    """The raw archive's manifest, once every planned pair is done or failed."""
    reasons = dict(Counter(r["reason"].split(":", 1)[0] for r in ledger.failures(params.out).values()))
    m = manifest_lib.new(
        "raw", f"export run --mode {params.mode}", params.to_json(), seed=params.seed, source=f"ee-{params.mode}",
        format="pairs/*.npy + *.json" if params.mode == "highvolume" else "tasks/*.tfrecord.gz: Earth Engine table TFRecords, one feature per pair",
        patch_size=params.patch_size, pixel_size=params.scale, labels=list(params.labels),
        bands={"s1": list(S1_BANDS), "s2": list(s2_collection(params.s2_level).band_names), "s2_level": params.s2_level},
        counts={"read": counts["planned"], "kept": counts["done"], "rejected": reasons},
        plan={k: plan[k] for k in ("scenes", "patches", "dt_hours")}, ledger=ledger.LEDGER,
        filters={"min_clear": params.min_clear, "cs_threshold": params.cs_threshold},
    )
    manifest_lib.write(params.out, m)
    return m


def run(params, beam_args: list[str], poll_seconds: float = 15.0, eecu_per_pair: float | None = None) -> dict:
    """Plan (or resume), fetch what is missing, and write the manifest when nothing is pending.
    Before any pair is fetched or task started, an export estimated over the default
    noncommercial EECU tier is warned about on stderr (never refused)."""
    connect(params)
    plan = planned(params)
    over = cost.warning(cost.plan_cost(plan, eecu_per_pair))
    if over:
        print(over, file=sys.stderr)
    if params.mode == "batch":
        from . import batch

        batch.run(params, plan, poll_seconds)
        counts = ledger.counts(params.out, plan)
    else:
        from . import highvolume

        counts = highvolume.run(params, plan, beam_args)
    if counts["pending"] == 0:
        write_manifest(params, plan, counts)
    if counts["failed"]:
        raise ExportIncomplete(f"{counts['failed']} of {counts['planned']} pairs failed after Earth Engine's retries "
                               f"(reasons: `senclr export status --out {params.out} --offline`); "
                               "run the same command again to retry them")
    return counts


def status(out: str, connection: dict | None = None) -> dict:
    """Ledger counts; with a connection, batch task states are refreshed from Earth Engine first."""
    plan = ledger.read_plan(out)
    if plan is None:
        raise InputError(f"{out} holds no export ledger: run `senclr export run ... --out {out}` first")
    if connection and plan["parameters"]["mode"] == "batch":
        from . import batch

        session.connect(**connection)
        session.check_access()
        batch.refresh(out)
    reasons = Counter(r["reason"][:120] for r in ledger.failures(out).values())
    states = Counter(t["state"] for t in ledger.tasks(out).values())
    return {"counts": ledger.counts(out, plan), "failure_reasons": dict(reasons), "mode": plan["parameters"]["mode"],
            "tasks": dict(states), "dropped_when_planning": plan["patches"].get("dropped", {}),
            "eecu_seconds": sum(t.get("eecu_seconds") or 0.0 for t in ledger.tasks(out).values())}


def cancel(out: str, connection: dict) -> list[str]:
    if ledger.read_plan(out) is None:
        raise InputError(f"{out} holds no export ledger: nothing to cancel")
    from . import batch

    session.connect(**connection)
    session.check_access()
    return batch.cancel(out)
