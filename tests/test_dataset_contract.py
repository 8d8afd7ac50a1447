"""core/dataset.py on a tiny dataset written without Beam (issue 12, mutation check): a split reads
its own shards only, counts add up per split, and a missing shard is named."""

import os

import pytest

from senclr import manifest as manifest_lib
from senclr.dataset import count, iter_records, shard_uris
from senclr.errors import InputError
from tests.helpers import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny12(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny12"))
    write_tiny_dataset(folder, n=12, size=8, seed=3)  # 6 train, 3 val, 3 test
    return folder, manifest_lib.read(folder, kind="dataset")


def test_each_split_reads_its_own_shards_and_counts(tiny12):
    folder, m = tiny12
    by_split = {s: [r["split"] for r in iter_records(folder, s)] for s in ("train", "val", "test")}
    assert {s: (len(v), set(v)) for s, v in by_split.items()} == {"train": (6, {"train"}), "val": (3, {"val"}), "test": (3, {"test"})}
    assert (count(m, "train"), count(m, "val"), count(m, "test"), count(m)) == (6, 3, 3, 12)
    recs = list(iter_records(folder))
    assert len(recs) == 12 and recs[0]["s1"].dtype == "float16" and recs[0]["s2"].dtype == "uint16"  # stored types by default
    assert [os.path.basename(u) for u in shard_uris(folder, m, "val")] == ["val-00000-of-00001.tfrecord"]


def test_a_missing_shard_is_named(tiny12, tmp_path):
    import shutil

    folder = str(tmp_path / "copy")
    shutil.copytree(tiny12[0], folder)
    for split in ("val", "test"):
        os.remove(os.path.join(folder, f"{split}-00000-of-00001.tfrecord"))
    m = manifest_lib.read(folder, kind="dataset")
    assert len(shard_uris(folder, m, "train")) == 1  # the other splits still read
    with pytest.raises(InputError, match=r"2 shard\(s\) listed in its manifest are missing, e\.g\. .*val-00000-of-00001"):
        shard_uris(folder, m, None)  # the first missing one, in manifest order

