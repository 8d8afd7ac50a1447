"""Bands picked in an order that is not the dataset's, and normalisation, checked against an
independent reference (issue 12).

The reference never calls ``senclr.normalize``, ``band_indices`` or the pipeline's statistics: it
takes the pairs that went into the dataset, finds each band by name in their own band lists, and
computes every statistic with plain numpy. Every band gets its own level (S2 band k around
300 k + 1000, VH 8 dB below VV), so a band swapped, or a statistic looked up for the wrong band,
moves values by far more than the tolerances.
"""

import numpy as np
import pytest

from senclr.dataset import iter_records
from tests.helpers import random_pair, write_raw_archive

N, P = 24, 16
S1_ASKED, S2_ASKED = ["VH", "VV"], ["B8", "B4", "B11"]  # reversed / scattered: never the dataset's order


def _pairs():
    rng = np.random.default_rng(11)
    pairs = []
    for i in range(N):
        p = random_pair(rng, P, i)
        p.s1[..., 1] -= 8  # VH
        p.s2[:] = (p.s2 // 4 + 1000 + 300 * np.arange(p.s2.shape[-1])).astype(np.uint16)
        p.s2[0, i % P] = 0  # S2 no data: a whole pixel (under --max-nodata) ...
        p.s2[3, 5, list(p.s2_bands).index("B8")] = 0  # ... and one band of another
        pairs.append(p)
    return pairs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(dataset folder, its manifest, {pair_id: the PatchPair written to the archive})."""
    from senclr.pipeline.preprocess import preprocess

    root = tmp_path_factory.mktemp("bands")
    pairs = _pairs()
    write_raw_archive(str(root / "raw"), pairs, P)
    m = preprocess(str(root / "raw"), str(root / "ds"), cell_deg=1.0)
    assert m["counts"]["kept"] == N  # every pair is clear: the reference below uses them all
    return str(root / "ds"), m, {p.pair_id: p for p in pairs}


def _band(pair, name: str) -> np.ndarray:
    """A band by name from the pair's own band lists (float64)."""
    if name in pair.s1_bands:
        return pair.s1[..., list(pair.s1_bands).index(name)].astype(np.float64)
    return pair.s2[..., list(pair.s2_bands).index(name)].astype(np.float64)


def _stored(pair, name: str) -> np.ndarray:
    """What the dataset holds for a band: S1 as float16 dB, S2 as uint16."""
    x = _band(pair, name)
    return x.astype(np.float16) if name in pair.s1_bands else x.astype(np.uint16)


def _normalised(x: np.ndarray, s: dict, s2: bool) -> np.ndarray:
    """clip to [p1, p99], standardise: float32 arithmetic on the band's own manifest entry; an S2
    0 (no data) is 0.0, as docs/dataset.md says."""
    f = np.float32
    y = (np.clip(x.astype(f), f(s["p1"]), f(s["p99"])) - f(s["mean"])) / f(s["std"])
    return np.where(x == 0, f(0), y) if s2 else y


def _expected(m: dict, pair, names: list[str], normalized: bool) -> np.ndarray:
    cols = [_stored(pair, b) for b in names]
    if normalized:
        cols = [_normalised(c, m["statistics"][b], b in pair.s2_bands) for c, b in zip(cols, names)]
    return np.stack(cols, axis=-1)


def test_statistics_match_an_independent_computation_per_band(built):
    _, m, pairs = built
    assert m["bands"]["s1"] == ["VV", "VH"] and m["bands"]["s2"][7] == "B8"
    assert m["record_schema_version"] == 1  # docs/dataset.md documents schema v1
    for band, s in m["statistics"].items():
        v = np.concatenate([_band(p, band).ravel() for p in pairs.values()])
        if band in m["bands"]["s2"]:
            v = v[v != 0]  # S2 no data
        q = 1 / 256 if band in m["bands"]["s1"] else 1.0  # the quantum the statistics are summed in
        bin_width = (80 if band in m["bands"]["s1"] else 20000) / 4096 + q  # the percentile histogram's bin
        assert s["count"] == v.size, band
        assert s["mean"] == pytest.approx(v.mean(), abs=q), band
        assert s["std"] == pytest.approx(v.std(), abs=q + 1e-4 * v.std()), band
        assert s["min"] == pytest.approx(v.min(), abs=q) and s["max"] == pytest.approx(v.max(), abs=q), band
        assert s["p1"] == pytest.approx(np.percentile(v, 1), abs=bin_width), band
        assert s["p99"] == pytest.approx(np.percentile(v, 99), abs=bin_width), band


@pytest.mark.parametrize("normalized", [False, True])
def test_numpy_reader_gives_the_bands_asked_in_the_order_asked(built, normalized):
    ds, m, pairs = built
    seen = 0
    for rec in iter_records(ds, normalized=normalized, s1_bands=S1_ASKED, s2_bands=S2_ASKED):
        pair = pairs[rec["pair_id"]]
        np.testing.assert_allclose(rec["s1"], _expected(m, pair, S1_ASKED, normalized), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rec["s2"], _expected(m, pair, S2_ASKED, normalized), rtol=1e-6, atol=1e-6)
        seen += 1
    assert seen == N


@pytest.mark.parametrize("batched", [False, True])
def test_tf_reader_gives_the_bands_asked_in_the_order_asked(built, batched):
    import tensorflow as tf

    from senclr.dataset import shard_uris
    from senclr.dataset_tf import make_dataset, record_parser

    ds, m, pairs = built
    if batched:
        parse = record_parser(m, S1_ASKED, S2_ASKED, batched=True)
        batches = tf.data.TFRecordDataset(shard_uris(ds, m, None)).batch(N - 1).map(parse)  # a last batch of one
        recs = [{k: v[i] for k, v in b.items()} for b in batches for i in range(len(b["pair_id"]))]
    else:
        recs = list(make_dataset(ds, s1_bands=S1_ASKED, s2_bands=S2_ASKED))
    assert len(recs) == N
    for rec in recs:
        pair = pairs[rec["pair_id"].numpy().decode()]
        np.testing.assert_allclose(rec["s1"].numpy(), _expected(m, pair, S1_ASKED, True), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rec["s2"].numpy(), _expected(m, pair, S2_ASKED, True), rtol=1e-6, atol=1e-6)


def test_training_inputs_take_the_bands_asked_and_normalise_each_with_its_own_statistics(built):
    """The multimodal batches (physical units) and the model's on-device normalisation together."""
    import tensorflow as tf

    from senclr.dataset_tf import standardize
    from senclr.models.data import norm_params, pretraining_dataset

    ds, m, pairs = built
    bands = {"s1": S1_ASKED, "s2": S2_ASKED}
    batch = next(iter(pretraining_dataset(ds, m, "train", "multimodal", bands, 4, shuffle=False, deterministic=True)))
    train_ids = [rec["pair_id"] for rec in iter_records(ds, "train")][:4]
    params = norm_params(m, bands)
    for key, names in bands.items():
        p = params[key]
        got = standardize(tf.cast(batch[key], tf.float32), p)  # what the model does on device
        want = np.stack([_expected(m, pairs[i], names, True) for i in train_ids])
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bands", [("VH", "B8", "B4"), ("B8", "VV", "B4")], ids=["s1-first", "interleaved"])
def test_evaluation_inputs_normalise_each_band_with_its_own_statistics(built, tmp_path, bands):
    """The segmentation evaluation's chip store: every channel is the band named at its position."""
    from senclr.evaluate.dataset_seg import _store

    ds, m, pairs = built
    stats = {b: m["statistics"][b] for b in bands}
    store = _store(ds, m, "test", "water", 2, bands, stats, str(tmp_path))
    ids = [rec["pair_id"] for rec in iter_records(ds, "test")]
    assert store.n == len(ids) > 0
    for i, pair_id in enumerate(ids):
        x, _ = store.get(i)
        want = _expected(m, pairs[pair_id], list(bands), True)
        np.testing.assert_allclose(x.astype(np.float32), want, rtol=2e-3, atol=2e-3)  # stored as float16


def test_flood_chip_inputs_take_bands_by_name_in_the_order_asked():
    """Sen1Floods11 chips are read by band name too (``flood_inputs.chip_bands``); S2 no data is NaN."""
    from senclr.evaluate.flood_inputs import chip_bands

    pair = _pairs()[0]
    pair.s2[0, 0, list(pair.s2_bands).index("B4")] = 0
    asked = ["B8", "VH", "B4", "VV"]
    want = np.stack([_band(pair, b) for b in asked], axis=-1).astype(np.float32)
    s2 = [i for i, b in enumerate(asked) if b in pair.s2_bands]
    want[..., s2] = np.where(want[..., s2] == 0, np.nan, want[..., s2])
    assert np.isnan(want[0, 0, 2])
    np.testing.assert_array_equal(chip_bands(pair, asked), want)
