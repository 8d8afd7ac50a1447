"""SimCLR-style augmentations for normalised Sentinel-1 / Sentinel-2 patches, a batch at a time.

Operations, in the order they act on each patch [H, W, C] of a batch [N, H, W, C], with
parameters drawn independently for every patch:

1. random resized crop (area fraction ``crop_scale``, aspect ratio 3/4..4/3), resampled back to
   H x W bilinearly at the sampling points ``tf.image.crop_and_resize`` uses;
2. horizontal and vertical flips (p = 0.5 each);
3. rotation by k * 90 degrees, k uniform in 0..3 (only k in {0, 2} for non-square patches,
   since odd k would swap H and W);
4. SAR speckle on the first ``s1_channels`` channels (optional): intensity x Gamma(L, 1/L), i.e.
   ``10 log10(G) / std_dB`` added to the normalised dB band;
5. per-band colour jitter with probability ``jitter_prob``: contrast around the band's spatial
   mean, then an additive brightness shift;
6. Gaussian blur with probability ``blur_prob`` (separable, reflect padding).

Why these: SimCLR's recipe is crop + colour distortion (+ blur). Crops and the dihedral group
carry over unchanged (overhead imagery has no canonical orientation), and geometric ops act on
all channels at once so stacked S1 + S2 stay aligned pixel for pixel. RGB colour ops (hue,
saturation, grayscale) have no meaning for 13 spectral bands or for SAR backscatter, so colour
jitter becomes an independent affine change per band; speckle is the noise SAR actually has.

How, and why so: crop, flips and blur are each a linear map along one image axis, so the whole
chain is ``Ly @ x @ Lx.T`` per channel, with ``Ly = blur_y @ flip_y @ crop_y`` ([H, H]) and the
same along x: two batched matrix products for a whole batch instead of a dozen small ops per
patch (several times faster on a CPU, where SimCLR's input is made). An odd rotation is a
transpose after flips. The jitter, an affine map per band, is applied last: the blur keeps
constants (normalised kernel, reflect padding), so it commutes with the jitter as long as the
band means are those of the unblurred patch, which come from the column sums of the matrices.
With every geometric op and the blur off, patches are not resampled at all; with crop off,
the flips and rotations are exact (permutation matrices). The matrices' work grows with the
cube of the patch side, per-patch ops' with its square: ``views_dataset`` draws patches larger
than ``DENSE_MAX`` one at a time (``senclr.models.augment_patch``: the same operations and
distributions through ``tf.image`` ops, other random numbers).

Determinism: only stateless random ops are used. A batch's [2] seed is split into one sub-seed
per operation (a fixed number, whether or not the op is on, so toggling one op leaves the draws
of the others unchanged); equal seeds and equal batches give bit-identical output in any thread
or map order. ``views_dataset`` takes one seed per batch from ``tf.data.Dataset.random``, which
is reproducible for a given seed (and global ``tf.random.set_seed``, which it also depends on)
and, with ``rerandomize_each_iteration``, differs every epoch, for ``repeat()`` and for each
new iterator alike.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from senclr.models import augment_patch
from senclr.models.augment_config import AugmentConfig  # noqa: F401  (re-exported)
from senclr.models.augment_patch import N_SEEDS, blur_radius, check_s1, crop_window, gaussian_taps, seeded_map, speckle_db
from senclr.models.augment_patch import uniform as _uniform

# Largest patch side for the batched matrices. Their work grows with the cube of the side, that
# of per-patch ops with its square; against per-patch views in one run (2 cores): 3x as fast at
# 32 px, 1.4x at 64, 0.8x at 128 (docs/performance.md). Larger patches go per patch.
DENSE_MAX = 64


def _coin(seed, n, p):
    return _uniform(seed, [n]) < p


def _resample(start, extent, size: int):
    """[N, size, size]: bilinear resampling of the window [start, start + extent] (fractions of
    the axis, [N] each) back to ``size`` pixels, at ``tf.image.crop_and_resize``'s points."""
    # crop_and_resize's own arithmetic, so the weights match it to the last bits
    step = ((start + extent) - start) * (size - 1) / (size - 1) if size > 1 else tf.zeros_like(start)
    pos = start[:, None] * (size - 1) + tf.range(size, dtype=tf.float32)[None] * step[:, None]
    pos = tf.clip_by_value(pos, 0.0, size - 1.0)
    top = tf.floor(pos)
    lerp = (pos - top)[..., None]
    top = tf.cast(top, tf.int32)
    return tf.one_hot(top, size) * (1.0 - lerp) + tf.one_hot(tf.minimum(top + 1, size - 1), size) * lerp


