"""Malformed answers of every remote call the export makes, and the request cap with several DoFn
instances and threads in one process (issue 12).

Earth Engine can answer a well-formed HTTP 200 that is not what was asked: another image's bands,
a shifted grid, a row without a field. None of them may end up as a finished pair or a crash with
a traceback: a pair is recorded as failed (and retried by a rerun), a plan is refused with a
message naming the answer.
"""

import io
import json
import os
import time

import numpy as np
import pytest
from click.testing import CliRunner

from senclr import manifest, raw_archive
from senclr.cli import cli
from senclr.export.earthengine import ledger
from tests.test_export_ee import ARGS, _batch_args, _compute, _invoke, _pixels, ee_server  # noqa: F401
from tests.fake_ee import fake_ee_server, find_calls  # noqa: F401


def _renamed(a, old, new):
    names = [new if n == old else n for n in a.dtype.names]
    return a.astype(np.dtype([(n, a.dtype[o]) for n, o in zip(names, a.dtype.names)]))


def _only(a, names):
    out = np.empty(a.shape, [(n, a.dtype[n]) for n in names])
    for n in names:
        out[n] = a[n]
    return out


def _retyped(a, band, dtype):
    return a.astype(np.dtype([(n, dtype if n == band else a.dtype[n]) for n in a.dtype.names]))


MALFORMED = {  # an answer to a pair's request -> what it holds instead of the pair
    "a row short": lambda a: a[:-1],
    "transposed grid": lambda a: np.ascontiguousarray(a[:, :-1]),
    "VV and VH swapped": lambda a: _only(a, ["VH", "VV", *a.dtype.names[2:]]),
    "no cs_cdf": lambda a: _only(a, a.dtype.names[:-1]),
    "another band's name": lambda a: _renamed(a, "B8A", "B8a"),
    "S2 as float": lambda a: _retyped(a, "B4", "<f4"),
    "S1 as integers": lambda a: _retyped(a, "VV", "<i2"),
    "plain array": lambda a: np.stack([a[n].astype(np.float32) for n in a.dtype.names], axis=-1),
}


@pytest.mark.parametrize("how", list(MALFORMED))
def test_a_malformed_pixels_answer_is_a_failed_pair_not_a_stored_one(ee_server, tmp_path, how):
    odd = []

    def pixels(body):
        a = _pixels(body)
        if not odd:  # the first request answered: it gets the malformed answer
            odd.append(body["grid"]["affineTransform"])
            return MALFORMED[how](a)
        return a

    ee_server.compute_pixels = pixels
    out = str(tmp_path / "raw")
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "highvolume"])
    assert r.exit_code != 0 and "1 of 12 pairs failed" in r.output, r.output
    failed = ledger.failures(out)
    assert len(failed) == 1 and "unexpected response" in next(iter(failed.values()))["reason"]
    assert len(raw_archive.list_pairs(out)) == 11 and manifest.read(out, kind="raw")["counts"]["kept"] == 11
    (pair_id,) = failed
    assert not any(pair_id in f for _, _, fs in os.walk(os.path.join(out, "pairs")) for f in fs)  # no .npy either

    ee_server.compute_pixels = _pixels  # a rerun asks again for that pair only, and finishes
    assert _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "highvolume"]).exit_code == 0
    assert len(raw_archive.list_pairs(out)) == 12 and not ledger.failures(out)


def test_bytes_that_are_not_npy_or_cut_short_are_refused_by_the_check():
    from senclr.export.earthengine import highvolume

    with pytest.raises(ValueError, match="not an NPY array"):
        highvolume.check_npy(b"<html>quota page</html>", 32, "l1c")
    buf = io.BytesIO()
    np.save(buf, _pixels({"grid": {"dimensions": {"width": 32}, "affineTransform": {"translateX": 0}}}))
    highvolume.check_npy(buf.getvalue(), 32, "l1c")  # the well-formed answer passes
    with pytest.raises(ValueError, match="unexpected response"):
        highvolume.check_npy(buf.getvalue()[:-100], 32, "l1c")  # cut short


# --- the plan's getInfo answers --------------------------------------------------------------------

