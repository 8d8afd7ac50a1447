"""Storage helpers against gcp-storage-emulator (real google-cloud-storage client, no network)."""

import os

import numpy as np
import pytest

from senclr import raw_archive, storage
from tests.helpers import random_pair


def test_join_and_split():
    assert storage.join("gs://b/x/", "y", "z.npy") == "gs://b/x/y/z.npy"
    assert storage.split_gcs("gs://b/x/y") == ("b", "x/y")
    with pytest.raises(ValueError):
        storage.split_gcs("gs:///x")


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_round_trip_list_remove(where, tmp_path, request):
    base = str(tmp_path) if where == "local" else request.getfixturevalue("gcs") + f"/{tmp_path.name}"
    storage.write_text(storage.join(base, "a", "one.json"), "{}")
    storage.write_bytes(storage.join(base, "a", "b", "two.npy"), b"\x00\x01")
    assert storage.read_text(storage.join(base, "a", "one.json")) == "{}"
    assert storage.exists(storage.join(base, "a", "b", "two.npy"))
    assert storage.size(storage.join(base, "a", "b", "two.npy")) == 2
    assert [os.path.basename(u) for u in storage.list_files(base, "*.npy")] == ["two.npy"]
    assert len(list(storage.list_files(base))) == 2
    assert storage.is_dir(storage.join(base, "a"))
    storage.remove(storage.join(base, "a", "one.json"))
    assert not storage.exists(storage.join(base, "a", "one.json"))
    storage.remove(storage.join(base, "a", "one.json"))  # missing is fine
    storage.remove_tree(base)
    assert not storage.exists(storage.join(base, "a", "one.json"))
    assert list(storage.list_files(base)) == []


def test_local_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        storage.write_bytes(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary file left behind


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_streamed_write_appears_whole_or_not_at_all(where, tmp_path, request):
    base = str(tmp_path) if where == "local" else request.getfixturevalue("gcs") + f"/{tmp_path.name}"
    uri = storage.join(base, "s", "f.bin")
    with pytest.raises(RuntimeError):
        with storage.open_write(uri) as f:
            f.write(b"part")
            raise RuntimeError("worker lost")
    assert not storage.exists(uri) and list(storage.list_files(base)) == []
    with storage.open_write(uri) as f:
        f.write(b"one")
        f.write(b"two")
    assert storage.read_bytes(uri) == b"onetwo"


def test_local_files_get_normal_permissions(tmp_path):
    storage.write_text(str(tmp_path / "m.json"), "{}")
    assert os.stat(tmp_path / "m.json").st_mode & 0o777 == 0o666 & ~storage._UMASK


def test_raw_archive_on_gcs(gcs):
    pair = random_pair(np.random.default_rng(3), 8)
    raw_archive.write_pair(gcs + "/raw", pair)
    [uri] = raw_archive.list_pairs(gcs + "/raw")
    back = raw_archive.read_pair(uri)
    assert back.meta == pair.meta
    np.testing.assert_array_equal(back.s2, pair.s2)
    np.testing.assert_array_equal(back.labels["water"], pair.labels["water"])