def _crop(seed, n, h: int, w: int, scale):
    """Resampling matrices ([N, H, H], [N, W, W]) of random resized crops."""
    y0, ch, x0, cw = crop_window(seed, scale, [n])
    return _resample(y0, ch, h), _resample(x0, cw, w)


def _flip(m, flag):
    """Rows of m [N, S, S] reversed (output pixel order) where flag [N] is set."""
    return tf.where(flag[:, None, None], tf.reverse(m, axis=[1]), m)


def _dihedral(seeds, n, square: bool, cfg):
    """(flip_y, flip_x, transpose), [N] bools each (transpose None if it cannot happen): the flips
    of step 2 and the rotation of step 3 as flips followed by an optional transpose."""
    false = tf.zeros([n], tf.bool)
    fx = _coin(seeds[1], n, 0.5) if cfg.flip else false
    fy = _coin(seeds[2], n, 0.5) if cfg.flip else false
    if not cfg.rotate90:
        return fy, fx, None
    k = tf.random.stateless_uniform([n], seeds[3], 0, 4 if square else 2, dtype=tf.int32)
    if not square:  # k = 0 or a half turn (both flips)
        return tf.math.logical_xor(fy, k == 1), tf.math.logical_xor(fx, k == 1), None
    # rot90^1 = T . flip_x,  rot90^2 = flip_y . flip_x,  rot90^3 = T . flip_y
    return (tf.math.logical_xor(fy, k >= 2), tf.math.logical_xor(fx, (k == 1) | (k == 2)), k % 2 == 1)


def _reflect_taps(size: int, radius: int) -> np.ndarray:
    """[2r+1, size, size] 0/1: tap t of output pixel i reads pixel reflect(i + t - r) (TF's REFLECT)."""
    idx = np.abs(np.arange(size)[:, None] + np.arange(-radius, radius + 1)[None])
    idx = np.where(idx > size - 1, 2 * (size - 1) - idx, idx)
    taps = np.zeros((2 * radius + 1, size, size), np.float32)
    for t in range(2 * radius + 1):
        taps[t, np.arange(size), idx[:, t]] = 1.0
    return taps


def _blur(seed, n, h: int, w: int, prob: float, sigma_range):
    """Blur matrices ([N, H, H], [N, W, W]): a reflect-padded Gaussian of std ~ U(sigma_range) px
    where the patch's coin (p = prob) says so, else the identity."""
    radius = blur_radius(sigma_range, h, w)
    s = tf.random.experimental.stateless_split(seed, 2)
    k = gaussian_taps(_uniform(s[1], [n], *sigma_range), radius)
    on = _coin(s[0], n, prob)[:, None, None]
    return tuple(tf.where(on, tf.einsum("nt,tij->nij", k, _reflect_taps(size, radius)), tf.eye(size))
                 for size in (h, w))


def _apply(ly, lx, x, transpose=None):
    """ly @ x @ lx.T for each patch and channel of x [N, H, W, C]; transposed (H <-> W) where
    ``transpose`` [N] is set (square patches only)."""
    _, h, w, c = x.shape
    p = tf.matmul(ly, tf.reshape(x, [-1, h, w * c]))  # along y: [N, H, W*C]
    p = tf.reshape(tf.transpose(tf.reshape(p, [-1, h, w, c]), [0, 2, 1, 3]), [-1, w, h * c])
    q = tf.reshape(tf.matmul(lx, p), [-1, w, h, c])  # along x, already transposed: [N, W, H, C]
    back = tf.transpose(q, [0, 2, 1, 3])
    return back if transpose is None else tf.where(transpose[:, None, None, None], q, back)


def _jitter(seed, n, c: int, prob: float, brightness: float, contrast: float):
    """Per-band (gain, shift), [N, C] each; (1, 0) for patches whose coin (p = prob) says no."""
    s = tf.random.experimental.stateless_split(seed, 3)
    on = _coin(s[0], n, prob)[:, None]
    gain = tf.where(on, _uniform(s[1], [n, c], 1.0 - contrast, 1.0 + contrast), 1.0)
    shift = tf.where(on, _uniform(s[2], [n, c], -brightness, brightness), 0.0)
    return gain, shift


