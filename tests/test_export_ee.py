"""`senclr export plan|run|status` end to end: the real ee client against the fake Earth Engine."""

import gc
import json
import os
import sys
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import Polygon, box, mapping

from senclr import manifest, raw_archive
from senclr.cli import cli
from tests.fake_ee import Fault, constant_compute, fake_ee, fake_ee_server, find_calls  # noqa: F401

REGION = "10.0,45.0,10.3,45.2"
T0 = datetime(2021, 6, 10, 10, 30, tzinfo=timezone.utc)
S2_ROWS = [  # what Earth Engine would answer for the S2 scene table: two dates over tile 32TNR
    (f"20210610T103031_20210610T103026_T32TNR", T0, box(9.7, 44.8, 10.6, 45.5), 12.0),
    (f"20210615T103029_20210615T103025_T32TNR", T0 + timedelta(days=5), box(9.7, 44.8, 10.6, 45.5), 40.0),
]
EAST = 10.15  # the east-only scene's western edge: patches east of it pair with it, the others cannot
S1_ROWS = [  # ascending the evening before; an hour and a half after the S2 pass but covering only the
    # east; descending two days later covering only the west
    ("S1A_IW_GRDH_1SDV_20210609T171500_A", T0 - timedelta(hours=17), box(9.0, 44.5, 11.0, 46.0), "ASCENDING", 117),
    ("S1A_IW_GRDH_1SDV_20210610T120000_E", T0 + timedelta(hours=1.5), box(EAST, 44.5, 11.0, 46.0), "ASCENDING", 15),
    ("S1B_IW_GRDH_1SDV_20210612T053000_D", T0 + timedelta(hours=43), box(9.0, 44.5, 10.15, 46.0), "DESCENDING", 66),
    ("S1A_IW_GRDH_1SDV_20210615T171500_A", T0 + timedelta(days=5, hours=7), box(9.0, 44.5, 11.0, 46.0), "ASCENDING", 117),
]
ARGS = ["--region", REGION, "--start", "2021-06-01", "--end", "2021-07-01", "--patches", "12", "--patch-size", "32",
        "--project", "senclr-test", "--ee-credentials", "none"]


def _ms(t):
    return int(t.timestamp() * 1000)


def _rows():
    s2 = [{"type": "Feature", "geometry": mapping(g), "properties": {"id": i, "time": _ms(t), "cloud_pct": c, "tile": "32TNR", "crs": "EPSG:32632"}}
          for i, t, g, c in S2_ROWS]
    s1 = [{"type": "Feature", "geometry": mapping(g), "properties": {"id": i, "time": _ms(t), "orbit": o, "relative_orbit": r}}
          for i, t, g, o, r in S1_ROWS]
    return s2, s1


def _join_answer(expression):
    """What Earth Engine's per-patch saveBest join returns ([pair_id, s1 id] rows): the scene of
    S1_ROWS nearest in time among those that pass the footprint condition the expression carries
    (contains, intersects or within the patch) within its maxDifference. Worked out here with shapely from the rows, not with
    senclr's pairing policy, so a defect there cannot change the expected answer too."""
    max_diffs = find_calls(expression, "Filter.maxDifference")
    max_diff = max_diffs[0]
    assert all(m == max_diff for m in max_diffs)
    assert max_diff["leftField"] == max_diff["rightField"] == "system:time_start"
    per_patch = lambda c: c.get("leftField") == ".geo" and getattr(c.get("rightValue"), "name", "") == "Feature.geometry"  # noqa: E731
    tests = [getattr(shapely, name) for name in ("contains", "intersects", "within")
             for _ in filter(per_patch, find_calls(expression, f"Filter.{name}"))]  # the footprint conditions asked
    rows = []
    for f in find_calls(expression, "Feature"):
        props = f.get("metadata") or {}
        if "system:time_start" not in props:  # the features the map builds, not the patches
            continue
        patch = Polygon(f["geometry"].args["coordinates"][0])
        gaps = {i: abs(_ms(t) - props["system:time_start"]) for i, t, g, _, _ in S1_ROWS if all(ok(g, patch) for ok in tests)}
        best = min(((gap, i) for i, gap in gaps.items() if gap <= max_diff["difference"]), default=None)
        rows.append([props["pair_id"], best[1] if best else ""])
    return rows[::-1]  # any order: rows are matched by pair id


