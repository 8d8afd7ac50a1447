"""Sen1Floods11: the downloader against gcp-storage-emulator holding the v1.1 layout, and the
loader on the real chip in ../shared/data (skipped when absent)."""

from __future__ import annotations

import itertools
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from senclr.cli import cli
from senclr.errors import InputError
from senclr.evaluate import sen1floods11 as s1f
from tests.conftest import SHARED_DATA

SAMPLE = SHARED_DATA / "sen1floods11-sample"
STEM = "Spain_7370579"
_ids = itertools.count()


def _layout() -> dict[str, bytes]:
    """Object name -> bytes of a small bucket in the v1.1 layout, plus objects to leave alone."""
    objs = {f"{s1f.SPLITS_DIR}/{f}": f"{STEM}_S1Hand.tif,{STEM}_LabelHand.tif\n".encode() for f in s1f.SPLITS.values()}
    for i, (key, folder) in enumerate(s1f.FOLDERS.items()):
        for stem in (STEM, "Bolivia_1"):
            objs[f"{s1f.HAND}/{folder}/{stem}_{folder}.tif"] = bytes([i]) * (3000 + 700 * i) + stem.encode()
    objs[s1f.METADATA] = b'{"type": "FeatureCollection", "features": []}'
    return objs


NOT_WANTED = {"v1.1/data/flood_events/WeaklyLabeled/S1OtsuLabelWeak/x.tif": b"weak",
              "v1.1/splits/flood_handlabeled/other.csv": b"x", "v1.1/checkpoints/model.pt": b"big"}


@pytest.fixture
def bucket(gcs):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    name = f"sen1floods11-{next(_ids)}"
    b = client.create_bucket(name)
    for obj, data in {**_layout(), **NOT_WANTED}.items():
        b.blob(obj).upload_from_string(data)
    return name


def _local(dest) -> dict[str, bytes]:
    return {os.path.relpath(os.path.join(d, f), dest): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(dest) for f in files}


def test_download_takes_the_hand_labelled_layout_and_nothing_else(bucket, tmp_path):
    r = CliRunner().invoke(cli, ["data", "download", "sen1floods11", "--dest", str(tmp_path / "d"), "--bucket", bucket])
    assert r.exit_code == 0, r.output
    assert _local(tmp_path / "d") == _layout()
    assert "11 files" in r.output and "11 fetched" in r.output and "0 failed" in r.output
    again = s1f.download(str(tmp_path / "d"), bucket=bucket, progress=False)
    assert (again["fetched"], again["already_complete"], again["failed"]) == (0, 11, {})


def test_corrupt_truncated_and_partial_files_are_fetched_again(bucket, tmp_path):
    dest = tmp_path / "d"
    s1f.download(str(dest), bucket=bucket, progress=False)
    s1_file = dest / s1f.HAND / "S1Hand" / f"{STEM}_S1Hand.tif"
    data = bytearray(s1_file.read_bytes())
    data[10] ^= 0xFF  # same size, other bytes: only the checksum can tell
    s1_file.write_bytes(bytes(data))
    label = dest / s1f.HAND / "LabelHand" / f"{STEM}_LabelHand.tif"
    label.write_bytes(label.read_bytes()[:100])  # an interrupted write
    (dest / s1f.METADATA).unlink()
    (dest / (s1f.METADATA + ".partial")).write_bytes(b"half")
    s = s1f.download(str(dest), bucket=bucket, progress=False)
    assert (s["fetched"], s["already_complete"]) == (3, 8)
    assert _local(dest) == _layout()  # the .partial was replaced and renamed


def test_an_interrupted_download_resumes_with_only_the_rest(bucket, tmp_path, monkeypatch):
    real, calls = s1f._fetch, []

    def flaky(blob, path):
        calls.append(blob.name)
        if blob.name.endswith("Bolivia_1_S2Hand.tif"):
            raise ConnectionError("connection reset by peer")
        return real(blob, path)

    monkeypatch.setattr(s1f, "_fetch", flaky)
    r = CliRunner().invoke(cli, ["data", "download", "sen1floods11", "--dest", str(tmp_path / "d"), "--bucket", bucket])
    assert r.exit_code == 1 and "1 failed" in r.output and "Bolivia_1_S2Hand.tif: ConnectionError" in r.output
    assert not (tmp_path / "d" / s1f.HAND / "S2Hand" / "Bolivia_1_S2Hand.tif").exists()
    monkeypatch.setattr(s1f, "_fetch", real)
    s = s1f.download(str(tmp_path / "d"), bucket=bucket, progress=False)
    assert (s["fetched"], s["already_complete"], s["failed"]) == (1, 10, {})
    assert _local(tmp_path / "d") == _layout()


