"""Batch mode: Earth Engine export tasks, each writing up to the plan's ``pairs_per_task`` pairs to Cloud Storage.

Why many pairs per task: Earth Engine queues at most 3000 tasks per user and each task has a
start-up cost, so one task per patch would make a million-pair export take months. A task exports
a table with one feature per pair (every band a P x P array, plus ``pair_id``) as TFRecord files
``OUT/tasks/<task>*.tfrecord.gz``.

Idempotence: each task's request id is derived from the plan and the attempt number and saved in
the ledger before submission. Earth Engine answers a repeated request id with the operation it
already started, so a run killed between "submit" and "saved the answer" resubmits without
creating a second task. At most ``--max-concurrent`` tasks are queued or running at once; a
failed task is resubmitted (new attempt, new request id) up to MAX_ATTEMPTS times, keeping each
failure's reason.

No pair is counted that was not written: once a task succeeds, its TFRecord files are read back
for the pair ids they hold (the export's machine reads the task's output once); planned pairs
missing from them are failed with a reason, and the next run exports them in a follow-up task.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

from tqdm import tqdm

from senclr import storage

from . import query, ledger
from .limits import PAIRS_PER_TASK
from .plan import pairing_from_json

MAX_ATTEMPTS = 3
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def task_records(out: str, plan: dict) -> list[dict]:
    """The plan's tasks (fixed groups of pairs in plan order), with any state the ledger holds."""
    digest = hashlib.sha256(json.dumps(plan["identity"], sort_keys=True).encode()).hexdigest()[:10]
    saved = ledger.tasks(out)
    records = []
    per = plan.get("pairs_per_task", PAIRS_PER_TASK)  # plans made before the byte cap: 1000
    for i in range(0, len(plan["pairs"]), per):
        name = f"senclr-{digest}-{i // per:05d}"
        records.append(saved.get(name) or _new_record(name, [p["pair_id"] for p in plan["pairs"][i : i + per]], i))
    grouped = {r["name"] for r in records}
    return records + [r for name, r in sorted(saved.items()) if name not in grouped]  # follow-ups of missing pairs


def _new_record(name: str, pair_ids: list[str], first: int | None = None) -> dict:
    return {"name": name, "pair_ids": pair_ids, "first": first, "attempts": 0, "state": "PLANNED",
            "operation": None, "errors": []}


def task_files(out: str, name: str) -> list[str]:
    """The TFRecord files task ``name`` wrote: ``<name>.tfrecord.gz`` or ``<name>-<digits>...``
    (a follow-up task, ``<name>-r1``, is not one of them)."""
    pattern = re.compile(re.escape(name) + r"(?:-\d[^/]*)?\.tfrecord(?:\.gz)?$")
    return [u for u in storage.list_files(storage.join(out, "tasks")) if pattern.fullmatch(u.rsplit("/", 1)[-1])]


def verify(out: str, record: dict) -> None:
    """After a task succeeded: the pair ids its files really hold. Planned pairs missing from them
    are failed in the ledger, with the reason, and a rerun exports them again (``follow_up``)."""
    from senclr.raw_ee_table import pair_ids

    found = {i for uri in task_files(out, record["name"]) for i in pair_ids(uri)}
    record["written"] = [i for i in record["pair_ids"] if i in found]
    record["missing"] = [i for i in record["pair_ids"] if i not in found]
    for i in record["missing"]:
        ledger.mark_failed(out, i, f"missing_from_output: task {record['name']} succeeded but its files hold no "
                                   f"record of this pair")
    ledger.save_task(out, record["name"], record)


def follow_up(out: str, record: dict) -> dict | None:
    """A new task for the pairs a succeeded task left out (once per task, MAX_ATTEMPTS deep)."""
    if not record.get("missing") or record.get("follow_up") or record["name"].count("-r") >= MAX_ATTEMPTS:
        return None
    name = f"{record['name']}-r1"
    record["follow_up"] = name
    new = _new_record(name, list(record["missing"]))
    ledger.save_task(out, name, new)
    ledger.save_task(out, record["name"], record)
    return new


def _request_id(record: dict) -> str:
    return f"{record['name']}-a{record['attempts']}"  # [A-Za-z0-9-], under EE's 60 characters