def _compute(expression):
    if find_calls(expression, "Join.saveBest"):
        return _join_answer(expression)
    if find_calls(expression, "ImageCollection.load"):
        return list(_rows())
    return constant_compute(expression)  # check_access's ee.Number(1)


def _pixels(body):
    size = body["grid"]["dimensions"]["width"]
    names = ["VV", "VH", "B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12", "cs_cdf"]
    dtype = [(n, "<f4" if n in ("VV", "VH", "cs_cdf") else "<u2") for n in names]
    rng = np.random.default_rng(int(body["grid"]["affineTransform"]["translateX"]))
    arr = np.zeros((size, size), dtype)
    for n in names:
        arr[n] = rng.uniform(-20, -5, (size, size)) if n in ("VV", "VH") else (rng.uniform(0.7, 1, (size, size)) if n == "cs_cdf" else rng.integers(100, 4000, (size, size)))
    return arr


def write_task_output(body, drop=()):
    """What a table export task writes on success: a gzip'd TFRecord of one Example per pair
    (``pair_id`` and the bands) under its Cloud Storage prefix; pair ids in ``drop`` left out."""
    import gzip

    from senclr import storage, tfrecord
    from senclr.example_proto import encode_example

    dest = body["fileExportOptions"]["cloudStorageDestination"]
    ids = [c["value"] for c in find_calls(body["expression"], "Element.set") if c.get("key") == "pair_id"]
    names = body["fileExportOptions"].get("selectors") or body.get("selectors") or []
    bands = [n for n in names if n != "pair_id"] or ["VV"]
    records = [encode_example({"pair_id": i, **{b: [0.0] for b in bands}}) for i in ids if i not in drop]
    uri = f"gs://{dest['bucket']}/{dest['filenamePrefix']}.tfrecord.gz"
    storage.write_bytes(uri, gzip.compress(tfrecord.encode_file(records)))


@pytest.fixture
def ee_server(fake_ee_server):
    fake_ee_server.compute = _compute
    fake_ee_server.compute_pixels = _pixels
    fake_ee_server.on_success = lambda body: write_task_output(body) if "fileExportOptions" in body else None
    return fake_ee_server


def _invoke(args):
    return CliRunner().invoke(cli, ["export", *args], catch_exceptions=False)


def test_plan_starts_nothing_and_writes_plan_and_map(ee_server, tmp_path):
    out = str(tmp_path / "plan")
    r = _invoke(["plan", *ARGS, "--out", out, "--ee-api-url", ee_server.url])
    assert r.exit_code == 0, r.output
    plan = json.loads(open(os.path.join(out, "plan.json")).read())
    assert plan["patches"]["paired"] == len(plan["pairs"]) == 12
    assert all(abs(p["dt_hours"]) <= 72 for p in plan["pairs"])
    assert "folium" in open(os.path.join(out, "plan.html")).read().lower()
    assert not ee_server.calls("image:computePixels", status=None) and not ee_server.calls("image:export", status=None)
    query = [r.body["expression"] for r in ee_server.calls("value:compute") if find_calls(r.body["expression"], "ImageCollection.load")][0]  # the scene query; the join check follows
    ids = {c["id"] for c in find_calls(query, "ImageCollection.load")}
    assert ids == {"COPERNICUS/S2_HARMONIZED", "COPERNICUS/S1_GRD", "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"}
    assert {"leftField": "CLOUDY_PIXEL_PERCENTAGE", "rightValue": 30.0} in find_calls(query, "Filter.greaterThan")
    assert {"leftField": "instrumentMode", "rightValue": "IW"} in find_calls(query, "Filter.equals")
    pols = [c.get("rightValue") for c in find_calls(query, "Filter.listContains") if c.get("leftField") == "transmitterReceiverPolarisation"]
    assert sorted(pols) == ["VH", "VV"]
    ranges = {(c["leftValue"].args["start"], c["leftValue"].args["end"]) for c in find_calls(query, "Filter.dateRangeContains")}
    assert ("2021-06-01", "2021-07-01") in ranges and ("2021-05-29", "2021-07-04") in ranges  # S1 widened by --max-dt
    assert "ee_credentials" not in json.dumps(plan)