def _scene_answer(mutate):
    def compute(expression):
        if find_calls(expression, "ImageCollection.load") and not find_calls(expression, "Join.saveBest"):
            s2, s1 = _compute(expression)
            return mutate(json.loads(json.dumps([s2, s1])))
        return _compute(expression)
    return compute


def _drop(sensor, i, key):
    def mutate(both):
        row = both[0 if sensor == "s2" else 1][i]
        (row["properties"] if key != "geometry" else row).pop(key)
        return both
    return mutate


BAD_PLAN_ANSWERS = {
    "S2 row without a time": (_scene_answer(_drop("s2", 0, "time")), "time"),
    "S1 row without an id": (_scene_answer(_drop("s1", 1, "id")), "id"),
    "S1 row without a footprint": (_scene_answer(_drop("s1", 0, "geometry")), "geometry"),
    "one table instead of two": (_scene_answer(lambda both: both[:1]), "two scene tables"),
    "a time that is text": (_scene_answer(lambda both: [[{**r, "properties": {**r["properties"], "time": "June"}}
                                                         for r in both[0]], both[1]]), "time"),
    "join rows that are not pairs": (lambda e: [["x"]] if find_calls(e, "Join.saveBest") else _compute(e), "join"),
    "join answer that is not a list": (lambda e: {"rows": 1} if find_calls(e, "Join.saveBest") else _compute(e), "join"),
}


def _embedding_years(answer):
    from senclr.label_bands import EMBEDDING_ID

    return lambda e: answer if EMBEDDING_ID in {c["id"] for c in find_calls(e, "ImageCollection.load")} else _compute(e)


BAD_PLAN_ANSWERS.update({
    "embedding years as text": (_embedding_years(["2020"]), "embedding"),
    "embedding years not a list": (_embedding_years({"2020": 1}), "embedding"),
})


@pytest.mark.parametrize("how", list(BAD_PLAN_ANSWERS))
def test_a_malformed_plan_answer_is_refused_with_a_message(ee_server, tmp_path, how):
    compute, word = BAD_PLAN_ANSWERS[how]
    ee_server.compute = compute
    out = str(tmp_path / "plan")
    extra = ["--embedding"] if word == "embedding" else []
    r = CliRunner().invoke(cli, ["export", "plan", *ARGS, *extra, "--out", out, "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "Earth Engine answered" in r.output and word in r.output, r.output
    assert not os.path.exists(os.path.join(out, "plan.json"))


# --- batch tasks' operations ------------------------------------------------------------------------

@pytest.mark.timeout(60)  # the defect this guards against polls for ever
def test_an_operation_done_without_a_final_state_is_a_failed_task_not_an_endless_poll(ee_server, gcs, tmp_path):
    ee_server.script = lambda body: ["PENDING", {"state": "RUNNING", "done": True}]
    r = CliRunner().invoke(cli, ["export", *_batch_args(gcs, ee_server, tmp_path.name, patches="20")])
    assert r.exit_code == 1 and "failed" in r.output, r.output
    assert len(ee_server.calls("table:export")) == 3  # retried like any failed task, then reported
    s = _invoke(["status", "--out", f"{gcs}/{tmp_path.name}", "--offline"])
    assert "done in state RUNNING" in s.output and "failed 1" in s.output


# --- the request cap -------------------------------------------------------------------------------

@pytest.mark.parametrize("cap", [1, 3])
def test_the_cap_holds_with_several_dofn_instances_and_threads_in_one_process(ee_server, tmp_path, cap):
    """The multi-threaded DirectRunner runs several FetchPairsFn instances in one process, each with
    bundles of its own: only the process-wide slots keep the requests to --max-concurrent (the
    request threads alone, twice as many, would not)."""
    def slow(body):
        time.sleep(0.1)
        return _pixels(body)

    ee_server.compute_pixels = slow
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--max-concurrent", str(cap), "--",
                 "--direct_running_mode=multi_threading", "--direct_num_workers=4"])
    assert r.exit_code == 0, r.output
    assert len(raw_archive.list_pairs(out)) == 12
    assert ee_server.max_in_flight["image:computePixels"] == cap  # reached, never passed
