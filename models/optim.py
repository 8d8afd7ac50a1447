"""Optimizer, learning-rate scaling and schedule helpers for ``senclr train``.

Learning-rate scaling follows SimCLR's two conventions for a base rate and a global batch B:

* ``"linear"``: ``base_lr * B / 256`` (Goyal et al.'s rule; SimCLR's default, base 0.3 with LARS);
* ``"sqrt"``: ``base_lr * sqrt(B)`` (SimCLR's choice for small batches / long runs, base 0.075);
* ``"none"``: ``base_lr`` as given.
"""

from __future__ import annotations

import math

import keras

from senclr.models.lars import LARS
from senclr.models.spec import LR_SCALINGS, OPTIMIZERS


def scaled_learning_rate(base_lr: float, global_batch: int, scaling: str) -> float:
    """The peak learning rate for ``global_batch`` under one of ``LR_SCALINGS``."""
    if global_batch <= 0:
        raise ValueError(f"global_batch must be > 0, got {global_batch}")
    if scaling == "linear":
        return base_lr * global_batch / 256.0
    if scaling == "sqrt":
        return base_lr * math.sqrt(global_batch)
    if scaling == "none":
        return float(base_lr)
    raise ValueError(f"unknown learning-rate scaling {scaling!r}; "
                     f"choose one of {', '.join(LR_SCALINGS)}")


def warmup_cosine(peak_lr: float, total_steps: int, warmup_steps: int):
    """A ``LearningRateSchedule``: linear warm-up 0 -> ``peak_lr`` over ``warmup_steps``, then
    cosine decay to 0 at ``total_steps`` (and 0 after).

    Keras' ``CosineDecay`` does exactly this when started at 0 with a warm-up target: its warm-up
    is ``peak * step / warmup_steps`` and its decay runs over ``decay_steps`` *after* the warm-up
    (clamped there), so ``decay_steps = total_steps - warmup_steps``.
    """
    if peak_lr < 0:
        raise ValueError(f"peak_lr must be >= 0, got {peak_lr}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps}: "
                         "the cosine decay needs at least one step after the warm-up")
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=total_steps - warmup_steps,
        warmup_target=float(peak_lr),
        warmup_steps=warmup_steps,
    )


def build_optimizer(name: str, schedule, weight_decay: float, variables=None):
    """One of ``OPTIMIZERS`` on ``schedule`` (a float or a ``LearningRateSchedule``).

    For ``"adamw"`` pass the model's trainable ``variables``: those of rank <= 1 (batch-norm
    gamma/beta, biases) are excluded from weight decay, as LARS excludes them itself.
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if name == "lars":
        return LARS(schedule, momentum=0.9, weight_decay=weight_decay, trust_coefficient=0.001)
    if name == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
        # By object: the rule is about rank, which no name pattern expresses (Keras' var_names
        # is a regex on the bare name, "gamma" or "bias", and misses other rank-1 variables).
        opt.exclude_from_weight_decay(var_list=[v for v in variables or [] if len(v.shape) <= 1])
        return opt
    if name == "adam":
        if weight_decay > 0:
            raise ValueError(f"adam has no weight decay (got weight_decay={weight_decay}); "
                             "use adamw or lars")
        return keras.optimizers.Adam(schedule)
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
