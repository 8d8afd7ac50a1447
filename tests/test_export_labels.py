"""`senclr export --labels worldcover,dynamicworld --embedding`: label and feature bands on the
pair's own grid, checked on the expressions the real client sends, then carried through the raw
archive and `senclr preprocess` into the dataset."""

import json
import os
from datetime import datetime, timezone

import numpy as np
import pytest

from senclr import manifest, raw_archive, storage
from senclr.dataset import iter_records
from senclr.example_proto import encode_example
from senclr.label_bands import (CLASS_NODATA, DYNAMICWORLD, EMBEDDING_BANDS, EMBEDDING_ID, EMBEDDING_NODATA,
                                WORLDCOVER, dequantize_embedding)
from senclr.raw_ee_table import ExportPlan, decode_pair
from tests.fake_ee import fake_ee_server, find_calls  # noqa: F401
from tests.test_export_ee import ARGS, _compute, _invoke, _pixels, ee_server  # noqa: F401

LABELS = ["--labels", "worldcover,dynamicworld", "--embedding"]
FIELDS = ["worldcover", "dynamicworld", "embedding"]


def _labelled_pixels(body):
    """The sensor bands as before, then the label bands the expression asks for, in its order:
    class indices with some no data, the embedding as int8 with one no-data column."""
    base = _pixels(body)
    size = base.shape[0]
    rng = np.random.default_rng(int(body["grid"]["affineTransform"]["translateY"]))
    renamed = [n for c in find_calls(body["expression"], "Image.rename") for n in c["names"]]
    loads = {c["id"] for c in find_calls(body["expression"], "ImageCollection.load")}
    asked = [n for n in FIELDS if n in renamed or (n == "embedding" and EMBEDDING_ID in loads)]
    fields = list(base.dtype.descr) + [(n, "u1") for n in asked if n != "embedding"]
    fields += [(b, "i1") for b in EMBEDDING_BANDS] if "embedding" in asked else []
    arr = np.zeros((size, size), fields)
    for n in base.dtype.names:
        arr[n] = base[n]
    for name, cmap in (("worldcover", WORLDCOVER), ("dynamicworld", DYNAMICWORLD)):
        if name in asked:
            arr[name] = rng.integers(0, len(cmap.codes), (size, size))
            arr[name][0, :3] = CLASS_NODATA
    for b in EMBEDDING_BANDS if "embedding" in asked else ():
        arr[b] = rng.integers(-127, 128, (size, size))
        arr[b][:, -1] = EMBEDDING_NODATA
    return arr


def _with_embedding_years(server, years):
    """The fake answers the plan's embedding-coverage query with images of ``years``."""
    def compute(expression):
        if EMBEDDING_ID in {c["id"] for c in find_calls(expression, "ImageCollection.load")}:
            return [round(datetime(y, 1, 1, tzinfo=timezone.utc).timestamp() * 1000) for y in years]
        return _compute(expression)

    server.compute = compute
    return server


@pytest.fixture
def labels_server(ee_server):
    return _with_embedding_years(ee_server, range(2017, 2026))


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).astimezone(timezone.utc).timestamp() * 1000)