def test_each_patch_pairs_with_the_nearest_scene_that_contains_it(ee_server, tmp_path):
    """Over all S2 dates a patch lies in, the S1 scene nearest in time that contains it: east of
    EAST the scene 1.5 h after the first S2 pass; elsewhere that one cannot (it does not contain the
    patch), and the scene 7 h after the second S2 pass beats the one 17 h before the first."""
    out = str(tmp_path / "plan")
    assert _invoke(["plan", *ARGS, "--out", out, "--ee-api-url", ee_server.url]).exit_code == 0
    plan = json.load(open(os.path.join(out, "plan.json")))
    half = 32 * 10 / 2 / 78_000  # half a patch in degrees of longitude at 45 N, rounded up
    east = [p for p in plan["pairs"] if p["patch"]["lon"] - half > EAST]
    west = [p for p in plan["pairs"] if p["patch"]["lon"] + half < EAST]
    assert east and west and plan["pairing_disagreements"] == []
    assert {(p["s2"]["id"], p["s1"]["id"], p["dt_hours"]) for p in east} == {(S2_ROWS[0][0], S1_ROWS[1][0], 1.5)}
    assert {(p["s2"]["id"], p["s1"]["id"], p["dt_hours"]) for p in west} == {(S2_ROWS[1][0], S1_ROWS[3][0], 7.0)}


def test_a_scene_that_cuts_through_a_patch_is_not_its_pair_here_or_in_earth_engines_join(ee_server, tmp_path, monkeypatch):
    """Both the local policy and the join expression must ask that the footprint contain the patch
    (a scene that only intersects it leaves part of the patch empty)."""
    first = json.load(open(os.path.join(_plan(ee_server, tmp_path / "a"), "plan.json")))["pairs"][0]
    lon, lat = first["patch"]["lon"], first["patch"]["lat"]
    when = datetime.fromisoformat(first["s2"]["time"]) + timedelta(hours=0.5)  # nearer than any other
    cutting = ("S1A_IW_GRDH_1SDV_C", when, box(lon - 1, lat - 1, lon, lat + 1), "ASCENDING", 15)
    monkeypatch.setattr(sys.modules[__name__], "S1_ROWS", [*S1_ROWS, cutting])
    plan = json.load(open(os.path.join(_plan(ee_server, tmp_path / "b"), "plan.json")))
    assert plan["pairing_disagreements"] == []
    assert next(p for p in plan["pairs"] if p["patch"] == first["patch"])["s1"]["id"] == first["s1"]["id"]


def _plan(ee_server, out) -> str:
    assert _invoke(["plan", *ARGS, "--out", str(out), "--ee-api-url", ee_server.url]).exit_code == 0
    return str(out)


def test_highvolume_run_then_preprocess(ee_server, tmp_path):
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "highvolume", "--max-concurrent", "4"])
    assert r.exit_code == 0, r.output
    m = manifest.read(out, kind="raw")
    assert m["counts"] == {"read": 12, "kept": 12, "rejected": {}}
    pairs = raw_archive.list_pairs(out)
    assert len(pairs) == 12 and len(ee_server.calls("image:computePixels")) == 12
    assert ee_server.max_in_flight["image:computePixels"] <= 4
    assert gc.get_freeze_count() == 0  # the request threads' frozen heap is handed back to the collector
    body = ee_server.calls("image:computePixels")[0].body
    assert body["fileFormat"] == "NPY" and body["grid"]["crsCode"] == "EPSG:32632"
    assert body["workloadTag"] == "senclr-export"  # the cost shows under the tag in the Cloud console
    assert body["grid"]["affineTransform"]["scaleX"] == 10 and body["grid"]["affineTransform"]["translateX"] % 320 == 0
    loads = {c["id"] for c in find_calls(body["expression"], "Image.load")}
    assert any(i.startswith("GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED/") for i in loads)
    # S1, S2 and cs_cdf filled outside their footprints too: no pixel left masked (undefined)
    unmasks = find_calls(body["expression"], "Image.unmask")
    constant = lambda v: v.args["value"] if hasattr(v, "args") else v  # noqa: E731  (ee.Image(c) or c)
    assert sorted((constant(u["value"]), u.get("sameFootprint")) for u in unmasks) == [(-9999, False), (0, False), (0, False)]
    pair = raw_archive.read_pair(pairs[0])
    assert pair.meta.source == "ee-highvolume" and abs(pair.meta.dt_hours) <= 72 and pair.shape == (32, 32)
    from senclr.pipeline.preprocess import preprocess

    ds = preprocess(out, str(tmp_path / "ds"), cell_deg=0.05)
    assert ds["counts"]["read"] == 12


