"""evaluate/: metrics against hand-computed matrices, the masked loss, compare, report and CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from senclr import manifest as manifest_lib
from senclr.errors import InputError
from senclr.evaluate import metrics
from senclr.evaluate.segmentation import held_out_split
from tests import helpers
from tests.helpers import write_tiny_dataset

# ---------------------------------------------------------------- metrics (numpy only)


def test_confusion_matrix_by_hand_and_ignore():
    y_true = np.array([[0, 0, 1], [1, -1, 1]])
    y_pred = np.array([[0, 1, 1], [0, 1, 1]])  # the -1 pixel's prediction must not count
    cm = metrics.confusion_matrix(y_true, y_pred, 2)
    assert cm.tolist() == [[1, 1], [1, 2]]  # rows truth, columns prediction
    np.testing.assert_allclose(metrics.iou_per_class(cm), [1 / 3, 2 / 4])
    assert metrics.miou(cm) == pytest.approx((1 / 3 + 1 / 2) / 2)
    np.testing.assert_allclose(metrics.precision_per_class(cm), [1 / 2, 2 / 3])
    np.testing.assert_allclose(metrics.recall_per_class(cm), [1 / 2, 2 / 3])
    assert metrics.pixel_accuracy(cm) == pytest.approx(3 / 5)


def test_absent_class_is_nan_and_left_out_of_miou():
    cm = metrics.confusion_matrix([0, 0, -1], [0, 0, 1], 2)
    assert cm.tolist() == [[2, 0], [0, 0]]
    iou = metrics.iou_per_class(cm)
    assert iou[0] == 1.0 and np.isnan(iou[1])
    assert metrics.miou(cm) == 1.0
    assert np.isnan(metrics.miou(np.zeros((2, 2), int)))


def test_bad_class_ids_and_shapes_raise():
    with pytest.raises(ValueError, match="class ids"):
        metrics.confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="pixels"):
        metrics.confusion_matrix([0, 1], [0], 2)


def test_accumulator_is_global_not_mean_of_patches():
    # Patch A: big water body, found. Patch B: one water pixel, missed (plus a false alarm).
    a_true, a_pred = np.ones((4, 4), int), np.ones((4, 4), int)
    b_true = np.zeros((4, 4), int)
    b_true[0, 0] = 1
    b_pred = np.zeros((4, 4), int)
    b_pred[3, 3] = 1
    b_true[1, 1] = -1
    acc = metrics.ConfusionMatrix(2)
    acc.update(a_true, a_pred).update(b_true, b_pred)
    cm = acc.result()
    assert cm.tolist() == [[13, 1], [1, 16]]
    assert np.array_equal(cm, metrics.confusion_matrix(np.stack([a_true, b_true]), np.stack([a_pred, b_pred]), 2))
    global_water = metrics.iou_per_class(cm)[1]
    assert global_water == pytest.approx(16 / 18)
    per_patch = [metrics.iou_per_class(metrics.confusion_matrix(t, p, 2))[1]
                 for t, p in ((a_true, a_pred), (b_true, b_pred))]
    assert per_patch == [1.0, 0.0]
    assert np.mean(per_patch) == 0.5 != pytest.approx(global_water)


def test_test_split_falls_back_to_val_and_says_so():
    shards = lambda **n: {"shards": [{"split": s, "records": k} for s, k in n.items()]}  # noqa: E731
    assert held_out_split(shards(train=4, val=2, test=2)) == ("test", None)
    split, note = held_out_split(shards(train=4, val=2, test=0))
    assert split == "val" and "no test records" in note
    with pytest.raises(InputError, match="no test or val"):
        held_out_split(shards(train=4))


# ---------------------------------------------------------------- masked loss (Keras, quick)


def test_masked_loss_ignores_no_data_pixels():
    from senclr.evaluate.segmentation import masked_sparse_ce

    rng = np.random.default_rng(0)
    y = np.array([[[1, 0], [-1, 1]], [[-1, -1], [0, 0]]], np.int32)
    logits = rng.normal(size=(2, 2, 2, 2)).astype(np.float32)
    other = logits.copy()
    other[y == -1] = rng.normal(size=(int((y == -1).sum()), 2)) * 50  # only the ignored pixels change
    loss = float(masked_sparse_ce(y, logits))
    assert float(masked_sparse_ce(y, other)) == pytest.approx(loss, rel=1e-6)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = y >= 0
    expected = -np.mean(np.take_along_axis(logp, np.maximum(y, 0)[..., None], -1)[..., 0][valid])
    assert loss == pytest.approx(expected, rel=1e-5)
    assert float(masked_sparse_ce(-np.ones_like(y), logits)) == 0.0  # all ignored: no NaN


def test_head_output_matches_input_size_even_when_odd():
    from senclr.evaluate.segmentation import build_segmenter
    from senclr.models.encoders import build_encoder

    model = build_segmenter(build_encoder(2, width=2))
    assert not model.get_layer(index=1).trainable  # the encoder is frozen
    assert model(np.zeros((1, 15, 18, 2), np.float32)).shape == (1, 15, 18, 2)
    assert [w.name for w in model.trainable_weights] == ["kernel", "bias"]  # only the 1x1 conv learns


# ---------------------------------------------------------------- end to end (TensorFlow)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny labelled dataset and a model pre-trained on it for one epoch by senclr.models."""
    from senclr.models.train import train

    root = tmp_path_factory.mktemp("evaluate")
    data, model = str(root / "data"), str(root / "model")
    write_tiny_dataset(data, n=16, size=16, seed=1)
    train(data, model, epochs=1, batch_size=4, width=4, proj_dim=8, progress=False)
    return data, model


