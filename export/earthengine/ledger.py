"""The export ledger under ``--out``: what was planned, what is done, what failed and why.

    OUT/ledger/plan.json              the plan (arguments without credentials, every pair)
    OUT/ledger/failed/<pair_id>.json  why a pair failed (after Earth Engine's own retries)
    OUT/ledger/tasks/<name>.json      batch mode: one record per export task
    OUT/pairs/<pair_id>.{npy,json}    done: the raw archive itself (the .json is written last)

State is derived from files that are each written atomically, never from a list mutated in
place, so a run killed at any point resumes by running the same command again.
"""

from __future__ import annotations

import json

from senclr import raw_archive, storage
from senclr.errors import InputError

LEDGER = "ledger"
PLAN = "plan.json"


def _uri(out: str, *parts: str) -> str:
    return storage.join(out, LEDGER, *parts)


def write_plan(out: str, plan: dict) -> None:
    storage.write_text(_uri(out, PLAN), json.dumps(plan, indent=1, sort_keys=True))


def read_plan(out: str) -> dict | None:
    uri = _uri(out, PLAN)
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else None


def check_same_plan(out: str, identity: dict) -> dict | None:
    """The plan already under ``out`` when it was made with the same plan-defining arguments.

    None when ``out`` holds no export yet. A plan made with other arguments is refused (mixing two
    exports in one folder would make neither resumable), and so is a folder that holds a raw
    archive or files of something else.
    """
    plan = read_plan(out)
    if plan is None:
        if storage.is_dir(out) and any(True for _ in storage.list_files(out, limit=1)):
            raise InputError(f"--out {out} already holds files that are not an export ledger: choose a new --out")
        return None
    if plan["identity"] != identity:
        changed = sorted(k for k in set(plan["identity"]) | set(identity) if plan["identity"].get(k) != identity.get(k))
        raise InputError(f"{out} holds an export planned with other arguments ({', '.join(changed)} differ): "
                         "rerun with the same arguments to resume, or choose a new --out")
    return plan


def done_ids(out: str) -> set[str]:
    """Pairs whose metadata (written last) is in the archive, or whose batch task succeeded."""
    stored = {uri.rsplit("/", 1)[-1][: -len(".json")] for uri in raw_archive.list_pairs(out)}
    # a verified task counts the pairs its files hold; one not verified yet (a ledger from before
    # verification, or read by `status` before `run` checked it) its planned pairs
    return stored | {i for t in tasks(out).values() if t["state"] == "SUCCEEDED" for i in t.get("written", t["pair_ids"])}


def mark_failed(out: str, pair_id: str, reason: str) -> None:
    record = {"pair_id": pair_id, "reason": reason}
    storage.write_text(_uri(out, "failed", f"{pair_id}.json"), json.dumps(record, sort_keys=True))


def failures(out: str) -> dict[str, dict]:
    """{pair_id: failure record} for failed pairs that are not done since."""
    done = done_ids(out)
    found = {}
    for uri in storage.list_files(_uri(out, "failed"), "*.json"):
        record = json.loads(storage.read_text(uri))
        if record["pair_id"] not in done:
            found[record["pair_id"]] = record
    for t in tasks(out).values():  # a batch task that failed for good fails all its pairs
        if t["state"] in ("FAILED", "CANCELLED") and t.get("final"):
            reason = f"task {t['name']} {t['state'].lower()}: {(t['errors'] or ['cancelled'])[-1]}"
            found.update({i: {"pair_id": i, "reason": reason, "attempts": t["attempts"]} for i in t["pair_ids"]})
    return found


def save_task(out: str, name: str, record: dict) -> None:
    storage.write_text(_uri(out, "tasks", f"{name}.json"), json.dumps(record, indent=1, sort_keys=True))


def tasks(out: str) -> dict[str, dict]:
    return {uri.rsplit("/", 1)[-1][:-5]: json.loads(storage.read_text(uri)) for uri in storage.list_files(_uri(out, "tasks"), "*.json")}


def counts(out: str, plan: dict) -> dict:
    """planned / done / failed / pending, from the files alone."""
    planned = {p["pair_id"] for p in plan["pairs"]}
    done = done_ids(out) & planned
    failed = set(failures(out)) & planned - done
    return {"planned": len(planned), "done": len(done), "failed": len(failed), "pending": len(planned - done - failed)}