def test_kill_and_resume_gives_no_duplicates_and_no_gaps(ee_server, tmp_path):
    out = str(tmp_path / "raw")
    calls = {"n": 0}

    def flaky(body):  # the run "dies" after 5 pairs: every later request fails for good
        calls["n"] += 1
        if calls["n"] > 5:
            raise Fault(400, "worker killed")
        return _pixels(body)

    ee_server.compute_pixels = flaky
    args = ["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--max-concurrent", "1"]
    r = _invoke(args)
    assert r.exit_code == 1 and "7 of 12 pairs failed" in r.output
    status = _invoke(["status", "--out", out])
    assert "done 5, failed 7, pending 0" in status.output and "worker killed" in status.output
    # and one whose .npy landed half-written while its .json never did (killed between the writes)
    from senclr.export.earthengine import ledger

    torn = sorted(ledger.failures(out))[0]
    npy, _ = raw_archive.pair_uris(out, torn)
    open(npy, "wb").write(b"\x93NUMPY torn")
    done_before = set(raw_archive.list_pairs(out))
    ee_server.compute_pixels = _pixels
    n_before = len(ee_server.calls("image:computePixels"))
    r = _invoke(args)
    assert r.exit_code == 0, r.output
    assert len(ee_server.calls("image:computePixels")) - n_before == 7  # only the missing ones
    assert len(raw_archive.list_pairs(out)) == 12 and done_before <= set(raw_archive.list_pairs(out))
    assert raw_archive.read_pair(raw_archive.pair_uris(out, torn)[1]).shape == (32, 32)
    assert manifest.read(out)["counts"]["kept"] == 12
    r = _invoke(args)  # a third run has nothing to do
    assert r.exit_code == 0 and len(ee_server.calls("image:computePixels")) - n_before == 7


def test_injected_429_and_500_lose_nothing(ee_server, tmp_path):
    ee_server.fail(0.2, codes=(429, 500), seed=1, endpoints=("image:computePixels",))
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url])
    assert r.exit_code == 0, r.output
    assert len(raw_archive.list_pairs(out)) == 12
    assert len(ee_server.calls("image:computePixels", status=None)) > 12  # some were retried


def test_401_is_a_clear_error_and_starts_nothing(ee_server, tmp_path):
    ee_server.unauthorized = True
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", str(tmp_path / "raw"), "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and "authenticate" in r.output
    assert not ee_server.calls("image:computePixels", status=None)
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("change, extra, message", [
    ({"--start": "2021-07-01", "--end": "2021-06-01"}, [], "end"),
    ({"--start": "2013-01-01"}, [], "2014-10-03"),
    ({"--region": "10,45,10,46"}, [], "zero"),
    ({"--region": "170,45,190,46"}, [], "180"),
    ({"--region": "/no/such.geojson"}, [], "no/such.geojson"),
    ({}, ["--mode", "batch"], "gs://"),
    ({}, ["--max-dt", "0"], "max-dt"),
    ({}, ["--", "--runner", "NoSuchRunner"], "NoSuchRunner"),
])
def test_bad_input_exits_2_before_any_request(ee_server, tmp_path, change, extra, message):
    args = ["run", *ARGS, "--out", str(tmp_path / "raw"), "--ee-api-url", ee_server.url]
    for flag, value in change.items():
        args[args.index(flag) + 1] = value
    n = len(ee_server.requests)
    r = CliRunner().invoke(cli, ["export", *args, *extra])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert len(ee_server.requests) == n  # not even a connection
    assert not (tmp_path / "raw").exists()


def _batch_args(gcs, server, tmp_name, patches="2500"):
    args = ["run", *ARGS, "--out", f"{gcs}/{tmp_name}", "--ee-api-url", server.url, "--mode", "batch",
            "--max-concurrent", "2", "--poll-seconds", "0", "--patch-size", "16"]
    args[args.index("--patches") + 1] = patches
    return args


