"""SimCLR's augmentations drawn one patch at a time: the path for patches larger than
``senclr.models.augment.DENSE_MAX`` pixels, where the batched matrices of ``senclr.models.augment``
cost more than these ops (their work grows with the cube of the patch side, these with its
square). Same operations, order and distributions as there; other random numbers.

Operations, their order and why these: see ``senclr.models.augment``.

Determinism: only stateless random ops are used. The [2] seed is split into one sub-seed per
operation (a fixed number, whether or not the op is on, so toggling one op leaves the draws of
the others unchanged); equal seeds give bit-identical output in any thread or map order.
(Eager and graph results may differ in the last bit: Grappler's arithmetic optimizer
re-associates the float maths; tf.data always runs the graph, so pipelines are unaffected.)
``views_dataset`` takes its per-element seeds from ``tf.data.Dataset.random``, which is
reproducible for a given seed (and global ``tf.random.set_seed``, which it also depends on)
and, with ``rerandomize_each_iteration``, differs every epoch, for ``repeat()`` and for each
new iterator alike.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from senclr.models.augment_config import AugmentConfig

LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))  # crop aspect ratios (width / height), log-uniform
N_SEEDS = 7  # one each: crop, flip_lr, flip_ud, rot90, speckle, jitter, blur
DB_PER_NEPER = 10.0 / math.log(10.0)  # ln -> dB


def check_s1(cfg: AugmentConfig, channels: int, s1_channels: int, s1_db_std):
    """``s1_db_std`` as float32 [s1_channels] when speckle is on, None when it is off; a
    ValueError saying what is wrong otherwise."""
    if not 0 <= s1_channels <= channels:
        raise ValueError(f"s1_channels={s1_channels} outside 0..{channels}")
    if not (cfg.speckle_looks > 0 and s1_channels > 0):
        return None
    if s1_db_std is None:
        raise ValueError("speckle_looks > 0 needs s1_db_std (dB std of each S1 band)")
    s1_db_std = np.asarray(s1_db_std, np.float32).reshape(-1)
    if s1_db_std.shape != (s1_channels,) or not np.all(s1_db_std > 0):
        raise ValueError(f"s1_db_std must be {s1_channels} positive values, got {s1_db_std}")
    return s1_db_std


def uniform(seed, shape=(), lo=0.0, hi=1.0):
    return tf.random.stateless_uniform(shape, seed, lo, hi, dtype=tf.float32)


def crop_window(seed, scale, shape=()):
    """(y0, height, x0, width) of random resized crops, fractions of the patch, each of ``shape``."""
    s = tf.random.experimental.stateless_split(seed, 4)
    area = uniform(s[0], shape, *scale)
    ratio = tf.exp(uniform(s[1], shape, *LOG_RATIO))  # width / height, log-uniform
    h = tf.minimum(tf.sqrt(area / ratio), 1.0)
    w = tf.minimum(tf.sqrt(area * ratio), 1.0)
    return uniform(s[2], shape) * (1.0 - h), h, uniform(s[3], shape) * (1.0 - w), w


def blur_radius(sigma_range, h: int, w: int) -> int:
    """Taps each side of the blur kernel: 3 sigma, less than the patch (REFLECT pads once)."""
    return min(math.ceil(3 * sigma_range[1]), h - 1, w - 1)


def gaussian_taps(sigma, radius: int):
    """Normalised Gaussian taps [..., 2r+1] of std ``sigma`` [...] px."""
    t = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * tf.square(t / sigma[..., None]))
    return k / tf.reduce_sum(k, axis=-1, keepdims=True)


def speckle_db(seed, shape, looks: float, s1_db_std):
    """Multiplicative Gamma(L, 1/L) speckle of the S1 bands, in normalised dB: ``shape`` [..., S1]."""
    g = tf.random.stateless_gamma(shape, seed, alpha=looks, beta=looks)
    return tf.math.log(g) * (DB_PER_NEPER / s1_db_std)  # ln -> dB -> normalised units


def seeded_map(ds, seed: int, fn):
    """ds.map(fn(element, [2] seed)) in order, with fresh seeds every epoch."""
    # Dataset.random yields only 32 random bits (values in [0, 2**32)); pairing them with the
    # element index gives seeds that never collide within an epoch.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((ds.enumerate(), seeds)).map(
        lambda indexed, r: fn(indexed[1], tf.stack([r, indexed[0]])),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _crop(x, seed, scale):
    """Random resized crop, output size = input size."""
    y0, h, x0, w = crop_window(seed, scale)
    box = tf.stack([y0, x0, y0 + h, x0 + w])[None]
    out = tf.image.crop_and_resize(x[None], box, [0], tf.shape(x)[:2], method="bilinear")
    return out[0]


def _rot90(x, seed):
    square = x.shape[0] == x.shape[1]
    k = tf.random.stateless_uniform((), seed, 0, 4 if square else 2, dtype=tf.int32)
    return tf.image.rot90(x, k if square else 2 * k)


def _speckle(x, seed, looks, s1_db_std):
    """Multiplicative Gamma(L, 1/L) speckle on the S1 channels, expressed in normalised dB."""
    n = len(s1_db_std)
    return tf.concat([x[..., :n] + speckle_db(seed, x.shape[:2] + (n,), looks, s1_db_std), x[..., n:]], axis=-1)


def _jitter(x, seed, brightness, contrast):
    """Per-band contrast around the spatial mean, then a per-band brightness shift."""
    s = tf.random.experimental.stateless_split(seed, 2)
    c = x.shape[-1]
    gain = uniform(s[0], (c,), 1.0 - contrast, 1.0 + contrast)
    shift = uniform(s[1], (c,), -brightness, brightness)
    mean = tf.reduce_mean(x, axis=(0, 1))
    return x * gain + (mean * (1.0 - gain) + shift)  # == (x - mean) * gain + mean + shift


def _blur(x, seed, sigma_range):
    """Separable Gaussian blur; reflect padding keeps edges (and constant images) unchanged."""
    h, w, c = x.shape
    radius = blur_radius(sigma_range, h, w)
    k = gaussian_taps(uniform(seed, (), *sigma_range), radius)
    img = tf.pad(x, [[radius, radius], [radius, radius], [0, 0]], mode="REFLECT")[None]
    ky = tf.tile(tf.reshape(k, (-1, 1, 1, 1)), (1, 1, c, 1))
    kx = tf.reshape(ky, (1, -1, c, 1))
    img = tf.nn.depthwise_conv2d(img, ky, (1, 1, 1, 1), "VALID")
    return tf.nn.depthwise_conv2d(img, kx, (1, 1, 1, 1), "VALID")[0]


def _maybe(x, seed, prob, fn):
    """fn(x) with probability prob (seed drawn for the coin), else x."""
    if prob <= 0:
        return x
    s = tf.random.experimental.stateless_split(seed, 2)
    return tf.cond(uniform(s[0]) < prob, lambda: fn(x, s[1]), lambda: x)


def augment(x, seed, cfg: AugmentConfig, s1_channels: int = 0, s1_db_std=None) -> tf.Tensor:
    """One augmented view of a normalised patch x [H, W, C] (static shape), float32, same shape."""
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank != 3 or not x.shape.is_fully_defined():
        raise ValueError(f"augment needs one patch with static shape [H, W, C], got {x.shape}")
    s1_db_std = check_s1(cfg, x.shape[-1], s1_channels, s1_db_std)
    speckle = s1_db_std is not None
    s = tf.random.experimental.stateless_split(seed, N_SEEDS)
    if cfg.crop:
        x = _crop(x, s[0], cfg.crop_scale)
    if cfg.flip:
        x = tf.image.stateless_random_flip_left_right(x, s[1])
        x = tf.image.stateless_random_flip_up_down(x, s[2])
    if cfg.rotate90:
        x = _rot90(x, s[3])
    if speckle:
        x = _speckle(x, s[4], cfg.speckle_looks, s1_db_std)
    x = _maybe(x, s[5], cfg.jitter_prob, lambda v, r: _jitter(v, r, cfg.brightness, cfg.contrast))
    return _maybe(x, s[6], cfg.blur_prob, lambda v, r: _blur(v, r, cfg.blur_sigma))


def two_views(x, seed, cfg: AugmentConfig, s1_channels: int = 0, s1_db_std=None):
    """Two independent augmentations of x from two sub-seeds of seed."""
    s = tf.random.experimental.stateless_split(seed, 2)
    return tuple(augment(x, s[i], cfg, s1_channels, s1_db_std) for i in range(2))


def views_dataset(ds, cfg: AugmentConfig, seed: int, s1_channels: int = 0, s1_db_std=None):
    """Dataset of patches [H, W, C] -> dataset of {"view1", "view2"}, fresh seeds every epoch."""
    def views(x, s):
        v1, v2 = two_views(x, s, cfg, s1_channels, s1_db_std)
        return {"view1": v1, "view2": v2}

    return seeded_map(ds, seed, views)
