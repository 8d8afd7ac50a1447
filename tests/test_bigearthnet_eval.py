"""The BigEarthNet multi-label protocol on a tiny reBEN tree (12 train, 4 val, 4 test patches): every
encoder x mode x fraction x seed recorded, linear-probe features computed once per encoder, reruns
train nothing, and bad input refused before anything is written."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import pytest
from click.testing import CliRunner

from senclr.errors import InputError
from senclr.evaluate import bigearthnet_eval as bee
from senclr.evaluate import bigearthnet_inputs as bei
from senclr.evaluate.bigearthnet_labels import CLASS_NAMES_19
from senclr.evaluate.protocol import Budget
from tests.test_bigearthnet import native, write_v2
from tests.test_flood import STATS, model_dir

SPLITS = ["train"] * 12 + ["validation"] * 4 + ["test"] * 4


def _rows() -> list[tuple]:
    rows = []
    for i, split in enumerate(SPLITS):
        pid = f"S2A_MSIL2A_20170613T101031_N9999_R022_T32TMT_{i}_{i + 1}"
        s1 = f"S1A_IW_GRDH_1SDV_20170613T165043_32TMT_{i}_{i + 1}"
        labels = [CLASS_NAMES_19[i % 3], CLASS_NAMES_19[9 + i % 2]]  # classes 0-2 and 9-10, each in every split
        rows.append((pid, s1, split, labels, False))
    return rows


@pytest.fixture(scope="module")
def reben(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("reben")
    write_v2(root, rows=_rows())
    return str(root)


def invoke(args: list[str]) -> tuple[int, str]:
    """(exit code, output) of `senclr evaluate bigearthnet ARGS`."""
    from senclr.cli import cli

    res = CliRunner().invoke(cli, ["evaluate", "bigearthnet", *args])
    return res.exit_code, res.output


def test_bands_are_read_in_the_encoders_order_and_missing_statistics_come_from_train(reben):
    ds = bee.open_dataset("v2", reben, "s1s2")
    patches = bee.list_splits(ds, "s1s2", limit=3)
    assert [len(patches[s]) for s in ("train", "val", "test")] == [3, 3, 3]
    x, y = bei.read_bands(ds, patches["train"][1], ["B8", "VH", "B2"])
    np.testing.assert_array_equal(x[..., 0], native(1, "B8"))
    np.testing.assert_array_equal(x[..., 1], native(1, "VH"))
    assert y.shape == (19,) and y[1] == 1 and y[10] == 1
    stats = bei.train_statistics(ds, patches["train"], ["VV", "B8"])
    assert stats == bei.train_statistics(ds, patches["train"], ["VV", "B8"])  # seeded
    assert stats["VV"]["p1"] < stats["VV"]["mean"] < stats["VV"]["p99"] and stats["B8"]["std"] > 0
    with pytest.raises(InputError, match="--s1-root and --splits-dir are for v1"):
        bee.open_dataset("v2", reben, "s2", root_s1=reben)
    with pytest.raises(InputError, match="needs --splits-dir"):
        bee.open_dataset("v1", reben, "s2")
    with pytest.raises(InputError, match="give --s1-root"):
        bee.open_dataset("v1", reben, "s1", splits_dir=reben)


def _records(out) -> list[dict]:
    return [json.load(open(p)) for p in sorted((out / "runs").rglob("*.json"))]


@pytest.mark.slow
def test_full_bigearthnet_evaluation(reben, tmp_path, monkeypatch):
    mm = model_dir(tmp_path / "mm", stats={k: v for k, v in STATS.items() if k != "B8"})  # B8: from train
    out = tmp_path / "eval"
    computed = []
    real = bee.features
    monkeypatch.setattr(bee, "features", lambda m, im, folder, bs: computed.append(folder) or real(m, im, folder, bs))
    made, mkdtemp = [], tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(mkdtemp(*a, **k)) or made[-1])
    args = ["--data", reben, "--model", f"mm={mm}", "--out", str(out), "--fractions", "0.5,1", "--seeds", "2",
            "--epochs", "1", "--batch-size", "4"]
    code, output = invoke(args)
    assert code == 0, output
    records = _records(out)
    got = sorted((r["encoder"], r["mode"], r["fraction"], r["seed"]) for r in records)
    want = sorted((e, m, f, s) for e, m in (("mm", "linear"), ("mm", "finetune"), ("random", "linear"),
                                            ("scratch", "finetune")) for f in (0.5, 1.0) for s in (0, 1))
    assert got == want
    for r in records:
        assert (r["task"], r["benchmark"], r["input"], r["version"], r["limit"]) == ("multilabel", "bigearthnet", "s2",
                                                                                     "v2", None)
        assert r["bands"] == ["B2", "B3", "B4", "B8"] and r["class_names"] == list(CLASS_NAMES_19)
        assert r["train_items"] == 12 * r["fraction"] and r["steps"] == 3  # 1 epoch of the whole split, batch 4
        assert set(r["splits"]) == {"val", "test"}
        for split in r["splits"].values():
            assert split["items"] == split["samples"] == 4 and split["positives"][0] > 0
            for k in ("micro_map", "macro_map", "micro_f1", "macro_f1"):
                assert 0 <= split[k] <= 1, (k, split[k])
            assert len(split["per_class_ap"]) == 19 and split["per_class_ap"][5] is None  # class 5 never present
    # Frozen features: once per split for the model, once per split and seed for the random baseline.
    assert len(computed) == 3 * (1 + 2)
    assert (out / "report.md").exists() and "BigEarthNet" in (out / "report.md").read_text()
    cache = [d for d in made if "senclr-bigearthnet" in d]
    assert len(cache) == 1 and not os.path.exists(cache[0])  # the temporary cache is removed

    # A rerun finds every run recorded and trains nothing ...
    monkeypatch.setattr(bee, "fit", lambda *a: pytest.fail("a recorded run was trained again"))
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")}
    again = bee.evaluate_bigearthnet(reben, {"mm": mm}, str(out), fractions=(0.5, 1), seeds=2,
                                     budget=Budget(epochs=1, batch_size=4), progress=False)
    assert sorted(again, key=str) == sorted(records, key=str)
    assert before == {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*.json")}
    # ... and one with another budget or limit is refused instead of mixed into the tables.
    for extra, what in ((["--epochs", "2"], "another budget"), (["--limit", "2"], "another limit")):
        code, output = invoke([*args, *extra])
        assert code == 2 and what in output and "frac" in output, output


def test_bad_input_is_refused_before_anything_is_written(reben, tmp_path):
    out = tmp_path / "out"
    mm = model_dir(tmp_path / "mm")
    simclr = model_dir(tmp_path / "simclr", method="simclr", encoders=("s1",))
    odd = model_dir(tmp_path / "odd", s2_bands=("B2", "B10"))
    cases = [
        (["--model", f"x={mm}", "--fractions", "0,1"], "must lie in (0, 1]"),
        (["--model", f"x={mm}", "--seeds", "0"], "--seeds must be >= 1"),
        (["--model", f"x={mm}", "--modes", "frozen"], "--modes"),
        (["--model", f"x={mm}", "--limit", "0"], "--limit must be >= 1"),
        (["--model", f"x={odd}"], "x reads bands ['B10'] that BigEarthNet patches lack"),
        (["--model", f"x={simclr}"], "none of which reads --input s2"),
        (["--model", f"x={mm}", "--s1-root", reben], "--s1-root and --splits-dir are for v1"),
        (["--model", str(tmp_path / "nothing")], "does not exist"),
    ]
    for args, message in cases:
        code, output = invoke(["--data", reben, "--out", str(out), *args])
        assert code == 2 and message in output, (args, output)
        assert not out.exists(), args
    code, output = invoke(["--data", str(tmp_path / "absent"), "--out", str(out), "--model", f"x={mm}"])
    assert code == 2 and "absent is not a folder" in output and not out.exists(), output