def test_batch_run_packs_pairs_into_few_tasks_within_the_queue_cap(ee_server, gcs, tmp_path):
    from senclr.export.earthengine import ledger

    r = _invoke(_batch_args(gcs, ee_server, tmp_path.name))
    assert r.exit_code == 0, r.output
    out = f"{gcs}/{tmp_path.name}"
    plan = ledger.read_plan(out)
    n = len(plan["pairs"])
    exports = ee_server.calls("table:export")
    assert n > 1000 and len(exports) == -(-n // 1000)  # ceil: at most 1000 pairs per task
    body = exports[0].body
    dest = body["fileExportOptions"]["cloudStorageDestination"]
    assert body["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"
    assert dest["bucket"] == "senclr-test" and dest["filenamePrefix"].startswith(f"{tmp_path.name}/tasks/senclr-")
    assert body["requestId"].endswith("-a1")
    assert find_calls(body["expression"], "Image.neighborhoodToArray")
    # never more than --max-concurrent tasks queued or running at once
    assert max(_active_over_time(ee_server)) <= 2
    m = manifest.read(out, kind="raw")
    assert m["counts"]["kept"] == n and "tfrecord" in m["format"]


def _active_over_time(server):
    """Tasks submitted but not yet seen finished, after each request (from the request log)."""
    active, finished, series = set(), set(), []
    for req in server.requests:
        if req.endpoint == "table:export" and req.status == 200:
            active.add(req.body["requestId"].rsplit("-a", 1)[0])
        if req.endpoint == "operations.get":
            op = server.operations.get(req.path.split("/v1/", 1)[-1])
            if op and op["op"].get("done"):
                finished.add(op["body"]["requestId"].rsplit("-a", 1)[0])
        series.append(len(active - finished))
    return series


def test_batch_lost_answer_is_resubmitted_without_a_duplicate_task(ee_server, gcs, tmp_path):
    ee_server.fail_next(1, 503, endpoints=("table:export",), after_handling=True)  # created, answer lost
    r = _invoke(_batch_args(gcs, ee_server, tmp_path.name, patches="20"))
    assert r.exit_code == 0, r.output
    assert len(ee_server.operations) == 1  # one task, though submitted twice


def test_batch_failed_task_is_retried_then_reported_with_its_reason(ee_server, gcs, tmp_path):
    ee_server.script = lambda body: ["PENDING", {"state": "FAILED", "error": {"code": 3, "message": "Too many bands"}}]
    r = CliRunner().invoke(cli, ["export", *_batch_args(gcs, ee_server, tmp_path.name, patches="20")])
    assert r.exit_code == 1 and "failed" in r.output
    assert len(ee_server.calls("table:export")) == 3  # MAX_ATTEMPTS
    s = _invoke(["status", "--out", f"{gcs}/{tmp_path.name}", "--offline"])
    assert "Too many bands" in s.output and "failed 1" in s.output


def submit_one_task(ee_server, out: str) -> dict:
    """Plan a 20-patch batch export into ``out`` and submit its first task only; its record."""
    from senclr.export.earthengine import batch
    from senclr.export.earthengine.params import build_params
    from senclr.export.earthengine.run import connect, planned

    params = build_params(region=REGION, start="2021-06-01", end="2021-07-01", out=out, patches=20, patch_size=16,
                          project="senclr-test", ee_credentials="none", ee_api_url=ee_server.url, mode="batch")
    connect(params)
    plan = planned(params)
    record = batch.task_records(out, plan)[0]
    batch._submit(out, plan, record, params)
    return record


def test_cancel_stops_running_tasks(ee_server, gcs, tmp_path):
    from senclr.export.earthengine import ledger

    ee_server.script = lambda body: ["PENDING", "RUNNING", "RUNNING", "RUNNING", "RUNNING"]
    out = f"{gcs}/{tmp_path.name}"
    record = submit_one_task(ee_server, out)
    r = _invoke(["cancel", "--out", out, "--project", "senclr-test", "--ee-credentials", "none", "--ee-api-url", ee_server.url])
    assert r.exit_code == 0 and "cancelled 1 task" in r.output
    assert ee_server.calls("operations.cancel")
    assert ledger.tasks(out)[record["name"]]["state"] == "CANCELLED"


def test_plans_are_stable_and_a_disagreement_drops_that_pair_only(ee_server, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for out in (a, b):
        assert _invoke(["plan", *ARGS, "--out", out, "--ee-api-url", ee_server.url]).exit_code == 0
    ids = [[p["pair_id"] for p in json.load(open(os.path.join(o, "plan.json")))["pairs"]] for o in (a, b)]
    assert ids[0] == ids[1]

    odd = sorted(ids[0])[3]  # Earth Engine's join picks another S1 scene for this one pair
    ee_server.compute = lambda e: ([[r[0], "S1B_other" if r[0] == odd else r[1]] for r in _join_answer(e)]
                                   if find_calls(e, "Join.saveBest") else _compute(e))
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "highvolume"])
    assert r.exit_code == 0, r.output
    plan = json.load(open(os.path.join(out, "ledger", "plan.json")))
    assert plan["pairing_disagreements"] == [odd] and plan["patches"]["dropped"]["pairing_disagreement"] == 1
    assert odd not in {p["pair_id"] for p in plan["pairs"]} and len(plan["pairs"]) == 11
    assert len(ee_server.calls("image:computePixels")) == 11
    r = _invoke(["status", "--out", out, "--offline"])
    assert "1 x pairing_disagreement" in r.output

    ee_server.compute = lambda e: ([[r[0], ""] for r in _join_answer(e)] if find_calls(e, "Join.saveBest") else _compute(e))
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", str(tmp_path / "raw2"), "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and "disagreed with senclr's pairing on all 12" in r.output


def test_an_agreement_chunk_too_heavy_for_earth_engine_is_halved(ee_server, tmp_path):
    sizes = []

    def heavy(e):
        if not find_calls(e, "Join.saveBest"):
            return _compute(e)
        rows = _join_answer(e)
        sizes.append(len(rows))
        if len(rows) > 3:
            raise Fault(400, "Too many concurrent aggregations.")
        return rows

    ee_server.compute = heavy
    out = str(tmp_path / "p")
    r = _invoke(["plan", *ARGS, "--out", out, "--ee-api-url", ee_server.url])
    assert r.exit_code == 0, r.output
    assert sizes[0] == 12 and max(sizes[1:]) <= 6 and sum(n for n in sizes if n <= 3) == 12
    assert json.load(open(os.path.join(out, "plan.json")))["pairing_disagreements"] == []

    def broken(e):
        if find_calls(e, "Join.saveBest"):
            raise Fault(400, "Collection.loadTable: Table not found.")
        return _compute(e)

    ee_server.compute = broken
    r = CliRunner().invoke(cli, ["export", "plan", *ARGS, "--out", str(tmp_path / "q"), "--ee-api-url", ee_server.url])
    assert r.exit_code != 0 and "Table not found" in (r.output + repr(r.exception))


def test_fractional_max_dt_widens_the_s1_window_exactly(ee_server, tmp_path):
    args = [*ARGS, "--max-dt", "1.5"]
    assert _invoke(["plan", *args, "--out", str(tmp_path / "p"), "--ee-api-url", ee_server.url]).exit_code == 0
    query = [r.body["expression"] for r in ee_server.calls("value:compute") if find_calls(r.body["expression"], "ImageCollection.load")][0]  # the scene query; the join check follows
    ranges = {(c["leftValue"].args["start"], c["leftValue"].args["end"]) for c in find_calls(query, "Filter.dateRangeContains")}
    assert ("2021-05-30T12:00:00", "2021-07-02T12:00:00") in ranges


def test_missing_project_says_how_to_authenticate(ee_server, tmp_path):
    args = [a for a in ARGS if a not in ("--project", "senclr-test")]
    n = len(ee_server.requests)
    r = CliRunner().invoke(cli, ["export", "run", *args, "--out", str(tmp_path / "raw"), "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and "--project" in r.output and "authenticate" in r.output
    assert len(ee_server.requests) == n


def test_concurrency_cap_holds_across_worker_processes(ee_server, tmp_path):
    import time

    def slow(body):
        time.sleep(0.05)
        return _pixels(body)

    ee_server.compute_pixels = slow
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--max-concurrent", "4", "--",
                 "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert r.exit_code == 0, r.output
    assert len(raw_archive.list_pairs(out)) == 12
    assert 1 <= ee_server.max_in_flight["image:computePixels"] <= 4


def test_resume_may_change_execution_settings_but_not_the_plan(ee_server, tmp_path):
    out = str(tmp_path / "raw")
    ee_server.compute_pixels = lambda body: (_ for _ in ()).throw(Fault(400, "down"))
    assert _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url]).exit_code == 1
    ee_server.compute_pixels = _pixels
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--max-concurrent", "2"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--seed", "5"])
    assert r.exit_code == 2 and "seed" in r.output


