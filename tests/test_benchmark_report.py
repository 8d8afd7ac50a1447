"""evaluate/runs.py, summary.py and benchmark_report.py on synthetic run records (no training)."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from senclr import storage
from senclr.errors import InputError
from senclr.evaluate import runs
from senclr.evaluate.benchmark_report import BOLIVIA, write_benchmark_report
from senclr.evaluate.summary import fmt_mean_std, summarise

ENCODERS = {  # key: (label, kind, base score)
    "multimodal": ("multimodal S1/S2 (senclr)", "pretrained", 0.6),
    "simclr": ("SimCLR S1 (augmentations)", "pretrained", 0.5),
    "random": ("random init (frozen)", "random", 0.2),
    "scratch": ("supervised from scratch", "scratch", 0.4),
}
FRACTIONS = (0.01, 0.1, 1)
SEEDS = (0, 1, 2)
BEN_CLASSES = [f"class {i}" for i in range(19)]


def score(encoder: str, fraction: float, seed: int, mode: str) -> float:
    """Base + 0.1 per fraction step + 0.02 for finetune + 0.01 per seed: hand-checkable means and stds."""
    return ENCODERS[encoder][2] + 0.1 * FRACTIONS.index(fraction) + 0.02 * (mode == "finetune") + 0.01 * seed


def flood_record(encoder: str, mode: str, fraction: float, seed: int) -> dict:
    label, kind, _ = ENCODERS[encoder]
    s = score(encoder, fraction, seed, mode)

    def split(items: int, d: float) -> dict:
        return {"items": items, "labelled_pixels": 1000, "confusion_matrix": [[1, 0], [0, 1]], "iou": [0.9, s - d],
                "miou": (0.9 + s - d) / 2, "accuracy": 0.95, "water_iou": s - d}

    return {"schema": 1, "benchmark": "sen1floods11", "task": "segmentation", "encoder": encoder, "label": label,
            "kind": kind, "model_dir": None if kind != "pretrained" else f"runs/{encoder}", "input": "s1",
            "mode": mode, "fraction": fraction, "seed": seed, "train_items": max(1, round(252 * fraction)),
            "budget": {"steps": 400, "batch_size": 8, "learning_rate": 0.0005}, "class_names": ["not water", "water"],
            "splits": {"test": split(90, 0.0), "bolivia": split(15, 0.1)},
            "seconds": {"features": 1.0, "train": 2.0, "score": 0.5}}


def ben_record(encoder: str, mode: str, fraction: float, seed: int) -> dict:
    label, kind, _ = ENCODERS[encoder]
    s = score(encoder, fraction, seed, mode)
    ap = [min(1.0, s + 0.01 * c) for c in range(19)]
    return {"schema": 1, "benchmark": "bigearthnet", "task": "multilabel", "encoder": encoder, "label": label,
            "kind": kind, "model_dir": None, "input": "s1s2", "mode": mode, "fraction": fraction, "seed": seed,
            "train_items": max(1, round(5000 * fraction)), "budget": {"steps": 1000, "batch_size": 64},
            "class_names": BEN_CLASSES,
            "splits": {"test": {"items": 1000, "micro_map": s, "macro_map": s - 0.05, "micro_f1": s - 0.1,
                                "macro_f1": s - 0.15, "per_class_ap": ap, "per_class_f1": ap, "positives": [10] * 19}}}


def all_records(skip: tuple[str, ...] = ()) -> list[dict]:
    plans = ((flood_record, ("frozen", "finetune")), (ben_record, ("linear", "finetune")))
    return [make(e, m, f, s) for make, modes in plans
            for e in ENCODERS if e not in skip for m in modes for f in FRACTIONS for s in SEEDS]


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_examples(out: str) -> None:
    """Two 8x8 chips with S1, S2, truth and a prediction per encoder (frozen, 100 %, seed 0)."""
    rng = np.random.default_rng(0)
    s1 = rng.normal(-15, 3, (2, 8, 8)).astype(np.float32)
    s1[0, 0, :] = np.nan
    truth = (rng.random((2, 8, 8)) > 0.6).astype(np.int16)
    truth[:, :2, :2] = -1
    storage.write_bytes(runs.examples_path(out, "sen1floods11"),
                        _npz(s1=s1, s2_rgb=rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8), truth=truth,
                             stems=np.array(["Ghana_1", "Bolivia_2"])))
    for e in ENCODERS:
        path = runs.record_path(out, "sen1floods11", e, "frozen", 1, 0)
        storage.write_bytes(runs.pred_path(path), _npz(pred=(rng.random((2, 8, 8)) > 0.5).astype(np.int16)))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bench"))
    for r in all_records():
        runs.write_record(out, r)
    write_examples(out)
    records = runs.collect(out)
    return out, records, write_benchmark_report(out, records)


def _group(summary: dict, **key) -> dict:
    (g,) = [g for g in summary["groups"] if all(g[k] == v for k, v in key.items())]
    return g


# ---------------------------------------------------------------- runs.py


def test_paths_and_headline_metrics(tmp_path):
    assert runs.record_path("gs://b/o", "sen1floods11", "mm", "frozen", 0.01, 2) == \
        "gs://b/o/runs/sen1floods11/mm/frozen/frac0.01_seed2.json"
    path = runs.record_path(str(tmp_path), "bigearthnet", "mm", "linear", 1.0, 0)
    assert path.endswith("runs/bigearthnet/mm/linear/frac1_seed0.json")
    assert runs.pred_path(path).endswith("frac1_seed0.pred.npz")
    assert [k for k, _ in runs.headline_metrics("sen1floods11", "segmentation")] == ["water_iou", "miou", "accuracy"]
    assert [k for k, _ in runs.headline_metrics("dataset", "segmentation")] == ["miou", "accuracy"]
    assert [k for k, _ in runs.headline_metrics("bigearthnet", "multilabel")] == \
        ["micro_map", "macro_map", "micro_f1", "macro_f1"]


def test_write_record_validates_and_writes_nan_as_null(tmp_path):
    out = str(tmp_path)
    bad = flood_record("multimodal", "frozen", 0.1, 0)
    del bad["budget"], bad["splits"]
    with pytest.raises(ValueError, match="budget, splits"):
        runs.write_record(out, bad)
    assert not runs.has_record(out, "sen1floods11", "multimodal", "frozen", 0.1, 0)
    r = flood_record("multimodal", "frozen", 0.1, 0)
    r["splits"]["test"]["water_iou"] = np.float32("nan")
    r["splits"]["test"]["iou"] = np.array([0.5, np.nan])
    path = runs.write_record(out, r)
    assert runs.has_record(out, "sen1floods11", "multimodal", "frozen", 0.1, 0)
    back = runs.read_record(path)
    assert back["splits"]["test"]["water_iou"] is None and back["splits"]["test"]["iou"] == [0.5, None]
    assert "NaN" not in storage.read_text(path)


def test_collect_finds_every_record_and_ignores_npz(full):
    out, records, _ = full
    assert len(records) == 2 * len(ENCODERS) * 2 * len(FRACTIONS) * len(SEEDS)
    assert storage.exists(runs.examples_path(out, "sen1floods11"))
    assert {r["benchmark"] for r in records} == {"sen1floods11", "bigearthnet"}


def test_corrupt_record_is_an_input_error(tmp_path):
    out = str(tmp_path)
    runs.write_record(out, flood_record("multimodal", "frozen", 0.1, 0))
    bad = runs.record_path(out, "sen1floods11", "multimodal", "frozen", 1, 0)
    storage.write_text(bad, '{"schema": 1, "benchm')
    with pytest.raises(InputError, match=r"frac1_seed0\.json.*delete it"):
        runs.collect(out)


# ---------------------------------------------------------------- summary.py


def test_means_and_stds_are_the_hand_computed_ones(full):
    _, records, _ = full
    s = summarise(records)
    g = _group(s, benchmark="sen1floods11", split="test", mode="frozen", encoder="multimodal", fraction=0.1)
    water = [0.6 + 0.1 + 0.01 * seed for seed in SEEDS]
    assert g["metrics"]["water_iou"]["mean"] == pytest.approx(np.mean(water))
    assert g["metrics"]["water_iou"]["std"] == pytest.approx(0.01)  # sample std of x, x+.01, x+.02
    assert g["metrics"]["water_iou"]["values"] == pytest.approx(water)
    assert (g["n_seeds"], g["seeds"], g["items"], g["train_items"]) == (3, [0, 1, 2], [90] * 3, [25] * 3)
    assert g["per_class"]["metric"] == "iou"
    assert g["per_class"]["mean"] == pytest.approx([0.9, np.mean(water)])
    b = _group(s, benchmark="sen1floods11", split="bolivia", mode="finetune", encoder="random", fraction=1)
    assert b["metrics"]["water_iou"]["mean"] == pytest.approx(0.2 + 0.2 + 0.02 + 0.01 - 0.1)
    assert b["items"] == [15] * 3
    m = _group(s, benchmark="bigearthnet", split="test", mode="linear", encoder="simclr", fraction=0.01)
    assert m["metrics"]["macro_f1"]["mean"] == pytest.approx(0.5 + 0.01 - 0.15)
    assert m["per_class"]["metric"] == "per_class_ap" and len(m["per_class"]["mean"]) == 19
    assert s["warnings"] == []
    json.dumps(s, allow_nan=False)  # JSON-able as it is


def test_one_seed_has_no_std_and_null_metrics_are_left_out():
    r0, r1 = flood_record("multimodal", "frozen", 0.1, 0), flood_record("multimodal", "frozen", 0.1, 1)
    r1["splits"]["test"]["water_iou"] = None
    g = _group(summarise([r0, r1]), split="test")
    assert g["metrics"]["water_iou"]["n"] == 1 and g["metrics"]["water_iou"]["std"] is None
    assert g["metrics"]["miou"]["n"] == 2
    assert fmt_mean_std(0.6123, 0.0131, 3) == "0.612 ± 0.013 (n=3)"
    assert fmt_mean_std(0.6123, None, 1) == "0.612 (n=1)"
    assert fmt_mean_std(None, None, 0) == "n/a"


def test_inconsistent_budget_and_seeds_are_warned_in_the_report(tmp_path):
    records = [r for r in all_records() if r["benchmark"] == "sen1floods11"]
    changed = next(r for r in records if (r["encoder"], r["mode"], r["fraction"]) == ("simclr", "frozen", 0.1))
    changed["budget"] = {**changed["budget"], "steps": 200}
    records = [r for r in records if (r["encoder"], r["mode"], r["seed"]) != ("random", "finetune", 2)]
    warnings = summarise(records)["warnings"]
    assert any("sen1floods11, frozen, 10% labels: budgets differ" in w and "steps" in w for w in warnings)
    assert any("finetune, 1% labels: seeds differ" in w and "random: 0, 1" in w for w in warnings)
    report = storage.read_text(write_benchmark_report(str(tmp_path), records)["report.md"])
    assert "## Read first" in report and "budgets differ" in report


# ---------------------------------------------------------------- benchmark_report.py


def test_report_tables_show_mean_std_n_and_context(full):
    _, _, paths = full
    md = storage.read_text(paths["report.md"])
    assert "±" in md and "(n=3)" in md and "nan" not in md.lower()
    assert "not run" not in md and "## Read first" not in md
    assert "| encoder | 1% | 10% | 100% |" in md
    assert md.index("### test split") < md.index("### bolivia split") and BOLIVIA in md
    assert "Scored on 90 chips of the test split" in md and "Scored on 15 chips of the bolivia split" in md
    assert "1%: 3, 10%: 25, 100%: 252" in md and "seeds: 0, 1, 2" in md
    assert "Scored on 1000 patches of the test split" in md
    # pre-trained first, SimCLR-like next, baselines last, in every table
    table = md[md.index("**water IoU**, test split, frozen encoder"):]
    order = [table.index(f"| {ENCODERS[e][0]} |") for e in ("multimodal", "simclr", "random", "scratch")]
    assert order == sorted(order)
    row = next(line for line in table.splitlines() if line.startswith(f"| {ENCODERS['multimodal'][0]} |"))
    assert row.endswith("| 0.810 ± 0.010 (n=3) |")  # water IoU at 100 %: mean of .80, .81, .82
    for heading in ("water IoU", "mIoU", "OA", "micro mAP", "macro F1", "How measured"):
        assert heading in md
    for name in paths:
        if name.endswith(".png"):
            assert f"]({name})" in md


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_pngs_are_valid_and_sensibly_sized(full):
    _, _, paths = full
    assert {n for n in paths if n.endswith(".png")} == {
        "fraction_sen1floods11_test.png", "fraction_sen1floods11_bolivia.png", "samples_sen1floods11.png",
        "fraction_bigearthnet_test.png", "classes_bigearthnet_test.png"}
    for name, path in paths.items():
        if name.endswith(".png"):
            w, h = _png_size(storage.read_bytes(path))
            assert 300 < w < 4000 and 200 < h < 4000, (name, w, h)


def test_results_json_round_trips_every_record(full):
    out, records, paths = full
    results = json.loads(storage.read_text(paths["results.json"]))
    assert results["runs"] == records == runs.collect(out)
    assert results["senclr_version"] and results["summary"]["warnings"] == []
    assert len(results["summary"]["groups"]) == 4 * 2 * 3 * 2 + 4 * 2 * 3  # flood: 2 splits; bigearthnet: 1


def test_missing_baseline_reads_not_run(tmp_path):
    records = [r for r in all_records(skip=("scratch",)) if r["benchmark"] == "sen1floods11"]
    paths = write_benchmark_report(str(tmp_path), records)
    md = storage.read_text(paths["report.md"])
    assert "| supervised from scratch | not run | not run | not run |" in md
    assert "sen1floods11: baseline 'supervised from scratch' was not run" in md


def test_baseline_run_in_one_mode_only_appears_in_both_tables(tmp_path):
    records = [r for r in all_records() if r["benchmark"] == "sen1floods11"
               and (r["encoder"], r["mode"]) not in (("random", "finetune"), ("scratch", "frozen"))]
    md = storage.read_text(write_benchmark_report(str(tmp_path), records)["report.md"])
    start = md.index("**water IoU**, test split, frozen encoder")
    frozen = md[start:md.index("**water IoU**, test split, fine-tuned encoder")]
    assert "| supervised from scratch [finetune] | 0.4" in frozen and "not run" not in frozen


def test_no_records_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no run records"):
        write_benchmark_report(str(tmp_path), [])