def test_labels_and_embedding_reach_the_dataset_on_the_pair_grid(labels_server, tmp_path):
    ee_server = labels_server
    ee_server.compute_pixels = _labelled_pixels
    out = str(tmp_path / "raw")
    r = _invoke(["run", *ARGS, *LABELS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "highvolume"])
    assert r.exit_code == 0, r.output
    plan = json.loads(storage.read_text(storage.join(out, "ledger", "plan.json")))
    assert plan["parameters"]["labels"] == FIELDS
    shown = _invoke(["plan", *ARGS, *LABELS, "--out", str(tmp_path / "p"), "--ee-api-url", ee_server.url])
    assert "label and feature bands: worldcover, dynamicworld, embedding" in shown.output, shown.output
    windows = {(min(_ms(p["s1"]["time"]), _ms(p["s2"]["time"])), max(_ms(p["s1"]["time"]), _ms(p["s2"]["time"])) + 1)
               for p in plan["pairs"]}

    for call in ee_server.calls("image:computePixels"):
        expr = call.body["expression"]
        loads = {c["id"] for c in find_calls(expr, "ImageCollection.load")}
        assert {WORLDCOVER.ee_id, DYNAMICWORLD.ee_id, "GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL"} <= loads
        # WorldCover's codes 10..100 become indices 0..10; Dynamic World's 0..8 already are
        assert [(c["from"], c["to"]) for c in find_calls(expr, "Image.remap")] == [(list(WORLDCOVER.codes),
                                                                                     list(range(11)))]
        # nearest neighbour for classes and the embedding: the only resample is S1's bilinear
        assert [c["mode"] for c in find_calls(expr, "Image.resample")] == ["bilinear"]
        ranges = [(d["start"], d["end"]) for d in find_calls(expr, "DateRange")]
        assert ("2021-01-01", "2022-01-01") in ranges  # the embedding of the S2 year
        assert len(find_calls(expr, "reduce.mode")) == 1 and any(r in windows for r in ranges)  # DW over the pair's dates
        value = lambda v: v.args["value"] if hasattr(v, "args") else v  # noqa: E731
        fills = sorted((value(u["value"]), u.get("sameFootprint")) for u in find_calls(expr, "Image.unmask"))
        assert fills == [(-9999, False), (-128, False), (0, False), (0, False), (255, False), (255, False)]
        assert [value(m["image2"]) for m in find_calls(expr, "Image.multiply")] == [127.0]
        assert len(find_calls(expr, "Image.toInt8")) == 1 and len(find_calls(expr, "Image.toUint8")) == 2

    m = manifest.read(out, kind="raw")
    assert m["labels"] == FIELDS
    pair = raw_archive.read_pair(raw_archive.list_pairs(out)[0])
    assert pair.labels["worldcover"].dtype == np.uint8 and pair.labels["worldcover"].shape == (32, 32)
    assert pair.labels["embedding"].dtype == np.int8 and pair.labels["embedding"].shape == (32, 32, 64)

    from senclr.pipeline.preprocess import preprocess

    ds = preprocess(out, str(tmp_path / "ds"), cell_deg=0.05)
    assert ds["labels"] == FIELDS
    stored = {p.pair_id: p for p in map(raw_archive.read_pair, raw_archive.list_pairs(out))}
    records = list(iter_records(str(tmp_path / "ds")))
    assert records
    for rec in records:
        want = stored[rec["pair_id"]].labels
        for name in FIELDS:
            np.testing.assert_array_equal(rec[name], want[name])
        emb = dequantize_embedding(rec["embedding"])
        assert np.isnan(emb[:, -1]).all() and np.abs(emb[:, :-1]).max() <= 1.0

    import tensorflow as tf  # the tf.data reader gives the same fields, the embedding [H, W, 64]

    from senclr.dataset_tf import make_dataset

    first = next(iter(make_dataset(str(tmp_path / "ds"), labels=tuple(FIELDS))))
    assert first["embedding"].shape == (32, 32, 64) and first["embedding"].dtype == tf.int8
    assert first["worldcover"].shape == (32, 32) and first["dynamicworld"].dtype == tf.uint8


def test_batch_tasks_select_the_label_bands_and_the_reader_decodes_them(labels_server, gcs, tmp_path):
    ee_server = labels_server
    r = _invoke(["run", *ARGS, *LABELS, "--out", f"{gcs}/{tmp_path.name}", "--ee-api-url", ee_server.url,
                 "--mode", "batch", "--poll-seconds", "0"])
    assert r.exit_code == 0, r.output
    body = ee_server.calls("table:export")[0].body
    selectors = body["fileExportOptions"].get("selectors") or body.get("selectors")
    assert selectors[-66:] == ["worldcover", "dynamicworld", *EMBEDDING_BANDS]
    assert manifest.read(f"{gcs}/{tmp_path.name}", kind="raw")["labels"] == FIELDS

    # what a table export writes: every band as P x P floats; the reader restores the dtypes
    p = 4
    entry = json.loads(storage.read_text(f"{gcs}/{tmp_path.name}/ledger/plan.json"))["pairs"][0]
    entry = {**entry, "patch": {**entry["patch"], "size_px": p}}
    plan = ExportPlan("l1c", p, {entry["pair_id"]: entry}, {}, tuple(FIELDS))
    bands = {b: [float(i % 7) for i in range(p * p)] for b in ["VV", "VH", *plan.s2_bands, "cs_cdf"]}
    bands.update(worldcover=[255.0] + [3.0] * (p * p - 1), dynamicworld=[8.0] * (p * p),
                 **{b: [-128.0] + [127.0] * (p * p - 1) for b in EMBEDDING_BANDS})
    pair = decode_pair(encode_example({"pair_id": entry["pair_id"], **bands}), plan, "test")
    assert pair.labels["worldcover"].dtype == np.uint8 and pair.labels["worldcover"][0, 0] == 255
    assert pair.labels["embedding"].shape == (p, p, 64) and pair.labels["embedding"][0, 0, 0] == -128
    assert pair.labels["embedding"][1, 1, 5] == 127 and pair.check_shapes() is None
    del bands["A07"]
    assert decode_pair(encode_example({"pair_id": entry["pair_id"], **bands}), plan, "test").reason == "missing_bands"


