"""What a model dir holds while a run is under way, and whether a rerun may resume it.

```
MODEL/run.json                 the run's fingerprint, written when training starts
MODEL/backup/<task>/           keras.callbacks.BackupAndRestore state, one folder per host
MODEL/logs/                    TensorBoard (train/, validation/)
MODEL/history.csv              one row per epoch, rewritten whole after each (works on gs://)
MODEL/*_encoder.keras, MODEL/config.json   the finished model; config.json is written last
```

A rerun with the same fingerprint resumes from the backup; one with a different fingerprint is
refused (exit 2) unless ``--overwrite``, so a backup is never restored into another model.
No TensorFlow here: the CLI decides before anything loads.
"""

from __future__ import annotations

import csv
import io
import json

from senclr import storage
from senclr.errors import InputError

RUN = "run.json"
BACKUP = "backup"
LOGS = "logs"
HISTORY = "history.csv"
FINISHED = "config.json"


def read_run(model_dir: str) -> dict | None:
    uri = storage.join(model_dir, RUN)
    if not storage.exists(uri):
        return None
    try:
        return json.loads(storage.read_text(uri))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{uri} is unreadable; pass --overwrite to start the run afresh") from None


def _differences(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:6])


def check_model_dir(model_dir: str, overwrite: bool, fingerprint: dict) -> str:
    """"fresh" (empty, or to be wiped with --overwrite) or "resume"; InputError otherwise."""
    storage.refuse_file(model_dir, "--model-dir")
    if not storage.is_dir(model_dir) or not any(True for _ in storage.list_files(model_dir, limit=1)):
        return "fresh"
    if overwrite:
        return "fresh"
    if storage.exists(storage.join(model_dir, FINISHED)):
        raise InputError(f"model dir {model_dir} holds a finished model: choose a new folder or pass --overwrite")
    old = read_run(model_dir)
    if old is None:
        raise InputError(f"model dir {model_dir} is not empty: choose a new folder or pass --overwrite")
    if old != fingerprint:
        raise InputError(f"model dir {model_dir} holds the backup of a different run ({_differences(old, fingerprint)}); "
                         "rerun with the same flags to resume it, or choose a new folder, or pass --overwrite")
    return "resume"


def start(model_dir: str, state: str, fingerprint: dict) -> None:
    """Clear the folder of a fresh run (only when it was allowed to) and record the fingerprint."""
    if state == "fresh" and storage.is_dir(model_dir):
        storage.remove_tree(model_dir)
    storage.makedirs(model_dir)
    storage.write_text(storage.join(model_dir, RUN), json.dumps(fingerprint, indent=2, sort_keys=True) + "\n")


def read_history(model_dir: str, before_epoch: int) -> list[dict]:
    """Rows of history.csv for epochs < ``before_epoch`` (a killed run may have logged one more)."""
    uri = storage.join(model_dir, HISTORY)
    if not storage.exists(uri):
        return []
    rows = list(csv.DictReader(io.StringIO(storage.read_text(uri))))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in rows
            if int(r["epoch"]) < before_epoch]


def write_history(model_dir: str, rows: list[dict]) -> None:
    keys = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    storage.write_text(storage.join(model_dir, HISTORY), out.getvalue())