def test_a_bucket_not_in_the_layout_is_refused_before_any_download(gcs, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"not-sen1floods11-{next(_ids)}"
    storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket(name).blob("v1.1/x").upload_from_string(b"1")
    r = CliRunner().invoke(cli, ["data", "download", "sen1floods11", "--dest", str(tmp_path / "d"), "--bucket", name])
    assert r.exit_code == 2 and "not in the Sen1Floods11 v1.1 layout" in r.output and "flood_bolivia_data.csv" in r.output
    assert not (tmp_path / "d").exists()


@pytest.fixture
def local_copy(tmp_path):
    """The real chip in a local copy of the v1.1 layout (every split names it)."""
    if not SAMPLE.is_dir():
        pytest.skip(f"real Sen1Floods11 chip not found at {SAMPLE}")
    root = tmp_path / "s1f"
    for key, folder in s1f.FOLDERS.items():
        (root / s1f.HAND / folder).mkdir(parents=True)
        shutil.copy(SAMPLE / f"{STEM}_{folder}.tif", root / s1f.HAND / folder)
    (root / s1f.SPLITS_DIR).mkdir(parents=True)
    for f in s1f.SPLITS.values():
        (root / s1f.SPLITS_DIR / f).write_text(f"{STEM}_S1Hand.tif,{STEM}_LabelHand.tif\n")
    shutil.copy(SAMPLE / s1f.METADATA, root / s1f.METADATA)
    return root


def test_loader_reads_the_real_chip_of_each_split(local_copy):
    for split in s1f.SPLITS:
        (chip,) = s1f.read_split(str(local_copy), split)
        pair = s1f.load_chip(str(local_copy), chip)
        assert pair.s1.shape == (512, 512, 2) and pair.s2.shape == (512, 512, 13)
        water = pair.labels["water"]
        assert set(np.unique(water)) <= {-1, 0, 1} and (water == -1).sum() == 99  # as the data README says
        assert 0.2 < (water == 1).sum() / (water >= 0).sum() < 0.35


def test_loader_names_what_is_missing(local_copy):
    with pytest.raises(InputError, match="unknown Sen1Floods11 split"):
        s1f.read_split(str(local_copy), "val")
    (local_copy / s1f.SPLITS_DIR / s1f.SPLITS["test"]).write_text("Spain_1_S1Hand.tif,Spain_1_LabelHand.tif\n")
    with pytest.raises(InputError, match="names 3 file"):
        s1f.read_split(str(local_copy), "test")
    (local_copy / s1f.SPLITS_DIR / s1f.SPLITS["bolivia"]).unlink()
    with pytest.raises(InputError, match="flood_bolivia_data.csv is missing"):
        s1f.read_split(str(local_copy), "bolivia")


def test_a_chip_whose_grids_disagree_is_refused(local_copy):
    import rasterio
    from rasterio.transform import Affine

    s2 = local_copy / s1f.HAND / "S2Hand" / f"{STEM}_S2Hand.tif"
    with rasterio.open(s2) as r:
        profile, data = r.profile, r.read()
    profile["transform"] = profile["transform"] @ Affine.translation(3, 0)  # 3 px east
    with rasterio.open(s2, "w", **profile) as w:
        w.write(data)
    (chip,) = s1f.read_split(str(local_copy), "train")
    with pytest.raises(InputError, match=f"chip {STEM}: .* not on one grid"):
        s1f.load_chip(str(local_copy), chip)


def test_loader_reads_the_bucket_itself(gcs, local_copy):
    """The same layout read straight from a bucket (here the emulator's; the real one needs
    application-default credentials, which any Google account gives)."""
    from senclr import storage

    name = f"s1f-mirror-{next(_ids)}"
    for path in local_copy.rglob("*"):
        if path.is_file():
            storage.write_bytes(f"gs://senclr-test/{name}/{path.relative_to(local_copy)}", path.read_bytes())
    (chip,) = s1f.read_split(f"gs://senclr-test/{name}", "bolivia")
    pair = s1f.load_chip(f"gs://senclr-test/{name}", chip)
    assert pair.s1.shape == (512, 512, 2) and (pair.labels["water"] == -1).sum() == 99


def test_bad_download_flags_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    for extra, message in ((["--workers", "0"], "--workers must be >= 1"), (["--dest", str(tmp_path / "file")], "existing file")):
        args = ["data", "download", "sen1floods11", "--dest", str(tmp_path / "d"), *extra]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "d").exists()
    assert CliRunner().invoke(cli, ["data", "download", "bigearthnet", "--dest", str(tmp_path / "d")]).exit_code == 2
