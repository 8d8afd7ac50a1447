"""The Sen1Floods11 protocol: seeded label fractions, cached frozen features, the full run on the
real chip (skipped when ../shared/data is absent), and bad input refused before any work."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from senclr.errors import InputError
from senclr.evaluate import protocol
from senclr.evaluate.protocol import Budget, subset
from tests.test_sen1floods11 import local_copy  # noqa: F401  (fixture)

STATS = {"VV": {"p1": -30.0, "p99": 5.0, "mean": -12.0, "std": 5.0},
         "VH": {"p1": -35.0, "p99": -5.0, "mean": -19.0, "std": 5.0},
         **{b: {"p1": 0.0, "p99": 4000.0, "mean": 1500.0, "std": 800.0} for b in ("B2", "B3", "B4", "B8")}}
TINY = Budget(epochs=2, batch_size=1, learning_rate=1e-3, decoder_width=4)


def model_dir(path, method="multimodal", encoders=("s1", "s2"), s2_bands=("B2", "B3", "B4", "B8"), stats=STATS):
    """A model folder in `senclr train`'s layout with small random encoders (no training needed)."""
    from senclr.models import saved
    from senclr.models.backbones import build_backbone

    bands = {"s1": ["VV", "VH"], "s2": list(s2_bands)}
    bands["s1s2"] = bands["s1"] + bands["s2"]
    encs = {k: build_backbone("small", len(bands[k]), 4, name=f"{k}_encoder") for k in encoders}
    saved.save(str(path), encs, {"method": method, "backbone": "small", "s1_bands": bands["s1"],
                                 "s2_bands": bands["s2"], "width": 4, "feature_channels": 8, "downsample": 2,
                                 "proj_dim": 8, "statistics": stats, "modality": encoders[0]})
    return str(path)


def test_label_fractions_are_seeded_subsets_of_at_least_one_chip():
    a = subset(200, 0.1, seed=0)
    assert len(a) == 20 and len(set(a)) == 20 and list(a) == sorted(a)
    assert np.array_equal(a, subset(200, 0.1, seed=0))
    assert not np.array_equal(a, subset(200, 0.1, seed=1))
    assert len(subset(200, 0.001, 0)) == 1 and np.array_equal(subset(200, 1.0, 3), np.arange(200))
    for bad in (0, -0.1, 1.5):
        with pytest.raises(InputError, match=r"outside \(0, 1\]"):
            subset(10, bad, 0)


