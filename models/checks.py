"""Checks of ``senclr train``'s input that need no TensorFlow, so bad input fails at once.

The CLI runs ``preflight`` before TensorFlow is imported; ``train`` runs it again for callers
that use the Python API directly. Nothing here writes anything.
"""

from __future__ import annotations

import os

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.dataset import band_indices, count
from senclr.errors import InputError
from senclr.models import run_state
from senclr.models import strategy as strategy_lib
from senclr.models.spec import (BACKBONES, LR_SCALINGS, METHODS, MODALITIES, OPTIMIZERS, PRECISIONS,
                                TrainSpec)


def _choice(value, valid, flag: str) -> None:
    if value not in valid:
        raise InputError(f"unknown {flag} {value!r}: use one of {', '.join(valid)}")


def check_spec(spec: TrainSpec) -> None:
    """InputError naming the first unusable setting and what would be valid."""
    _choice(spec.method, METHODS, "--method")
    _choice(spec.backbone, BACKBONES, "--backbone")
    _choice(spec.modality, MODALITIES, "--modality")
    _choice(spec.optimizer, OPTIMIZERS, "--optimizer")
    _choice(spec.lr_scaling, LR_SCALINGS, "--lr-scaling")
    _choice(spec.precision, tuple(PRECISIONS), "--precision")
    strategy_lib.check(spec.strategy, spec.tpu)
    rules = [
        (spec.epochs >= 1, f"epochs must be >= 1, got {spec.epochs}"),
        (spec.batch_size >= 2, f"batch size must be >= 2 (a pair needs another pair as negative), got {spec.batch_size}"),
        (spec.learning_rate > 0, f"learning rate must be > 0, got {spec.learning_rate}"),
        (spec.temperature > 0, f"temperature must be > 0 (0.1 is usual), got {spec.temperature}"),
        (spec.width >= 1, f"width must be >= 1, got {spec.width}"),
        (spec.proj_dim >= 1, f"projection dim must be >= 1, got {spec.proj_dim}"),
        (spec.head_layers >= 1, f"--head-layers must be >= 1, got {spec.head_layers}"),
        (0 <= spec.warmup_epochs < spec.epochs,
         f"--warmup-epochs must be >= 0 and below --epochs ({spec.epochs}), got {spec.warmup_epochs}"),
        (spec.weight_decay >= 0, f"--weight-decay must be >= 0, got {spec.weight_decay}"),
        (spec.optimizer != "adam" or spec.weight_decay == 0,
         "--optimizer adam has no weight decay: use adamw or lars with --weight-decay"),
        (spec.checkpoint_steps >= 0, f"--checkpoint-steps must be >= 0 (0: every epoch), got {spec.checkpoint_steps}"),
        (spec.steps_per_execution >= 1, f"--steps-per-execution must be >= 1, got {spec.steps_per_execution}"),
    ]
    for ok, message in rules:
        if not ok:
            raise InputError(message)


def resolve_bands(manifest: dict, sensor: str, wanted) -> list[str]:
    """Band names to train on: all of the dataset's when ``wanted`` is None; InputError if absent."""
    if wanted is not None and not list(wanted):
        raise InputError(f"no {sensor.upper()} bands given; name at least one, or leave the option out for all")
    idx = band_indices(manifest, sensor, None if wanted is None else list(wanted))
    return [manifest["bands"][sensor][i] for i in idx]


def check_split_size(manifest: dict, data: str, batch_size: int, replicas: int = 1) -> int:
    """Records in the train split, which must fill at least one batch evenly split over replicas."""
    n = count(manifest, "train")
    if n < batch_size:
        raise InputError(
            f"{data} has {n} training pairs, fewer than one batch of {batch_size}; "
            f"lower --batch-size or build a larger dataset"
        )
    if batch_size % replicas:
        raise InputError(f"global batch size {batch_size} does not split evenly over {replicas} replicas; "
                         f"use a multiple of {replicas}")
    return n


def preflight(data: str, spec: TrainSpec) -> tuple[dict, list[str], list[str]]:
    """(manifest, S1 bands, S2 bands) once every argument is known to be usable."""
    check_spec(spec)
    m = manifest_lib.read(data, kind="dataset")
    # The manifest reader already refused empty band lists and bands without statistics.
    b1, b2 = resolve_bands(m, "s1", spec.s1_bands), resolve_bands(m, "s2", spec.s2_bands)
    check_split_size(m, data, spec.batch_size, strategy_lib.worker_count())
    return m, b1, b2


def dataset_uri(data: str) -> str:
    return data if storage.is_gcs(data) else os.path.abspath(data)


def preflight_run(data: str, model_dir: str, spec: TrainSpec, overwrite: bool) -> tuple:
    """``preflight`` plus the model dir: (manifest, spec with bands resolved, fingerprint, state),
    state "fresh" or "resume" (non-chief workers always resume: the chief owns the folder)."""
    m, b1, b2 = preflight(data, spec)
    spec = spec.replace(s1_bands=tuple(b1), s2_bands=tuple(b2))
    fingerprint = spec.fingerprint(dataset_uri(data))
    chief = strategy_lib.is_chief()
    state = run_state.check_model_dir(model_dir, overwrite, fingerprint) if chief else "resume"
    return m, spec, fingerprint, state