def test_out_holding_something_else_is_refused(ee_server, tmp_path):
    out = tmp_path / "mixed"
    assert _invoke(["synthetic", "--out", str(out), "--pairs", "3"]).exit_code == 0
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", str(out), "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and "not an export ledger" in r.output
    assert len(raw_archive.list_pairs(str(out))) == 3


def test_secrets_in_the_url_and_dataflow_without_worker_cap_are_refused(ee_server, tmp_path):
    n = len(ee_server.requests)
    url = ee_server.url.replace("http://", "http://user:s3cret@")
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", str(tmp_path / "a"), "--ee-api-url", url])
    assert r.exit_code == 2 and "s3cret" not in r.output
    r = CliRunner().invoke(cli, ["export", "run", *ARGS, "--out", str(tmp_path / "b"), "--ee-api-url", ee_server.url,
                                 "--", "--runner", "DataflowRunner"])
    assert r.exit_code == 2 and "--max_num_workers" in r.output
    assert len(ee_server.requests) == n


def test_batch_rerun_retries_tasks_that_failed_for_good(ee_server, gcs, tmp_path):
    ee_server.script = lambda body: [{"state": "FAILED", "error": {"code": 13, "message": "internal"}}]
    args = _batch_args(gcs, ee_server, tmp_path.name, patches="20")
    assert CliRunner().invoke(cli, ["export", *args]).exit_code == 1
    ee_server.script = lambda body: ["PENDING", "SUCCEEDED"]
    r = _invoke(args)
    assert r.exit_code == 0, r.output
    assert len(ee_server.calls("table:export")) == 4  # 3 failed attempts, then one that succeeded