@pytest.mark.slow
def test_full_flood_evaluation_on_the_real_chip(local_copy, tmp_path, monkeypatch):  # noqa: F811
    from senclr.cli import cli

    mm = model_dir(tmp_path / "mm")
    out = tmp_path / "eval"
    computed = []
    real = protocol._features
    monkeypatch.setattr(protocol, "_features", lambda m, im, folder, bs: computed.append(folder) or real(m, im, folder, bs))
    args = ["evaluate", "flood", "--data", str(local_copy), "--model", f"mm={mm}", "--out", str(out),
            "--fractions", "0.5,1", "--seeds", "2", "--epochs", "2", "--batch-size", "1", "--decoder-width", "4",
            "--cache-dir", str(tmp_path / "cache")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    records = [json.load(open(os.path.join(d, f))) for d, _, fs in os.walk(out / "runs") for f in fs if f.endswith(".json")]
    got = sorted((r["encoder"], r["mode"], r["fraction"], r["seed"]) for r in records)
    want = sorted([(e, m, f, s) for e, m in (("mm", "frozen"), ("mm", "finetune"), ("random", "frozen"),
                                             ("scratch", "finetune")) for f in (0.5, 1.0) for s in (0, 1)])
    assert got == want
    for r in records:
        assert r["train_items"] == 1 and r["input"] == "s1" and r["bands"] == ["VV", "VH"]
        assert set(r["splits"]) == {"valid", "test", "bolivia"}
        for split in r["splits"].values():
            cm = np.array(split["confusion_matrix"])
            assert split["items"] == 1 and cm.sum() == split["labelled_pixels"] == 512 * 512 - 99
            tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
            assert split["water_iou"] == pytest.approx(tp / (tp + fp + fn))
            assert split["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    # The frozen features: once per split for the model, once per split and seed for the random baseline.
    assert len(computed) == 4 * (1 + 2)
    assert (out / "report.md").exists() and (out / "results.json").exists()
    assert (out / "runs" / "sen1floods11" / "examples.npz").exists()
    assert "bolivia" in (out / "report.md").read_text().lower()

    # A rerun finds every run recorded and trains nothing.
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")}
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert before == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")}
    # ... and a rerun with another budget is refused instead of mixed into the tables.
    res = CliRunner().invoke(cli, [*args[:-4], "--epochs", "3"])
    assert res.exit_code == 2 and "another budget" in res.output


@pytest.mark.slow
def test_s1s2_fuses_a_multimodal_models_two_encoders(local_copy, tmp_path):  # noqa: F811
    from senclr.evaluate.flood import evaluate_flood

    mm = model_dir(tmp_path / "mm")
    recs = evaluate_flood(str(local_copy), {"mm": mm}, str(tmp_path / "o"), inputs="s1s2", modes=("frozen",),
                          fractions=(1.0,), seeds=1, budget=TINY, progress=False)
    assert {(r["encoder"], r["mode"]) for r in recs} == {("mm", "frozen"), ("random", "frozen"), ("scratch", "finetune")}
    assert all(r["bands"] == ["VV", "VH", "B2", "B3", "B4", "B8"] for r in recs)


def test_bad_input_is_refused_before_anything_is_written(local_copy, tmp_path):  # noqa: F811
    from senclr.cli import cli

    run = lambda *a: CliRunner().invoke(cli, ["evaluate", "flood", "--data", str(local_copy), "--out", str(out), *a])  # noqa: E731
    out = tmp_path / "out"
    mm = model_dir(tmp_path / "mm")
    simclr = model_dir(tmp_path / "simclr", method="simclr", encoders=("s1",))
    odd = model_dir(tmp_path / "odd", s2_bands=("B2", "B13"))
    cases = [
        (["--model", f"x={mm}", "--fractions", "0,1"], "must lie in (0, 1]"),
        (["--model", f"x={mm}", "--fractions", "1.5"], "must lie in (0, 1]"),
        (["--model", f"x={mm}", "--seeds", "0"], "--seeds must be >= 1"),
        (["--model", f"x={mm}", "--modes", "linear"], "--modes"),
        (["--model", f"x={simclr}", "--input", "s2"], "none of which reads --input s2"),
        (["--model", f"x={odd}", "--input", "s2"], "do not have"),
        (["--model", f"random={mm}"], "taken by the baselines"),
        (["--model", str(tmp_path / "nothing")], "does not exist"),
        (["--model", f"x={mm}", "--cache-dir", "gs://bucket/cache"], "must be a local folder"),
    ]
    for args, message in cases:
        res = run(*args)
        assert res.exit_code == 2 and message in res.output, (args, res.output)
        assert not out.exists(), args
    split = local_copy / "v1.1/splits/flood_handlabeled/flood_test_data.csv"
    split.write_text(split.read_text() + "Ghana_1_S1Hand.tif,Ghana_1_LabelHand.tif\n")
    res = run("--model", f"mm={mm}")
    assert res.exit_code == 2 and "Ghana_1_S1Hand.tif" in res.output and not out.exists()


def test_a_chip_off_its_grid_stops_the_run_before_anything_is_written(local_copy, tmp_path):  # noqa: F811
    import shutil

    import rasterio
    from rasterio.transform import Affine

    from senclr.cli import cli
    from senclr.evaluate import sen1floods11 as s1f

    stem = "Spain_7370579"
    for folder in s1f.FOLDERS.values():  # a second chip, in the valid split only, its S2 3 px east
        shutil.copy(local_copy / s1f.HAND / folder / f"{stem}_{folder}.tif", local_copy / s1f.HAND / folder / f"Spain_2_{folder}.tif")
    s2 = local_copy / s1f.HAND / "S2Hand" / "Spain_2_S2Hand.tif"
    with rasterio.open(s2) as r:
        profile, data = r.profile, r.read()
    profile["transform"] = profile["transform"] @ Affine.translation(3, 0)
    with rasterio.open(s2, "w", **profile) as w:
        w.write(data)
    (local_copy / s1f.SPLITS_DIR / "flood_valid_data.csv").write_text("Spain_2_S1Hand.tif,Spain_2_LabelHand.tif\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["evaluate", "flood", "--data", str(local_copy), "--model", f"mm={model_dir(tmp_path / 'mm')}",
                                   "--out", str(out)])
    assert res.exit_code == 2 and "Spain_2" in res.output and "not on one grid" in res.output, res.output
    assert not out.exists()