@pytest.fixture(scope="module")
def simclr_model(tiny):
    """A SimCLR S1 model of the same backbone, the baseline the demo compares with."""
    from senclr.models.train import train

    path = os.path.join(os.path.dirname(tiny[1]), "simclr")
    train(tiny[0], path, method="simclr", modality="s1", epochs=1, batch_size=4, width=4, proj_dim=8, progress=False)
    return path


def _variant(tmp_path, data: str, edit) -> str:
    """A copy of ``data`` whose manifest ``edit`` changed (records shared via the original shards)."""
    m = manifest_lib.read(data, kind="dataset")
    edit(m)
    folder = tmp_path / "variant"
    folder.mkdir(parents=True)
    for s in m["shards"]:
        os.symlink(os.path.join(data, s["path"]), folder / s["path"])
    manifest_lib.write(str(folder), m)
    return str(folder)


@pytest.fixture(scope="module")
def result(tiny, simclr_model):
    from senclr.evaluate.segmentation import compare

    return compare(*tiny, epochs=1, batch_size=4, progress=False, n_examples=2, baselines={"simclr": simclr_model})


@pytest.mark.slow
def test_compare_end_to_end(result, tiny):
    assert result["split"] == "test" and result["split_note"] is None
    assert result["test"] == {"patches": 4, "labelled_pixels": 4 * 16 * 16,
                              "water_fraction": pytest.approx(result["test"]["water_fraction"])}
    assert result["train"]["patches"] == 8
    assert [k for k, _ in result["encoders"]] == ["pretrained", "simclr", "random"]
    for name in ("pretrained", "simclr", "random"):
        r = result[name]
        assert r["patches"] == 4 and r["labelled_pixels"] == 4 * 16 * 16
        assert np.sum(r["confusion_matrix"]) == r["labelled_pixels"]
        for k in ("water_iou", "not_water_iou", "miou", "pixel_accuracy"):
            assert r[k] is None or 0.0 <= r[k] <= 1.0
        assert np.isfinite(r["train_loss"])
    ex = result["examples"]
    assert ex["s1"].shape == ex["water"].shape == ex["pretrained"].shape == ex["random"].shape == (2, 16, 16)
    assert ex["simclr"].shape == (2, 16, 16)
    assert "1x1 conv" in result["head"] and result["epochs"] == 1 and result["s1_bands"] == ["VV", "VH"]