def test_a_structured_pair_with_an_embedding_round_trips(tmp_path):
    from tests.helpers import random_pair

    pair = random_pair(np.random.default_rng(1), 16, labels=False)
    pair.labels = {"worldcover": np.full((16, 16), 4, np.uint8),
                   "embedding": np.arange(16 * 16 * 64).reshape(16, 16, 64).astype(np.int8)}
    raw_archive.write_pair(str(tmp_path), pair)
    back = raw_archive.read_pair(raw_archive.list_pairs(str(tmp_path))[0])
    assert set(back.labels) == {"worldcover", "embedding"}
    np.testing.assert_array_equal(back.labels["embedding"], pair.labels["embedding"])


@pytest.mark.parametrize("extra, message", [
    (["--labels", "corine"], "choose from worldcover, dynamicworld"),
    (["--embedding", "--patch-size", "600"], "--patch-size 524"),
    (["--labels", "worldcover", "--patch-size", "964"], "--patch-size 948"),
])
def test_bad_label_arguments_exit_2_before_any_request(ee_server, tmp_path, extra, message):
    args = [a for a in ARGS if a not in ("--patch-size", "32")] + (["--patch-size", "32"] if "--patch-size" not in extra else [])
    r = _invoke(["plan", *args, *extra, "--out", str(tmp_path / "p"), "--ee-api-url", ee_server.url])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not ee_server.calls("value:compute") and not os.path.exists(tmp_path / "p")


def test_a_rerun_with_other_labels_is_refused_and_a_plan_without_labels_keeps_its_identity(ee_server, tmp_path):
    ee_server.compute_pixels = _labelled_pixels
    out = str(tmp_path / "raw")
    base = ["run", *ARGS, "--out", out, "--ee-api-url", ee_server.url, "--mode", "highvolume"]
    assert _invoke([*base, "--labels", "worldcover"]).exit_code == 0
    r = _invoke([*base, "--labels", "dynamicworld"])
    assert r.exit_code == 2 and "labels" in r.output and "differ" in r.output
    from senclr.export.earthengine.params import build_params

    no_labels = build_params(region=ARGS[1], start="2021-06-01", end="2021-07-01", out=out, mode="highvolume")
    assert "labels" not in no_labels.plan_identity()  # ledgers from before labels existed still resume



def test_the_land_cover_evaluation_names_the_exported_classes():
    from senclr.evaluate.dataset_seg import NODATA, class_names

    assert class_names({}, "worldcover") == list(WORLDCOVER.classes) and len(WORLDCOVER.classes) == 11
    assert class_names({}, "dynamicworld")[0] == "water" and NODATA["dynamicworld"] == CLASS_NODATA


def test_the_plan_warns_of_pairs_in_years_without_an_embedding(ee_server, tmp_path):
    _with_embedding_years(ee_server, range(2017, 2021))
    r = _invoke(["plan", *ARGS, "--embedding", "--out", str(tmp_path / "p"), "--ee-api-url", ee_server.url])
    assert r.exit_code == 0, r.output
    plan = json.loads((tmp_path / "p" / "plan.json").read_text())
    n = plan["patches"]["paired"]
    assert plan["embedding"] == {"years": [2017, 2018, 2019, 2020], "pairs_without": n, "years_without": {"2021": n}}
    assert f"warning: {n} pair(s) in years without an annual embedding here (2021; it has 2017, 2018" in r.output
