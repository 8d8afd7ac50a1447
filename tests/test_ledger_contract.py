"""export/earthengine/ledger.py on a hand-made ledger (issue 12, mutation check): which pairs are done, failed
or pending, from the archive's files and the task records alone."""

import numpy as np

from senclr import raw_archive
from senclr.export.earthengine import ledger
from tests.helpers import random_pair


def _task(name, state, ids, final=False, written=None, errors=()):
    record = {"name": name, "state": state, "pair_ids": ids, "final": final, "attempts": 3, "errors": list(errors)}
    if written is not None:
        record["written"] = written
    return record


def test_done_failed_and_pending_from_the_files(tmp_path):
    out = str(tmp_path / "raw")
    rng = np.random.default_rng(0)
    stored = [random_pair(rng, 8, i, labels=False) for i in range(2)]
    for p in stored:
        raw_archive.write_pair(out, p)
    ledger.save_task(out, "t-ok", _task("t-ok", "SUCCEEDED", ["a", "b", "c"], written=["a", "b"]))
    ledger.save_task(out, "t-old", _task("t-old", "SUCCEEDED", ["d"]))  # not verified yet: its planned pairs
    ledger.save_task(out, "t-dead", _task("t-dead", "FAILED", ["e", "f"], final=True, errors=["first", "Too many bands"]))
    ledger.save_task(out, "t-again", _task("t-again", "FAILED", ["g"], final=False, errors=["retrying"]))
    ledger.save_task(out, "t-cancel", _task("t-cancel", "CANCELLED", ["h"], final=True))
    ledger.mark_failed(out, "i", "EEException: quota")
    ledger.mark_failed(out, stored[0].pair_id, "failed once, done since")

    ids = {p.pair_id for p in stored}
    assert set(ledger.tasks(out)) == {"t-ok", "t-old", "t-dead", "t-again", "t-cancel"}
    assert ledger.done_ids(out) == ids | {"a", "b", "d"}
    failed = ledger.failures(out)
    assert set(failed) == {"e", "f", "h", "i"}
    assert failed["e"]["reason"] == "task t-dead failed: Too many bands" and failed["e"]["attempts"] == 3
    assert failed["h"]["reason"] == "task t-cancel cancelled: cancelled"
    plan = {"pairs": [{"pair_id": i} for i in [*ids, *"abcdefghij"]]}
    assert ledger.counts(out, plan) == {"planned": 12, "done": 5, "failed": 4, "pending": 3}  # c, g, j