@pytest.mark.slow
def test_report_files(result, tmp_path):
    from senclr.evaluate.report import write_report

    paths = write_report(result, str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["comparison.png", "metrics.json", "report.md"]
    md = open(paths["report.md"]).read()
    assert "| encoder | water IoU | not-water IoU | mIoU | pixel acc |" in md
    assert "| multimodal S1/S2 (senclr), small |" in md and "| random init |" in md and "**Reading:**" in md
    assert "| SimCLR, augmentations, small |" in md and "Against SimCLR, augmentations, small: " in md
    assert result["dataset"] in md and "4 patches" in md
    saved = json.load(open(paths["metrics.json"]))
    assert saved["pretrained"]["water_iou"] == result["pretrained"]["water_iou"] and "examples" not in saved
    assert open(paths["comparison.png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_reading_is_honest_either_way():
    from senclr.evaluate.report import reading

    base = {"split": "test", "test": {"patches": 10}}
    say = lambda p, r: reading({**base, "pretrained": {"water_iou": p}, "random": {"water_iou": r}})  # noqa: E731
    assert say(0.8, 0.6).startswith("Pre-training helps")
    assert say(0.6, 0.8).startswith("Pre-training does not help")
    assert say(0.700, 0.705).startswith("No meaningful difference")
    assert "undefined" in say(None, 0.5)


@pytest.mark.slow
def test_bad_inputs_raise(tiny, tmp_path, monkeypatch):
    from senclr.evaluate.segmentation import compare

    data, model = tiny
    with pytest.raises(InputError, match="no manifest"):
        compare(str(tmp_path / "no-data"), model, progress=False)
    with pytest.raises(InputError, match="model dir .* does not exist"):
        compare(data, str(tmp_path / "nope"), progress=False)
    no_water = _variant(tmp_path / "a", data, lambda m: m.update(labels=["landcover"]))
    with pytest.raises(InputError, match="no 'water' label"):
        compare(no_water, model, progress=False)

    def drop_vh(m):
        m["bands"]["s1"] = ["VV"]
        m["statistics"].pop("VH")

    with pytest.raises(InputError, match=r"lacks the S1 bands \['VH'\]"):
        compare(_variant(tmp_path / "b", data, drop_vh), model, progress=False)
    with pytest.raises(InputError, match="epochs"):
        compare(data, model, epochs=0, progress=False)

    real = helpers.random_pair

    def unlabelled(*args, **kw):
        pair = real(*args, **kw)
        pair.labels["water"][:] = -1
        return pair

    monkeypatch.setattr(helpers, "random_pair", unlabelled)
    write_tiny_dataset(str(tmp_path / "nolabels"), n=16, size=16)
    with pytest.raises(InputError, match="no labelled water pixels"):
        compare(str(tmp_path / "nolabels"), model, progress=False)


@pytest.mark.slow
def test_cli(tiny, simclr_model, tmp_path):
    from senclr.cli import cli

    data, model = tiny
    out = tmp_path / "eval"
    res = CliRunner().invoke(cli, ["evaluate", "probe", "--data", data, "--model-dir", model, "--out", str(out),
                                   "--epochs", "1", "--batch-size", "4", "--baseline", f"simclr={simclr_model}"])
    assert res.exit_code == 0, res.output
    assert "water IoU (mIoU) on the test split" in res.output and str(out / "report.md") in res.output
    assert "SimCLR, augmentations, small" in res.output
    assert (out / "report.md").exists() and (out / "metrics.json").exists()

    bad = tmp_path / "bad"
    res = CliRunner().invoke(cli, ["evaluate", "probe", "--data", data, "--model-dir", str(tmp_path / "none"), "--out", str(bad)])
    assert res.exit_code == 2 and "does not exist" in res.output and not bad.exists()
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    res = CliRunner().invoke(cli, ["evaluate", "probe", "--data", data, "--model-dir", model, "--out", str(a_file)])
    assert res.exit_code == 2 and "existing file" in res.output
    res = CliRunner().invoke(cli, ["evaluate", "probe", "--data", data, "--model-dir", model, "--baseline", "random=x"])
    assert res.exit_code == 2 and "names 'pretrained' and 'random' are taken" in res.output
    res = CliRunner().invoke(cli, ["evaluate", "probe", "--data", data, "--model-dir", model, "--epochs", "0"])
    assert res.exit_code == 2 and not os.path.exists(os.path.join(model, "evaluation"))