def test_batch_conflict_on_a_repeated_request_adopts_the_started_task(ee_server, gcs, tmp_path):
    ee_server.fail_next(1, 409, endpoints=("table:export",), after_handling=True)  # started, then "already exists"
    r = _invoke(_batch_args(gcs, ee_server, tmp_path.name, patches="20"))
    assert r.exit_code == 0, r.output
    assert len(ee_server.operations) == 1 and ee_server.calls("operations.list")


def test_a_run_killed_for_real_resumes_without_duplicates_or_gaps(ee_server, tmp_path):
    """SIGKILL the CLI in the middle of a high-volume run, then run the same command again."""
    import signal
    import subprocess
    import sys

    out = str(tmp_path / "raw")
    args = ["export", "run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--max-concurrent", "1"]
    proc = {}
    served = {"n": 0}

    def killing(body):
        served["n"] += 1
        if served["n"] == 6:  # the 6th request: the process dies while waiting for its answer
            os.kill(proc["p"].pid, signal.SIGKILL)
        return _pixels(body)

    ee_server.compute_pixels = killing
    code = "from senclr.cli import main; import sys; main(sys.argv[1:])"
    proc["p"] = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc["p"].wait(timeout=120) == -signal.SIGKILL
    survived = set(raw_archive.list_pairs(out))
    assert 1 <= len(survived) <= 5 and not os.path.exists(os.path.join(out, "manifest.json"))

    ee_server.compute_pixels = _pixels
    before = len(ee_server.calls("image:computePixels"))
    r = _invoke(args[1:])
    assert r.exit_code == 0, r.output
    assert len(ee_server.calls("image:computePixels")) - before == 12 - len(survived)  # no pair fetched twice
    assert set(raw_archive.list_pairs(out)) >= survived and len(raw_archive.list_pairs(out)) == 12
    assert manifest.read(out)["counts"] == {"read": 12, "kept": 12, "rejected": {}}


def test_a_long_todo_list_goes_through_a_file(ee_server, tmp_path, monkeypatch):
    from senclr.export.earthengine import highvolume

    monkeypatch.setattr(highvolume, "CREATE_LIMIT", 3)
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url])
    assert r.exit_code == 0, r.output
    assert len(raw_archive.list_pairs(out)) == 12 and len(ee_server.calls("image:computePixels")) == 12
    assert os.path.exists(os.path.join(out, "ledger", "todo_ids.txt"))  # the ids; entries are always in todo.jsonl


def test_negative_poll_interval_exits_2(ee_server, gcs, tmp_path):
    args = _batch_args(gcs, ee_server, tmp_path.name, patches="20")
    args[args.index("--poll-seconds") + 1] = "-1"
    n = len(ee_server.requests)
    r = CliRunner().invoke(cli, ["export", *args])
    assert r.exit_code == 2 and "--poll-seconds" in r.output and len(ee_server.requests) == n


