"""Land-cover segmentation of our own export: the flood protocol on a senclr dataset's label band."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from senclr import manifest as manifest_lib
from senclr.bands import LANDCOVER_CLASSES
from tests.helpers import write_tiny_dataset
from tests.test_flood import model_dir


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lc")
    write_tiny_dataset(str(folder / "data"), n=16, size=16, seed=3)
    return folder


@pytest.mark.slow
def test_landcover_segmentation_of_a_senclr_dataset(labelled, tmp_path):
    from senclr.cli import cli

    mm = model_dir(tmp_path / "mm", stats={})  # no statistics: the dataset's own are used
    out = tmp_path / "eval"
    res = CliRunner().invoke(cli, ["evaluate", "dataset", "--data", str(labelled / "data"), "--label", "landcover",
                                   "--model", f"mm={mm}", "--out", str(out), "--fractions", "1", "--seeds", "1",
                                   "--epochs", "1", "--batch-size", "4", "--decoder-width", "4", "--modes", "frozen"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(p.read_text()) for p in (out / "runs" / "dataset").rglob("*.json")]
    assert {(r["encoder"], r["mode"]) for r in recs} == {("mm", "frozen"), ("random", "frozen"), ("scratch", "finetune")}
    for r in recs:
        assert r["class_names"] == list(LANDCOVER_CLASSES) and set(r["splits"]) == {"val", "test"}
        test = r["splits"]["test"]
        cm = np.array(test["confusion_matrix"])
        assert cm.shape == (6, 6) and cm.sum() == test["labelled_pixels"] == 4 * 16 * 16 and test["items"] == 4
        assert len(test["iou"]) == 6 and "water_iou" not in test
    assert (out / "classes_dataset_test.png").read_bytes().startswith(b"\x89PNG")  # per-class IoU bars for land cover
    assert "classes_dataset_test.png" in (out / "report.md").read_text()


def test_a_dataset_without_the_label_or_bands_is_refused(labelled, tmp_path):
    from senclr.cli import cli

    data = labelled / "data"
    m = manifest_lib.read(str(data), kind="dataset")
    nolabel = tmp_path / "nolabel"
    nolabel.mkdir()
    for f in data.iterdir():
        (nolabel / f.name).write_bytes(f.read_bytes())
    manifest_lib.write(str(nolabel), {**m, "labels": ["water"]})
    mm = model_dir(tmp_path / "mm")
    odd = model_dir(tmp_path / "odd", s2_bands=("B2", "B13"))
    out = tmp_path / "out"
    for args, message in [([str(nolabel), f"mm={mm}"], "has no 'landcover' label"),
                          ([str(data), f"mm={odd}"], "reads bands ['B13']")]:
        res = CliRunner().invoke(cli, ["evaluate", "dataset", "--data", args[0], "--model", args[1], "--input", "s1s2",
                                       "--out", str(out)])
        assert res.exit_code == 2 and message in res.output, res.output
        assert not out.exists()