def augment_batch(x, seed, cfg: AugmentConfig, s1_channels: int = 0, s1_db_std=None) -> tf.Tensor:
    """One augmented view of every normalised patch of x [N, H, W, C], float32, same shape."""
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank != 4 or not x.shape[1:].is_fully_defined():
        raise ValueError(f"augment_batch needs patches [N, H, W, C] with static H, W, C, got {x.shape}")
    s1_db_std = check_s1(cfg, x.shape[-1], s1_channels, s1_db_std)
    _, h, w, c = x.shape
    n = tf.shape(x)[0]
    s = tf.random.experimental.stateless_split(seed, N_SEEDS)
    by, bx = _blur(s[6], n, h, w, cfg.blur_prob, cfg.blur_sigma) if cfg.blur_prob > 0 else (None, None)
    resample = cfg.crop or cfg.flip or cfg.rotate90 or by is not None
    if resample:  # geometry (gy, gx), then the blur, as two matrices
        eye = (tf.eye(h, batch_shape=[n]), tf.eye(w, batch_shape=[n]))
        gy, gx = _crop(s[0], n, h, w, cfg.crop_scale) if cfg.crop else eye
        fy, fx, transpose = _dihedral(s, n, h == w, cfg)
        gy, gx = _flip(gy, fy), _flip(gx, fx)
        y = _apply(gy if by is None else by @ gy, gx if bx is None else bx @ gx, x, transpose)
    else:
        y = x
    if s1_db_std is None and cfg.jitter_prob <= 0:
        return y
    # band means of the unblurred view: the mean of gy @ x @ gx.T weighs pixel (a, b) by the
    # column sums gy[:, a] and gx[:, b] (a transpose leaves means alone)
    if resample:
        rows = tf.matmul(tf.reduce_sum(gy, 1)[:, None], tf.reshape(x, [-1, h, w * c]))  # [N, 1, W*C]
        mean = tf.matmul(tf.reduce_sum(gx, 1)[:, None], tf.reshape(rows, [-1, w, c]))[:, 0] / (h * w)
    else:
        mean = tf.reduce_mean(x, axis=(1, 2))
    if s1_db_std is not None:
        noise = speckle_db(s[4], [n, h, w, s1_channels], cfg.speckle_looks, s1_db_std)
        mean += tf.pad(tf.reduce_mean(noise, axis=(1, 2)), [[0, 0], [0, c - s1_channels]])
        noise = noise if by is None else _apply(by, bx, noise)  # the blur acts on the noise too
        y = tf.concat([y[..., :s1_channels] + noise, y[..., s1_channels:]], axis=-1)
    if cfg.jitter_prob <= 0:
        return y
    gain, shift = _jitter(s[5], n, c, cfg.jitter_prob, cfg.brightness, cfg.contrast)
    return y * gain[:, None, None] + (mean * (1.0 - gain) + shift)[:, None, None]  # (y - mean) * gain + mean + shift


def augment(x, seed, cfg: AugmentConfig, s1_channels: int = 0, s1_db_std=None) -> tf.Tensor:
    """One augmented view of one patch x [H, W, C] (a batch of one for ``augment_batch``)."""
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank != 3:
        raise ValueError(f"augment needs one patch [H, W, C], got {x.shape}; batches: augment_batch")
    return augment_batch(x[None], seed, cfg, s1_channels, s1_db_std)[0]


def two_views(x, seed, cfg: AugmentConfig, s1_channels: int = 0, s1_db_std=None):
    """Two independent augmentations of every patch of x [N, H, W, C]: one batch of 2N patches."""
    n = tf.shape(x)[0]
    both = augment_batch(tf.concat([x, x], axis=0), seed, cfg, s1_channels, s1_db_std)
    return both[:n], both[n:]


def views_dataset(batches, cfg: AugmentConfig, seed: int, s1_channels: int = 0, s1_db_std=None,
                  batch: int | None = None):
    """Dataset of patch batches [N, H, W, C] (N static) -> dataset of {"view1", "view2"}
    batches of ``batch`` patches (default N), fresh seeds every epoch. Patches larger than
    DENSE_MAX go through ``augment_patch``."""
    n, h, w, _ = batches.element_spec.shape
    if n is None:
        raise ValueError("views_dataset needs batches of a static size (batch with drop_remainder=True)")
    batch = batch or n
    if max(h, w) > DENSE_MAX:
        each = augment_patch.views_dataset(batches.unbatch(), cfg, seed, s1_channels, s1_db_std)
        return each.batch(batch, drop_remainder=True)

    def views(x, s):
        v1, v2 = two_views(x, s, cfg, s1_channels, s1_db_std)
        return {"view1": v1, "view2": v2}

    out = seeded_map(batches, seed, views)
    return out if batch == n else out.rebatch(batch, drop_remainder=True)