def _submit(out: str, plan: dict, record: dict, params) -> None:
    import ee

    bucket, prefix = storage.split_gcs(storage.join(out, "tasks", record["name"]))
    by_id = {p["pair_id"]: p for p in plan["pairs"]}
    pairings = [pairing_from_json(by_id[i]) for i in record["pair_ids"]]
    config = query.table_export_config(pairings, params.s2_level, bucket, prefix, record["name"], params.labels)
    if record["state"] not in ("SUBMITTING",):  # a new attempt; SUBMITTING reuses its request id
        record["attempts"] += 1
        record["state"] = "SUBMITTING"
        ledger.save_task(out, record["name"], record)  # the request id is durable before the request
    try:
        op = ee.data.exportTable(_request_id(record), config)
    except ee.EEException as e:
        op = _already_started(e, record["name"])
    record["operation"] = op["name"]
    _record_state(out, record, op, force_save=True)


def _already_started(error: Exception, name: str) -> dict:
    """The operation a repeated request id already started, when Earth Engine says so (409)."""
    import ee

    http = error.__context__
    conflict = getattr(getattr(http, "resp", None), "status", None) == 409 or "already exists" in str(error).lower()
    if not conflict:
        raise error
    ops = [op for op in ee.data.listOperations() if op.get("metadata", {}).get("description") == name]
    if not ops:
        raise error
    return max(ops, key=lambda op: op.get("metadata", {}).get("createTime", ""))


def _record_state(out: str, record: dict, op: dict, force_save: bool = False) -> None:
    """Take an Operation's state into the record (and the ledger when it changed)."""
    state = op.get("metadata", {}).get("state", "PENDING")
    eecu = op.get("metadata", {}).get("batchEecuUsageSeconds")
    if eecu is not None and eecu != record.get("eecu_seconds"):  # what the task cost, as Earth Engine reports it
        record["eecu_seconds"] = float(eecu)
        force_save = True
    if state == "FAILED" or (op.get("done") and "error" in op):
        state = "FAILED"
        record["errors"].append(op.get("error", {}).get("message", "failed without a message"))
    elif op.get("done") and state not in TERMINAL:  # polling it again would never end
        record["errors"].append(f"Earth Engine reported the task done in state {state}, with neither a result nor an error")
        state = "FAILED"
    if state != record["state"] or force_save:
        record["state"] = state
        record["final"] = state == "CANCELLED" or (state == "FAILED" and record["attempts"] >= record.get("budget", MAX_ATTEMPTS))
        ledger.save_task(out, record["name"], record)


def _poll(out: str, record: dict) -> None:
    import ee

    _record_state(out, record, ee.data.getOperation(record["operation"]))


def run(params, plan: dict, poll_seconds: float = 15.0, progress: bool = True) -> list[dict]:
    """Drive every task to SUCCEEDED, or FAILED after MAX_ATTEMPTS; returns the task records."""
    records = task_records(params.out, plan)
    for r in records:  # a new run gives tasks that failed for good (or were cancelled) new attempts
        if r.get("final"):
            r.update(final=False, state="FAILED", budget=r["attempts"] + MAX_ATTEMPTS)
    records += [f for f in (follow_up(params.out, r) for r in list(records)) if f]
    bar = tqdm(total=len(records), desc="export tasks", unit="task", disable=not progress)
    bar.update(sum(r["state"] == "SUCCEEDED" for r in records))
    while True:
        for r in records:
            if r["operation"] and r["state"] not in TERMINAL:
                _poll(params.out, r)
                bar.update(r["state"] == "SUCCEEDED")
            if r["state"] == "SUCCEEDED" and "written" not in r:
                verify(params.out, r)
        active = sum(r["state"] in ("SUBMITTING", "PENDING", "RUNNING") for r in records)
        for r in records:
            retry = r["state"] == "FAILED" and not r.get("final")
            if (r["state"] in ("PLANNED", "SUBMITTING") or retry) and active < params.max_concurrent:
                _submit(params.out, plan, r, params)
                active += 1
        if all(r["state"] == "SUCCEEDED" or r.get("final") for r in records):
            bar.close()
            return records
        time.sleep(poll_seconds)


def refresh(out: str) -> None:
    """Bring the ledger's task states up to date with Earth Engine."""
    for record in ledger.tasks(out).values():
        if record["operation"] and record["state"] not in TERMINAL:
            _poll(out, record)


def cancel(out: str) -> list[str]:
    """Cancel every task of the export that is still queued or running; their names."""
    import ee

    cancelled = []
    for name, record in sorted(ledger.tasks(out).items()):
        if record["operation"] and record["state"] not in TERMINAL:
            ee.data.cancelOperation(record["operation"])
            record.update(state="CANCELLED", final=True)
            ledger.save_task(out, name, record)
            cancelled.append(name)
    return cancelled
