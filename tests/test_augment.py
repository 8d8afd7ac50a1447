"""models/augment.py and models/augment_patch.py: SimCLR views for S1/S2 patches (shapes,
alignment, determinism, noise), both ways of drawing them (a batch at a time as matrices, one
patch at a time), and the matrix form against the operations it stands for."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from senclr.models import augment as aug  # noqa: E402
from senclr.models import augment_patch  # noqa: E402
from senclr.models.augment import AugmentConfig, augment, augment_batch, two_views, views_dataset  # noqa: E402

OFF = AugmentConfig(crop=False, flip=False, rotate90=False, jitter_prob=0.0, blur_prob=0.0)
GEOMETRIC = AugmentConfig(jitter_prob=0.0, blur_prob=0.0)
ALL_ON = AugmentConfig(jitter_prob=1.0, blur_prob=1.0, speckle_looks=4.0)


def seed(i):
    return tf.constant([i, 12345], tf.int64)


def noise(h, w, c, s=0):
    return np.random.default_rng(s).normal(size=(h, w, c)).astype(np.float32)


# one patch through either way: the batched matrices (a batch of one) or the per-patch ops
WAYS = {"batched": augment, "per_patch": augment_patch.augment}


@pytest.fixture(params=sorted(WAYS))
def way(request):
    return WAYS[request.param]


def run(x, cfg, i=0, way=augment, **kw):
    return way(x, seed(i), cfg, **kw).numpy()


@pytest.mark.parametrize("c", [2, 13, 15])
@pytest.mark.parametrize("hw", [(16, 16), (32, 32), (16, 24)])
def test_shape_and_dtype_kept_with_every_op(c, hw, way):
    out = way(noise(*hw, c), seed(c), ALL_ON, s1_channels=2, s1_db_std=[3.0, 4.0])
    assert out.shape == (*hw, c) and out.dtype == tf.float32
    assert np.all(np.isfinite(out.numpy()))
    batch = augment_batch(np.stack([noise(*hw, c, s) for s in range(5)]), seed(c), ALL_ON, 2, [3.0, 4.0])
    assert batch.shape == (5, *hw, c) and np.all(np.isfinite(batch.numpy()))


def test_geometric_ops_keep_band_order(way):
    x = np.broadcast_to(np.arange(5, dtype=np.float32), (16, 16, 5))
    for i in range(4):
        np.testing.assert_allclose(run(x, GEOMETRIC, i, way=way), x, atol=1e-5)


def test_photometric_ops_move_band_means_within_brightness(way):
    cfg = AugmentConfig(crop=False, flip=False, rotate90=False, jitter_prob=1.0, blur_prob=0.0)
    x = noise(16, 16, 6) + np.arange(6, dtype=np.float32)
    moved = [run(x, cfg, i, way=way).mean((0, 1)) - x.mean((0, 1)) for i in range(4)]
    assert np.max(np.abs(moved)) <= cfg.brightness + 1e-5
    assert np.max(np.abs(moved)) > 0.01  # it did something


def test_stacked_s1_s2_stay_aligned(way):
    s2 = noise(32, 32, 2)
    x = np.concatenate([s2, s2], axis=-1)  # channels 0..1 (S1) copy channels 2..3 (S2)
    for i in range(4):
        out = run(x, GEOMETRIC, i, way=way)
        np.testing.assert_array_equal(out[..., :2], out[..., 2:])
        assert not np.allclose(out, x)


def dihedral(x):
    rots = [np.rot90(x, k, axes=(0, 1)) for k in range(4)]
    return rots + [r[::-1] for r in rots]


def test_flip_and_rot90_give_an_exact_dihedral_transform(way):
    x = noise(16, 16, 3)
    cfg = AugmentConfig(crop=False, jitter_prob=0.0, blur_prob=0.0)
    seen = set()
    for i in range(12):
        out = run(x, cfg, i, way=way)
        hits = [j for j, t in enumerate(dihedral(x)) if np.array_equal(out, t)]
        assert hits, f"seed {i}: not a dihedral transform"
        seen.add(hits[0])
    assert len(seen) > 2


def test_same_seed_bit_identical_different_seeds_differ(way):
    x, kw = noise(16, 16, 4), dict(s1_channels=2, s1_db_std=[3.0, 4.0])
    np.testing.assert_array_equal(run(x, ALL_ON, 1, **kw, way=way), run(x, ALL_ON, 1, **kw, way=way))
    assert not np.allclose(run(x, ALL_ON, 1, **kw, way=way), run(x, ALL_ON, 2, **kw, way=way))
    if way is augment:
        v1, v2 = (v[0] for v in two_views(x[None], seed(1), ALL_ON, **kw))
    else:
        v1, v2 = augment_patch.two_views(x, seed(1), ALL_ON, **kw)
    assert v1.shape == v2.shape == x.shape and not np.allclose(v1, v2)


def test_rotations_alone_are_rotations_and_flips_alone_are_flips():
    x = noise(16, 16, 3)
    rot = augment_batch(np.stack([x] * 16), seed(4), AugmentConfig(crop=False, flip=False, jitter_prob=0.0,
                                                                     blur_prob=0.0)).numpy()
    flips = augment_batch(np.stack([x] * 16), seed(4), AugmentConfig(crop=False, rotate90=False, jitter_prob=0.0,
                                                                       blur_prob=0.0)).numpy()
    rotations = [np.rot90(x, k, axes=(0, 1)) for k in range(4)]
    mirrors = [x, x[::-1], x[:, ::-1], x[::-1, ::-1]]
    for seen, allowed in ((rot, rotations), (flips, mirrors)):
        kinds = {next(j for j, t in enumerate(allowed) if np.array_equal(o, t)) for o in seen}  # each one of them
        assert len(kinds) >= 3
    wide = augment_batch(np.stack([noise(8, 12, 2)] * 8), seed(4), AugmentConfig(crop=False, flip=False,
                                                                                   jitter_prob=0.0, blur_prob=0.0))
    for o in wide.numpy():  # non-square: only the half turn
        assert np.array_equal(o, noise(8, 12, 2)) or np.array_equal(o, noise(8, 12, 2)[::-1, ::-1])


def test_every_patch_of_a_batch_draws_its_own_transform():
    x = noise(16, 16, 3)
    cfg = AugmentConfig(crop=False, jitter_prob=0.0, blur_prob=0.0)
    out = augment_batch(np.stack([x] * 16), seed(3), cfg).numpy()
    kinds = {[j for j, t in enumerate(dihedral(x)) if np.array_equal(o, t)][0] for o in out}
    assert len(kinds) >= 4  # 16 draws from 8 transforms


@pytest.mark.parametrize("size", [16, aug.DENSE_MAX + 8])  # batched matrices; per patch
def test_views_dataset_reproducible_and_rerandomized(size):
    ds = tf.data.Dataset.from_tensor_slices(np.stack([noise(size, size, 3, s) for s in range(8)]))
    ds = ds.batch(2, drop_remainder=True)

    def epoch(d):
        return [(e["view1"], e["view2"]) for e in d.as_numpy_iterator()]

    a = views_dataset(ds, AugmentConfig(), seed=7)
    first, second = epoch(a), epoch(a)
    again = epoch(views_dataset(ds, AugmentConfig(), seed=7))
    assert len(first) == 4 and first[0][0].shape == (2, size, size, 3)
    assert all(not np.allclose(v1, v2) for v1, v2 in first)
    for (p1, p2), (q1, q2) in zip(first, again):  # same seed, fresh dataset: same first epoch
        np.testing.assert_array_equal(p1, q1)
        np.testing.assert_array_equal(p2, q2)
    assert not np.allclose(first[0][0], second[0][0])  # each epoch draws new views
    merged = epoch(views_dataset(ds, AugmentConfig(), seed=7, batch=4))  # chunks of 2, batches of 4
    assert len(merged) == 2 and merged[0][0].shape == (4, size, size, 3)
    np.testing.assert_array_equal(merged[0][0], np.concatenate([again[0][0], again[1][0]]))


@pytest.mark.parametrize("size", [16, 72])
def test_views_need_batches_of_a_static_size(size):
    ds = tf.data.Dataset.from_tensor_slices(np.zeros((3, size, size, 2), np.float32)).batch(2)  # last one short
    with pytest.raises(ValueError, match="drop_remainder"):
        views_dataset(ds, AugmentConfig(), seed=0)


def test_speckle_only_on_s1_with_gamma_db_statistics(way):
    looks, std = 4.0, np.array([2.0, 4.0], np.float32)
    cfg = AugmentConfig(
        crop=False, flip=False, rotate90=False, jitter_prob=0.0, blur_prob=0.0, speckle_looks=looks
    )
    out = run(np.zeros((64, 64, 4), np.float32), cfg, s1_channels=2, s1_db_std=std, way=way)
    np.testing.assert_array_equal(out[..., 2:], 0.0)
    # 10 log10 G, G ~ Gamma(L, 1/L): mean (10/ln10)(digamma L - ln L), var (10/ln10)^2 trigamma L
    k = 10 / math.log(10)
    mean_db = k * (float(tf.math.digamma(looks)) - math.log(looks))
    std_db = k * math.sqrt(float(tf.math.polygamma(1.0, looks)))
    db = out[..., :2] * std  # undo the 1/std scaling
    se = std_db / 64  # standard error of a mean over 4096 pixels
    np.testing.assert_allclose(db.mean((0, 1)), mean_db, atol=4 * se)
    np.testing.assert_allclose(db.std((0, 1)), std_db, rtol=0.05)


def test_everything_off_is_identity(way):
    x = noise(16, 16, 4)
    np.testing.assert_array_equal(run(x, OFF, s1_channels=2, way=way), x)  # looks=0: no std needed


def test_blur_keeps_constant_constant_and_smooths_noise(way):
    cfg = AugmentConfig(
        crop=False, flip=False, rotate90=False, jitter_prob=0.0, blur_prob=1.0, blur_sigma=(1, 1.5)
    )
    np.testing.assert_allclose(run(np.full((16, 16, 2), 3.0, np.float32), cfg, way=way), 3.0, atol=1e-5)
    x = noise(32, 32, 2)
    assert run(x, cfg, way=way).var() < 0.5 * x.var()


@pytest.mark.parametrize(
    "bad",
    [
        dict(crop_scale=(0.0, 1.0)),
        dict(crop_scale=(0.8, 0.5)),
        dict(crop_scale=(0.5, 1.2)),
        dict(jitter_prob=1.5),
        dict(blur_prob=-0.1),
        dict(brightness=-1.0),
        dict(contrast=1.0),
        dict(blur_sigma=(0.0, 1.0)),
        dict(blur_sigma=(2.0, 1.0)),
        dict(speckle_looks=0.5),
        dict(speckle_looks=-1.0),
    ],
)
def test_bad_config_raises(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)


def test_speckle_needs_matching_s1_db_std():
    cfg, x = AugmentConfig(speckle_looks=1.0), noise(16, 16, 4)
    with pytest.raises(ValueError, match="s1_db_std"):
        augment(x, seed(0), cfg, s1_channels=2)
    with pytest.raises(ValueError, match="s1_db_std"):
        augment(x, seed(0), cfg, s1_channels=2, s1_db_std=[3.0])


def reflect_blur(x, k):
    """Reference: separable convolution of x [H, W, C] with taps k after REFLECT padding."""
    r = len(k) // 2
    h, w = x.shape[:2]
    p = np.pad(x.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="reflect")  # TF's REFLECT
    rows = sum(k[j] * p[j:j + h] for j in range(len(k)))
    return sum(k[j] * rows[:, j:j + w] for j in range(len(k)))


def test_blur_matrices_equal_a_reflect_padded_gaussian_reference():
    x = np.random.default_rng(9).normal(size=(16, 12, 3)).astype(np.float32)
    by, bx = aug._blur(tf.constant([3, 4]), 1, 16, 12, 1.0, (1.0, 1.0))  # sigma fixed at 1 px: 3 px radius
    got = aug._apply(by, bx, x[None])[0].numpy()
    t = np.arange(-3, 4)
    k = np.exp(-0.5 * t**2)
    np.testing.assert_allclose(got, reflect_blur(x, k / k.sum()), rtol=1e-5, atol=1e-5)


def test_per_patch_blur_equals_the_same_reference():
    x = np.random.default_rng(9).normal(size=(16, 12, 3)).astype(np.float32)
    got = augment_patch._blur(tf.constant(x), tf.constant([3, 4]), (1.0, 1.0)).numpy()
    t = np.arange(-3, 4)
    k = np.exp(-0.5 * t**2)
    np.testing.assert_allclose(got, reflect_blur(x, k / k.sum()), rtol=1e-5, atol=1e-5)


def test_crop_matrices_sample_as_crop_and_resize():
    n, x = 8, np.stack([noise(24, 24, 3, s) for s in range(8)])
    gy, gx = aug._crop(seed(5), n, 24, 24, (0.25, 1.0))
    y0, ch, x0, cw = augment_patch.crop_window(seed(5), (0.25, 1.0), [n])  # the same draws as _crop
    boxes = tf.stack([y0, x0, y0 + ch, x0 + cw], axis=1)
    want = tf.image.crop_and_resize(x, boxes, tf.range(n), [24, 24]).numpy()
    assert np.abs(want - x).max() > 0.1  # the crops did something
    np.testing.assert_allclose(aug._apply(gy, gx, x).numpy(), want, atol=2e-6)


def test_folded_chain_equals_the_operations_applied_in_order():
    """Matrices and the jitter moved after the blur give what crop, flips, rotation, speckle,
    jitter and blur give one after another (each op has its own sub-seed, so the geometric-only
    config draws the same geometry)."""
    n, std = 6, np.array([3.0, 4.0], np.float32)
    x = np.stack([noise(16, 16, 5, s) + np.arange(5, dtype=np.float32) for s in range(n)])
    cfg = AugmentConfig(jitter_prob=0.5, blur_prob=0.5, speckle_looks=4.0)
    got = augment_batch(x, seed(8), cfg, 2, std).numpy()
    geo = augment_batch(x, seed(8), GEOMETRIC).numpy().astype(np.float64)
    s = tf.random.experimental.stateless_split(seed(8), aug.N_SEEDS)
    speckle = augment_patch.speckle_db(s[4], [n, 16, 16, 2], 4.0, std).numpy()
    gain, shift = (v.numpy() for v in aug._jitter(s[5], n, 5, 0.5, cfg.brightness, cfg.contrast))
    b = tf.random.experimental.stateless_split(s[6], 2)  # _blur's coin and sigma
    on, sigma = aug._coin(b[0], n, 0.5).numpy(), aug._uniform(b[1], [n], *cfg.blur_sigma).numpy()
    assert 0 < on.sum() < n and 0 < (gain != 1).any(axis=1).sum() < n  # both kinds of patch
    r = min(math.ceil(3 * cfg.blur_sigma[1]), 15)
    for i in range(n):
        z = geo[i].copy()
        z[..., :2] += speckle[i]
        mean = z.mean((0, 1))
        z = (z - mean) * gain[i] + mean + shift[i]
        if on[i]:
            k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma[i]) ** 2)
            z = reflect_blur(z, k / k.sum())
        np.testing.assert_allclose(got[i], z, atol=2e-4)
