"""BigEarthNet loaders against tiny copies written in the published on-disk layouts: GeoTIFFs on
real UTM grids (10/20/60 m, one origin per patch), v1 label JSONs and split/exclusion CSVs, and a
reBEN metadata.parquet without Reference_Maps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
from rasterio.transform import from_origin

from senclr.errors import InputError
from senclr.evaluate import bigearthnet as ben
from senclr.evaluate import bigearthnet_labels as lab

CRS = "EPSG:32632"
SUFFIX = {"B1": "B01", "B2": "B02", "B3": "B03", "B4": "B04", "B5": "B05", "B6": "B06", "B7": "B07",
          "B8": "B08", "B8A": "B8A", "B9": "B09", "B11": "B11", "B12": "B12"}


def native(seed: int, band: str) -> np.ndarray:
    """The stored array of one band: a distinct value per pixel, band and patch."""
    n = 1200 // ben.S2_RESOLUTION.get(band, 10)
    base = 1000 * (list(SUFFIX).index(band) + 1) if band in SUFFIX else 0
    grid = np.arange(n * n).reshape(n, n)
    if band in ("VV", "VH"):
        return (-(grid % 300) / 10.0 - (5.0 if band == "VH" else 0.0) - seed).astype(np.float32)
    return (base + 20000 * seed + grid % 997).astype(np.uint16)


def write_tif(path, a: np.ndarray, x0: float, y0: float, res: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    nodata = 0 if a.dtype == np.uint16 else None  # as published: S2 0 is no data, S1 has none
    with rasterio.open(path, "w", driver="GTiff", width=a.shape[1], height=a.shape[0], count=1, dtype=a.dtype,
                       crs=CRS, transform=from_origin(x0, y0, res, res), nodata=nodata) as f:
        f.write(a, 1)


def write_s2(folder: str, name: str, seed: int) -> None:
    x0, y0 = 400000 + 1200 * seed, 5300040
    for band, suffix in SUFFIX.items():
        write_tif(f"{folder}/{name}_{suffix}.tif", native(seed, band), x0, y0, ben.S2_RESOLUTION[band])


def write_s1(folder: str, name: str, seed: int) -> None:
    for band in ("VV", "VH"):
        write_tif(f"{folder}/{name}_{band}.tif", native(seed, band), 400000 + 1200 * seed, 5300040, 10)


# ---- v1 -----------------------------------------------------------------------------------------

V1 = {  # S2 name: (S1 name, split, 43-class labels)
    "S2A_MSIL2A_20170613T101031_0_45": ("S1A_IW_GRDH_1SDV_20170613T165043_32TMT_0_45", "train",
                                         ["Coniferous forest", "Non-irrigated arable land", "Bare rock"]),
    "S2A_MSIL2A_20170613T101031_0_46": ("S1A_IW_GRDH_1SDV_20170613T165043_32TMT_0_46", "train",
                                         ["Continuous urban fabric", "Discontinuous urban fabric", "Water courses"]),
    "S2B_MSIL2A_20171112T114339_0_13": ("S1B_IW_GRDH_1SDV_20171112T174521_29UPU_0_13", "train", ["Pastures"]),
    "S2B_MSIL2A_20170831T095029_27_76": ("S1B_IW_GRDH_1SDV_20170831T162148_34TDQ_27_76", "train", ["Mixed forest"]),
    "S2A_MSIL2A_20170717T113321_28_87": ("S1A_IW_GRDH_1SDV_20170717T174431_29UPU_28_87", "val",
                                         ["Sea and ocean", "Burnt areas"]),
    "S2A_MSIL2A_20170717T113321_28_90": ("S1A_IW_GRDH_1SDV_20170717T174431_29UPU_28_90", "test", ["Peatbogs"]),
}
CLOUDY, SNOWY = "S2B_MSIL2A_20171112T114339_0_13", "S2B_MSIL2A_20170831T095029_27_76"


@pytest.fixture(scope="module")
def v1(tmp_path_factory):
    root = tmp_path_factory.mktemp("ben1")
    s2_root, s1_root, splits = root / "BigEarthNet-v1.0", root / "BigEarthNet-S1-v1.0", root / "splits"
    for seed, (s2, (s1, _, labels)) in enumerate(V1.items()):
        write_s2(f"{s2_root}/{s2}", s2, seed)
        write_s1(f"{s1_root}/{s1}", s1, seed)
        coords = {"ulx": 400000 + 1200 * seed, "uly": 5300040, "lrx": 401200 + 1200 * seed, "lry": 5298840}
        (s2_root / s2 / f"{s2}_labels_metadata.json").write_text(json.dumps(
            {"labels": labels, "coordinates": coords, "projection": 'PROJCS["WGS 84 / UTM zone 32N"]',
             "tile_source": "S2A_MSIL1C_20170613T101031_N0205_R022_T32TMT_20170613T101608.SAFE",
             "acquisition_date": "2017-06-13 10:10:31"}))
        coords["lly"] = coords.pop("lry")  # as published: the S1 metadata spells it lly
        (s1_root / s1 / f"{s1}_labels_metadata.json").write_text(json.dumps(
            {"labels": labels, "coordinates": coords, "projection": 'PROJCS["WGS 84 / UTM zone 32N"]',
             "corresponding_s2_patch": s2, "scene_source": s1.rsplit("_", 3)[0] + "_20170613T165108_017018_01C579_7EEC",
             "acquisition_time": "2017-06-13T16:50:43"}))
    splits.mkdir()
    for split in ("train", "val", "test"):
        rows = [s2 if split == "train" else f"{s2},{s1}" for s2, (s1, sp, _) in V1.items() if sp == split]
        (splits / f"{split}.csv").write_text("\n".join(rows) + "\n")
    (splits / "patches_with_cloud_and_shadow.csv").write_text(CLOUDY + "\n")
    (splits / "patches_with_seasonal_snow.csv").write_text(SNOWY + "\nS2A_MSIL2A_20180225T114351_39_25\n")
    return {"s2": str(s2_root), "s1": str(s1_root), "splits": str(splits)}


def test_nomenclature_maps_43_to_19():
    assert (len(lab.LABELS_43), len(lab.CLASS_NAMES_19), len(lab.DROPPED_43)) == (43, 19, 11)
    assert lab.to_19(["Coniferous forest"]) == ["Coniferous forest"]
    assert lab.to_19(["Non-irrigated arable land", "Rice fields"]) == ["Arable land"]
    assert lab.to_19(["Bare rock", "Burnt areas", "Airports"]) == []
    assert lab.CLASS_NAMES_19[lab.multi_hot_from_43(["Sea and ocean"]).argmax()] == "Marine waters"
    with pytest.raises(InputError, match="Arable land"):  # a 19-class name is not a v1 label
        lab.to_19(["Arable land"])
    with pytest.raises(InputError, match="Forest"):
        lab.multi_hot_19(["Forest"])


def test_v1_splits_list_their_patches_without_cloudy_or_snowy(v1):
    ds = ben.BigEarthNetV1(v1["s2"], v1["s1"], splits_dir=v1["splits"])
    names = {s: [p["name"] for p in ds.list_patches(s)] for s in ("train", "val", "test")}
    assert names == {"train": list(V1)[:2], "val": [list(V1)[4]], "test": [list(V1)[5]]}
    assert [p["name"] for p in ds.list_patches("validation")] == names["val"]
    kept = ben.BigEarthNetV1(v1["s2"], splits_dir=v1["splits"], exclude_lists=[])
    assert [p["name"] for p in kept.list_patches("train")] == list(V1)[:4]


def test_v1_bands_in_the_asked_order_on_the_10m_grid(v1):
    ds = ben.BigEarthNetV1(v1["s2"], splits_dir=v1["splits"])
    patch = ds.list_patches("train")[1]
    img, labels = ds.load_patch(patch, "s2", s2_bands=["B8", "B4", "B5", "B1", "B12"])
    assert img.shape == (120, 120, 5) and img.dtype == np.float32
    np.testing.assert_array_equal(img[..., 0], native(1, "B8"))
    np.testing.assert_array_equal(img[..., 1], native(1, "B4"))
    r, c = np.mgrid[0:120, 0:120]
    np.testing.assert_array_equal(img[..., 2], native(1, "B5")[r // 2, c // 2])  # 20 m: 2 x 2 blocks
    np.testing.assert_array_equal(img[..., 3], native(1, "B1")[r // 6, c // 6])  # 60 m: 6 x 6 blocks
    np.testing.assert_array_equal(img[..., 4], native(1, "B12")[r // 2, c // 2])
    assert [lab.CLASS_NAMES_19[i] for i in np.flatnonzero(labels)] == ["Urban fabric", "Inland waters"]
    same, _ = ds.load_patch(patch, "s2", s2_bands=["B08", "B04"])  # BigEarthNet's spelling works too
    np.testing.assert_array_equal(same, img[..., :2])


def test_v1_s1_s2_or_both(v1):
    ds = ben.BigEarthNetV1(v1["s2"], v1["s1"], splits_dir=v1["splits"])
    for split, i in (("train", 0), ("val", 4)):  # train.csv has one column, val.csv names the S1 patch
        patch = ds.list_patches(split)[0]
        assert patch["s1_name"] == V1[patch["name"]][0]
        s1, labels = ds.load_patch(patch, "s1")
        assert s1.shape == (120, 120, 2)
        np.testing.assert_array_equal(s1[..., 1], native(i, "VH"))
        both, _ = ds.load_patch(patch, "s1s2")
        assert both.shape == (120, 120, 14)
        np.testing.assert_array_equal(both[..., 0], native(i, "VV"))
        np.testing.assert_array_equal(both[..., 2:], ds.load_patch(patch, "s2")[0])
    assert ben.channels("s1s2", ["B2"], ["VH"]) == ["VH", "B2"]
    # "Burnt areas" is dropped, "Sea and ocean" becomes "Marine waters"
    assert [lab.CLASS_NAMES_19[i] for i in np.flatnonzero(labels)] == ["Marine waters"]
    s1_only = ben.BigEarthNetV1(None, v1["s1"], splits_dir=v1["splits"])
    _, from_s1_json = s1_only.load_patch(s1_only.list_patches("val")[0], "s1")
    np.testing.assert_array_equal(from_s1_json, labels)


def test_v1_split_arrays(v1):
    ds = ben.BigEarthNetV1(v1["s2"], splits_dir=v1["splits"])
    x, y, names = ds.load_split_arrays("train", "s2", s2_bands=["B2", "B3"], limit=1)
    assert x.shape == (1, 120, 120, 2) and y.shape == (1, 19) and y.dtype == np.uint8
    assert names == [list(V1)[0]]
    assert [lab.CLASS_NAMES_19[i] for i in np.flatnonzero(y[0])] == ["Arable land", "Coniferous forest"]
    assert [p["name"] for p, _, _ in ds.iter_split("test", "s2", ["B2"])] == [list(V1)[5]]


def test_unknown_bands_and_inputs(v1):
    ds = ben.BigEarthNetV1(v1["s2"], splits_dir=v1["splits"])
    patch = ds.list_patches("test")[0]
    with pytest.raises(InputError, match="B10 is not in the L2A"):
        ds.load_patch(patch, "s2", s2_bands=["B2", "B10"])
    with pytest.raises(InputError, match="'HH'"):
        ben.channels("s1", s1_bands=["HH"])
    with pytest.raises(InputError, match="inputs"):
        ds.load_patch(patch, "optical")
    with pytest.raises(InputError, match="inputs"):
        ds.list_patches("test", inputs="optical")
    with pytest.raises(InputError, match="no S1 folder"):
        ds.load_patch(patch, "s1")
    with pytest.raises(InputError, match="unknown BigEarthNet split"):
        ds.list_patches("dev")


def _copy_v1(v1, tmp_path) -> dict:
    import shutil

    for k in ("s2", "splits"):
        shutil.copytree(v1[k], tmp_path / k)
    return {k: str(tmp_path / k) for k in ("s2", "splits")}


def test_v1_missing_band_file_is_named(v1, tmp_path):
    d = _copy_v1(v1, tmp_path)
    name = list(V1)[5]
    os.remove(f"{d['s2']}/{name}/{name}_B8A.tif")
    ds = ben.BigEarthNetV1(d["s2"], splits_dir=d["splits"])
    with pytest.raises(InputError, match=f"{name}_B8A.tif is missing"):
        ds.load_patch(ds.list_patches("test")[0], "s2")
    ds.load_patch(ds.list_patches("test")[0], "s2", s2_bands=["B2"])  # the other bands still read


def test_v1_band_off_the_patch_grid_is_named(v1, tmp_path):
    d = _copy_v1(v1, tmp_path)
    name = list(V1)[5]
    write_tif(f"{d['s2']}/{name}/{name}_B05.tif", np.zeros((120, 120), np.uint16), 405000, 5300040, 10)
    write_tif(f"{d['s2']}/{name}/{name}_B03.tif", np.zeros((120, 120), np.uint16), 400000, 5300040, 10)
    ds = ben.BigEarthNetV1(d["s2"], splits_dir=d["splits"])
    patch = ds.list_patches("test")[0]
    with pytest.raises(InputError, match=f"{name}_B05.tif: 1 band\\(s\\) of 120x120.*60x60"):
        ds.load_patch(patch, "s2", s2_bands=["B5"])
    with pytest.raises(InputError, match=f"{name}_B03.tif: its grid"):
        ds.load_patch(patch, "s2", s2_bands=["B2", "B3"])


def test_v1_split_naming_absent_patches(v1, tmp_path):
    d = _copy_v1(v1, tmp_path)
    with open(f"{d['splits']}/test.csv", "a") as f:
        f.write("S2A_MSIL2A_20170717T113321_1_1\nS2A_MSIL2A_20170717T113321_1_2\n")
    ds = ben.BigEarthNetV1(d["s2"], splits_dir=d["splits"])
    with pytest.raises(InputError, match="names 2 patch\\(es\\) that .* lacks, e.g. S2A_MSIL2A_20170717T113321_1_1"):
        ds.list_patches("test")
    os.remove(f"{d['splits']}/val.csv")
    with pytest.raises(InputError, match="val.csv is missing"):
        ds.list_patches("val")
    with pytest.raises(InputError, match="not a folder"):
        ben.BigEarthNetV1(str(tmp_path / "nope"), splits_dir=d["splits"])


def test_v1_unknown_label_is_named(v1, tmp_path):
    d = _copy_v1(v1, tmp_path)
    name = list(V1)[5]
    path = f"{d['s2']}/{name}/{name}_labels_metadata.json"
    meta = json.load(open(path))
    json.dump({**meta, "labels": ["Peat bogs"]}, open(path, "w"))
    ds = ben.BigEarthNetV1(d["s2"], splits_dir=d["splits"])
    with pytest.raises(InputError, match="'Peat bogs' is not one of the 43"):
        ds.load_patch(ds.list_patches("test")[0], "s2", ["B2"])


# ---- v2 (reBEN) ---------------------------------------------------------------------------------

V2 = [  # patch_id, s1_name, split, labels, flagged
    ("S2A_MSIL2A_20170613T101031_N9999_R022_T32TMT_26_57", "S1A_IW_GRDH_1SDV_20170613T165043_32TMT_26_57",
     "train", ["Arable land", "Coniferous forest"], False),
    ("S2A_MSIL2A_20170613T101031_N9999_R022_T32TMT_26_58", "S1A_IW_GRDH_1SDV_20170613T165043_32TMT_26_58",
     "train", ["Urban fabric"], False),
    ("S2B_MSIL2A_20170615T102019_N9999_R122_T32TNS_45_23", "S1A_IW_GRDH_1SDV_20170615T170156_32TNS_45_23",
     "validation", ["Pastures", "Inland waters"], False),
    ("S2A_MSIL2A_20170618T101021_N9999_R022_T32TQR_89_34", "S1B_IW_GRDH_1SDV_20170618T165722_32TQR_89_34",
     "test", ["Marine waters"], False),
    ("S2B_MSIL2A_20171101T094131_N9999_R036_T32TQR_00_00", "S1B_IW_GRDH_1SDV_20171101T154016_32TQR_0_0",
     "train", ["Mixed forest"], True),
]


def write_v2(root, rows=V2, trees=("s1", "s2")) -> None:
    for seed, (pid, s1, *_rest) in enumerate(rows):
        if "s2" in trees:
            write_s2(f"{root}/BigEarthNet-S2/{pid.rsplit('_', 2)[0]}/{pid}", pid, seed)
        if "s1" in trees:
            write_s1(f"{root}/BigEarthNet-S1/{s1.rsplit('_', 3)[0]}/{s1}", s1, seed)
    table = pa.table({
        "patch_id": [r[0] for r in rows], "labels": [r[3] for r in rows], "split": [r[2] for r in rows],
        "country": ["Austria"] * len(rows), "s1_name": [r[1] for r in rows],
        "s2v1_name": ["S2A_MSIL2A_20170613T101031_26_57"] * len(rows),
        "contains_seasonal_snow": [r[4] for r in rows], "contains_cloud_or_shadow": [False] * len(rows)})
    pq.write_table(table, f"{root}/metadata.parquet")


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    root = tmp_path_factory.mktemp("ben2")
    write_v2(root)
    return str(root)


def test_v2_patches_splits_and_labels_from_the_parquet(v2):
    assert not os.path.exists(f"{v2}/Reference_Maps")
    ds = ben.BigEarthNetV2(v2)
    train = ds.list_patches("train")
    assert [p["name"] for p in train] == [V2[0][0], V2[1][0]]  # the flagged patch is left out
    assert [p["name"] for p in ds.list_patches("val")] == [V2[2][0]]
    assert [p["name"] for p in ds.list_patches("validation")] == [V2[2][0]]
    assert train[0]["s2_dir"] == f"{v2}/BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T32TMT/{V2[0][0]}"
    assert train[0]["s1_dir"] == f"{v2}/BigEarthNet-S1/S1A_IW_GRDH_1SDV_20170613T165043/{V2[0][1]}"
    img, labels = ds.load_patch(train[0], "s1s2", s2_bands=["B11", "B3"], s1_bands=["VH", "VV"])
    assert img.shape == (120, 120, 4)
    r, c = np.mgrid[0:120, 0:120]
    np.testing.assert_array_equal(img[..., 0], native(0, "VH"))
    np.testing.assert_array_equal(img[..., 1], native(0, "VV"))
    np.testing.assert_array_equal(img[..., 2], native(0, "B11")[r // 2, c // 2])
    np.testing.assert_array_equal(img[..., 3], native(0, "B3"))
    assert [lab.CLASS_NAMES_19[i] for i in np.flatnonzero(labels)] == ["Arable land", "Coniferous forest"]
    x, y, names = ds.load_split_arrays("test", "s2")
    assert x.shape == (1, 120, 120, 12) and names == [V2[3][0]] and y[0, 18] == 1 and y.sum() == 1


def test_v2_with_only_the_s2_tree(tmp_path):
    write_v2(tmp_path, trees=("s2",))
    ds = ben.BigEarthNetV2(str(tmp_path))
    patch = ds.list_patches("test")[0]
    assert patch["s1_dir"] is None and ds.load_patch(patch, "s2", ["B2"])[0].shape == (120, 120, 1)
    with pytest.raises(InputError, match="names 1 S1 patch\\(es\\) that .*BigEarthNet-S1 lacks"):
        ds.list_patches("test", inputs="s1")


def test_v2_layout_errors(tmp_path):
    with pytest.raises(InputError, match="metadata.parquet is missing"):
        ben.BigEarthNetV2(str(tmp_path))
    write_v2(tmp_path)
    os.rename(f"{tmp_path}/BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T32TMT",
              f"{tmp_path}/BigEarthNet-S2/elsewhere")
    ds = ben.BigEarthNetV2(str(tmp_path))
    with pytest.raises(InputError, match=f"names 2 S2 patch\\(es\\) .* e.g. .*T32TMT/{V2[0][0]}"):
        ds.list_patches("train")
    pq.write_table(pa.table({"patch_id": ["x"], "split": ["train"]}), f"{tmp_path}/other.parquet")
    with pytest.raises(InputError, match="lacks column\\(s\\) labels, s1_name"):
        ben.BigEarthNetV2(str(tmp_path), metadata=f"{tmp_path}/other.parquet")


def test_v2_unknown_label_is_named(tmp_path):
    write_v2(tmp_path, rows=[(*V2[3][:3], ["Sea and ocean"], False)])  # a v1 name in v2 metadata
    ds = ben.BigEarthNetV2(str(tmp_path))
    with pytest.raises(InputError, match="'Sea and ocean' is not a BigEarthNet 19-class label"):
        ds.load_patch(ds.list_patches("test")[0], "s2", ["B2"])


def test_imports_no_tensorflow():
    code = ("import sys, senclr.evaluate.bigearthnet, senclr.evaluate.multilabel; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