def test_a_patch_earth_engine_would_refuse_is_refused_before_any_request(ee_server, tmp_path):
    args = [a for a in ARGS if a not in ("--patch-size", "32")]
    for mode in ("highvolume", "batch"):
        out = str(tmp_path / mode)
        r = _invoke(["run", *args, "--patch-size", "1024", "--out", out if mode == "highvolume" else "gs://b/x",
                     "--ee-api-url", ee_server.url, "--mode", mode])
        assert r.exit_code == 2 and "56,623,104 bytes" in r.output and "--patch-size 964" in r.output, r.output
    r = _invoke(["plan", *args, "--patch-size", "994", "--s2-collection", "l2a", "--out", str(tmp_path / "p"),
                 "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and "--patch-size 992" in r.output
    assert not ee_server.calls("image:computePixels") and not ee_server.calls("value:compute")
    assert not os.path.exists(tmp_path / "highvolume") and not os.path.exists(tmp_path / "p")


def test_batch_and_highvolume_ask_for_the_same_north_up_grid(ee_server, tmp_path, gcs):
    """On the expressions sent: each batch patch is reprojected onto, and sampled in, exactly the
    grid computePixels gets for the same pair (north up), with no scale or numPixels beside it."""
    assert _invoke(["run", *ARGS, "--out", str(tmp_path / "hv"), "--ee-api-url", ee_server.url,
                    "--mode", "highvolume"]).exit_code == 0
    highvolume = set()
    for call in ee_server.calls("image:computePixels"):
        t = call.body["grid"]["affineTransform"]
        assert t["scaleY"] < 0 and call.body["grid"]["crsCode"] == "EPSG:32632"  # north up
        highvolume.add((t["scaleX"], t.get("shearX", 0), t["translateX"], t.get("shearY", 0), t["scaleY"], t["translateY"]))
    r = _invoke(["run", *ARGS, "--out", f"{gcs}/{tmp_path.name}", "--ee-api-url", ee_server.url, "--mode", "batch",
                 "--poll-seconds", "0"])
    assert r.exit_code == 0, r.output
    expr = ee_server.calls("table:export")[0].body["expression"]
    samples, reprojections = find_calls(expr, "Image.sample"), find_calls(expr, "Image.reproject")
    assert len(samples) == len(reprojections) == len(highvolume) == 12
    grid = lambda proj: (proj.args["crs"], tuple(proj.args["transform"]))  # noqa: E731
    sampled = {grid(s["projection"]) for s in samples}
    assert sampled == {grid(r["crs"]) for r in reprojections} == {("EPSG:32632", t) for t in highvolume}
    assert all("scale" not in s and "numPixels" not in s for s in samples)


def test_a_pair_missing_from_a_succeeded_task_is_failed_then_exported_again(ee_server, gcs, tmp_path):
    from senclr.export.earthengine import ledger

    lost = []

    def lossy(body):  # the first task's files lack one of its pairs
        if not lost:
            ids = [c["value"] for c in find_calls(body["expression"], "Element.set") if c.get("key") == "pair_id"]
            lost.append(ids[2])
        write_task_output(body, drop=lost if len(ee_server.calls("table:export")) == 1 else ())

    ee_server.on_success = lossy
    args = ["run", *ARGS, "--out", f"{gcs}/{tmp_path.name}", "--ee-api-url", ee_server.url, "--mode", "batch",
            "--poll-seconds", "0"]
    r = CliRunner().invoke(cli, ["export", *args])
    out = f"{gcs}/{tmp_path.name}"
    assert r.exit_code == 1 and "1 of 12 pairs failed" in r.output, r.output
    assert list(ledger.failures(out)) == lost and "missing_from_output" in ledger.failures(out)[lost[0]]["reason"]
    assert ledger.counts(out, ledger.read_plan(out)) == {"planned": 12, "done": 11, "failed": 1, "pending": 0}
    assert manifest.read(out, kind="raw")["counts"] == {"read": 12, "kept": 11, "rejected": {"missing_from_output": 1}}

    r = CliRunner().invoke(cli, ["export", *args])  # the rerun exports the lost pair in a follow-up task
    assert r.exit_code == 0, r.output
    follow = [c.body for c in ee_server.calls("table:export")][-1]
    assert [c["value"] for c in find_calls(follow["expression"], "Element.set") if c.get("key") == "pair_id"] == lost
    assert follow["description"].endswith("-r1")
    r = _invoke(["status", "--out", out, "--offline"])
    assert "EECU-hours" in r.output and "0.000 EECU" not in r.output  # what the tasks cost, as reported
    assert manifest.read(out, kind="raw")["counts"]["kept"] == 12 and not ledger.failures(out)



def test_a_bad_workload_tag_is_refused_before_any_request(ee_server, tmp_path):
    r = _invoke(["run", *ARGS, "--out", str(tmp_path / "o"), "--ee-api-url", ee_server.url, "--workload-tag", "-bad tag"])
    assert r.exit_code == 2 and "--workload-tag" in r.output and not ee_server.requests
