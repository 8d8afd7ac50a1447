"""Broken inputs: the pipeline keeps what the data allows, names every casualty, and exits 2 only
when nothing usable is left. Each fault on local files and in gcp-storage-emulator."""

import gzip
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from senclr import manifest as manifest_lib
from senclr import raw_archive, storage, tfrecord
from senclr.cli import cli
from senclr.errors import InputError
from senclr.pipeline import sources, transforms
from senclr.pipeline.preprocess import preprocess
from tests.helpers import ee_table_example, random_pair, write_batch_export, write_chip, write_raw_archive

P = 16


@pytest.fixture(params=["local", "gcs"])
def base(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "in")
    return request.getfixturevalue("gcs") + f"/faults-{tmp_path.name}"


@pytest.fixture
def pairs():
    rng = np.random.default_rng(11)
    return [random_pair(rng, P, i, labels=False) for i in range(16)]


def _rewrite_shard(uri: str, records: list[bytes], cut: int | None = None) -> None:
    """Write records as a gzip'd shard; ``cut`` truncates the uncompressed framing at that byte."""
    data = tfrecord.encode_file(records)
    storage.write_bytes(uri, gzip.compress(data[:cut] if cut else data))


def _batch_export(base: str, pairs: list) -> dict:
    """12 pairs in 4 shards of 3, each shard with its own fault; returns {fault: shard uri}."""
    pairs[0].s1[:] = np.nan  # all-NaN S1 patch
    pairs[1].cloud[:] = 0.02  # all-cloud S2 patch
    shards = write_batch_export(storage.join(base, "exp"), pairs[:12], per_task=3)
    records = [ee_table_example(p) for p in pairs[:12]]
    _rewrite_shard(shards[0], records[:2] + [ee_table_example(pairs[2], drop=("B10", "B11"))])  # wrong band count
    _rewrite_shard(shards[1], records[3:6], cut=len(tfrecord.encode_file(records[3:5])) + 100)  # truncated framing
    whole = storage.read_bytes(shards[3])
    storage.write_bytes(shards[3], whole[: len(whole) // 2])  # truncated gzip
    return {"band_count": shards[0], "truncated": shards[1], "vanished": shards[2], "truncated_gzip": shards[3]}


def _archive(base: str, pairs: list) -> dict:
    """4 pairs: one good, a truncated .npy, an .npy without VV/VH, a .json that is not JSON."""
    root = storage.join(base, "raw")
    write_raw_archive(root, pairs[12:16])
    npy = {p.pair_id: raw_archive.pair_uris(root, p.pair_id) for p in pairs[12:16]}
    storage.write_bytes(npy[pairs[13].pair_id][0], storage.read_bytes(npy[pairs[13].pair_id][0])[:200])
    arr = raw_archive.to_structured(pairs[14])
    keep = [n for n in arr.dtype.names if n not in ("VV", "VH")]
    storage.write_bytes(npy[pairs[14].pair_id][0], raw_archive.encode_npy(arr[keep].copy()))
    storage.write_text(npy[pairs[15].pair_id][1], "{not json")
    return {"truncated": pairs[13].pair_id, "band_count": pairs[14].pair_id, "corrupt": pairs[15].pair_id}


def _chips(base: str) -> dict:
    """A_1: 32 px with an all-NaN S1 quadrant; B_1: 10 S2 bands; C_1: truncated S2; D_1: no S2."""
    folder = storage.join(base, "chips")
    a = write_chip(folder, "A_1", size=2 * P)
    from rasterio.io import MemoryFile

    with MemoryFile(storage.read_bytes(a["S1Hand"])) as mem:
        with mem.open() as r:
            s1, profile = r.read(), r.profile
        s1[:, :P, :P] = np.nan
        with MemoryFile() as out:
            with out.open(**profile) as w:
                w.write(s1)
            storage.write_bytes(a["S1Hand"], out.read())
    b = write_chip(folder, "B_1", size=2 * P, s2_bands=10)
    c = write_chip(folder, "C_1", size=2 * P)
    storage.write_bytes(c["S2Hand"], storage.read_bytes(c["S2Hand"])[:3000])
    d = write_chip(folder, "D_1", size=2 * P)
    storage.remove(d["S2Hand"])
    return {"nan_patch": a["S1Hand"] + "#0,0", "band_count": b["S1Hand"], "truncated": c["S1Hand"], "missing_s2": d["S1Hand"]}


def _vanish_after_listing(monkeypatch, uri: str) -> None:
    real = sources.resolve

    def resolve_then_delete(*a, **k):
        inputs = real(*a, **k)
        storage.remove(uri)  # listed, then gone before any worker reads it
        return inputs

    monkeypatch.setattr(sources, "resolve", resolve_then_delete)


def _rejects(out: str) -> list[dict]:
    return [json.loads(line) for line in storage.read_text(storage.join(out, manifest_lib.read(out)["rejects_file"])).splitlines()]


def test_every_fault_is_named_and_the_rest_is_kept(base, pairs, monkeypatch):
    shard = _batch_export(base, pairs)
    archive = _archive(base, pairs)
    chip = _chips(base)
    _vanish_after_listing(monkeypatch, shard["vanished"])
    out = base + "-ds"
    m = preprocess(storage.join(base, "*", "**"), out, patch_size=P, cell_deg=1.0)
    c, rejects = m["counts"], _rejects(out)
    assert c["read"] == c["kept"] + sum(c["rejected"].values()) == c["kept"] + len(rejects)
    by_source = {}
    for r in rejects:
        by_source.setdefault(r["source"].split("#")[0], []).append(r)

    def only(source, reason, pair_id=None, text=""):
        [r] = by_source[source]
        assert r["reason"] == reason and text in r["detail"], r
        assert pair_id is None or r["pair_id"] == pair_id, r

    # batch export: per-record faults cost one pair each, file faults are named by the file
    assert sorted((r["pair_id"], r["reason"]) for r in rejects if r["source"].startswith(shard["band_count"])) == sorted(
        [(pairs[0].pair_id, "non_finite"), (pairs[1].pair_id, "cloudy"), (pairs[2].pair_id, "missing_bands")])
    only(shard["truncated"], "unreadable", "", "truncated record")
    assert "first 2 pairs were read" in by_source[shard["truncated"]][0]["detail"]
    only(shard["vanished"], "unreadable", "", "FileNotFoundError")
    only(shard["truncated_gzip"], "unreadable", "", "compressed data broken")
    # raw archive: each file names its pair
    reasons = {r["pair_id"]: r["reason"] for r in rejects if "/raw/" in r["source"]}
    assert reasons == {archive["truncated"]: "unreadable", archive["band_count"]: "missing_bands", archive["corrupt"]: "unreadable"}
    # GeoTIFF chips: a bad patch costs itself, a bad file its chip
    only(chip["nan_patch"].split("#")[0], "non_finite")
    assert by_source[chip["nan_patch"].split("#")[0]][0]["source"] == chip["nan_patch"]
    only(chip["band_count"], "bad_shape", "", "found 10")
    only(chip["truncated"], "unreadable", "", "C_1_S2Hand.tif cannot be read as a GeoTIFF")
    only(chip["missing_s2"], "missing_bands", "", "D_1_S2Hand.tif")
    # read: shards 3 + (2 + 1) + 1 + (k + 1), archive 4, chips 4 + 3; k pairs came before the gzip cut
    k = c["read"] - 19
    assert 0 <= k <= 2
    assert c["kept"] == 2 + k + 1 + 3  # truncated shard 2, gzip salvage k, archive 1, chip A 3
    assert manifest_lib.read(out)["counts"] == c


def test_read_step_yields_the_pairs_before_the_damage(base, pairs):
    shards = write_batch_export(storage.join(base, "exp"), pairs[:3], per_task=3)
    records = [ee_table_example(p) for p in pairs[:3]]
    _rewrite_shard(shards[0], records, cut=len(tfrecord.encode_file(records[:2])) + 5)
    [unit] = sources.resolve(storage.join(base, "exp")).units
    out = list(transforms.ReadUnitFn().process(unit))
    assert [p.pair_id for p in out[:2]] == [p.pair_id for p in pairs[:2]]
    assert out[2].tag == transforms.REJECTED and out[2].value["source"] == shards[0]
    assert "truncated record header" in out[2].value["detail"]


def test_a_corrupt_checksum_stops_the_file_there(tmp_path, pairs):
    out = str(tmp_path / "exp")
    [shard] = write_batch_export(out, pairs[:3], per_task=3)
    data = bytearray(tfrecord.encode_file(ee_table_example(p) for p in pairs[:3]))
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the second record
    storage.write_bytes(shard, gzip.compress(bytes(data)))
    [unit] = sources.resolve(out).units
    got = list(transforms.ReadUnitFn().process(unit))
    assert len(got) == 2 and got[0].pair_id == pairs[0].pair_id and "bad data checksum" in got[1].value["detail"]


def test_empty_inputs_exit_2(base, pairs):
    runner = CliRunner()
    storage.write_text(storage.join(base, "empty", "notes.txt"), "nothing to see")
    write_batch_export(storage.join(base, "exp"), pairs[:3])
    for s in storage.list_files(storage.join(base, "exp", "tasks")):
        storage.remove(s)
    cases = {
        storage.join(base, "empty"): "holds nothing senclr reads",
        storage.join(base, "exp"): "holds no pairs",
        storage.join(base, "nothing-here", "*.json"): "matches no files",
        storage.join(base, "empty", "*.txt"): "none of them pairs",
    }
    for given, message in cases.items():
        r = runner.invoke(cli, ["preprocess", "--input", given, "--output", base + "-ds"])
        assert r.exit_code == 2 and message in r.output, (given, r.output)
        assert not storage.exists(base + "-ds/manifest.json")


def test_nothing_usable_exits_2_and_names_the_casualties(base, pairs):
    for p in pairs[:6]:
        p.cloud[:] = 0.0
    shards = write_batch_export(storage.join(base, "exp"), pairs[:6], per_task=3)
    storage.write_bytes(shards[1], b"\x1f\x8b not really gzip")
    r = CliRunner().invoke(cli, ["preprocess", "--input", storage.join(base, "exp"), "--output", base + "-ds"])
    assert r.exit_code == 2, r.output
    assert "all 4 pairs were rejected" in r.output and "cloudy" in r.output and shards[1] in r.output
    assert pairs[0].pair_id in r.output
    assert not storage.is_dir(base + "-ds") or not list(storage.list_files(base + "-ds"))


def test_unreadable_plan_or_missing_plan_is_an_input_error(tmp_path, pairs):
    out = str(tmp_path / "exp")
    write_batch_export(out, pairs[:3], with_manifest=False)
    storage.write_text(os.path.join(out, "ledger", "plan.json"), "{broken")
    with pytest.raises(InputError, match="not a readable export plan"):
        sources.resolve(out)
    os.remove(os.path.join(out, "ledger", "plan.json"))
    with pytest.raises(InputError, match="plan.json is missing"):
        sources.resolve(out)
