"""``senclr train``: contrastive pre-training from the command line.

TensorFlow is imported only when the command runs and every flag is checked first, so
``senclr train --help`` is fast and bad input fails before anything loads or is written.
"""

from __future__ import annotations

import click

from senclr.errors import InputError
from senclr.models.augment_config import AugmentConfig
from senclr.models.checks import preflight_run
from senclr.models.spec import (BACKBONES, LR_SCALINGS, METHODS, MODALITIES, OPTIMIZERS, PRECISIONS,
                                TrainSpec)
from senclr.models.strategy import STRATEGIES

AUG = AugmentConfig()


def parse_bands(value: str | None) -> tuple[str, ...] | None:
    """'VV, VH' -> ('VV', 'VH'); None (option not given) means every band of the dataset."""
    return None if value is None else tuple(b.strip() for b in value.split(",") if b.strip())


def parse_range(value: str, flag: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise InputError(f"{flag} takes two numbers LO,HI, got {value!r}") from None
    return lo, hi


def summary(result: dict) -> str:
    h = result["history"]
    lines = [f"final loss {h['loss'][-1]:.4f}, top-1 retrieval in batch {h['retrieval_acc'][-1]:.3f} "
             f"(chance about {1 / result['batch_size']:.3f}); {result['steps']} steps"]
    if "val_loss" in h:
        lines.append(f"validation loss {h['val_loss'][-1]:.4f}, retrieval {h['val_retrieval_acc'][-1]:.3f}")
    files = ", ".join(f"{k}_encoder.keras" for k in result["encoders"])
    lines.append(f"model saved to {result['model_dir']} ({files}, config.json; TensorBoard logs in logs/)")
    return "\n".join(lines)


def choice(values) -> click.Choice:
    return click.Choice(list(values), case_sensitive=False)


@click.command()
@click.option("--data", required=True, help="Dataset folder or gs:// prefix written by `senclr preprocess`.")
@click.option("--model-dir", required=True, help="Folder (or gs:// prefix) for the encoders, config, logs and backups.")
@click.option("--method", type=choice(METHODS), default="multimodal", show_default=True,
              help="multimodal: S1 and S2 of one place are the positive pair; simclr: two augmented views of one patch.")
@click.option("--backbone", type=choice(BACKBONES), default="small", show_default=True,
              help="Encoder network: small (CPU-sized CNN), resnet18 or resnet50 (any channel count).")
@click.option("--modality", type=choice(MODALITIES), default="s1", show_default=True,
              help="simclr only: the encoder's input (s1s2 stacks both sensors as channels).")
@click.option("--epochs", default=10, show_default=True, type=int, help="Passes over the train split.")
@click.option("--batch-size", default=64, show_default=True, type=int,
              help="Global batch (all replicas together; it must split evenly over them). Every other row is a negative.")
@click.option("--learning-rate", default=1e-3, show_default=True, type=float,
              help="Base learning rate; the peak is this scaled by --lr-scaling, reached after --warmup-epochs, then cosine decay to 0.")
@click.option("--lr-scaling", type=choice(LR_SCALINGS), default="none", show_default=True,
              help="linear: lr x batch/256; sqrt: lr x sqrt(batch); none: as given.")
@click.option("--warmup-epochs", default=0.0, show_default=True, type=float, help="Linear warm-up length (may be fractional).")
@click.option("--optimizer", type=choice(OPTIMIZERS), default="adam", show_default=True,
              help="lars (SimCLR's; momentum 0.9, trust 0.001), adamw or adam. BN and bias variables get no decay or adaptation.")
@click.option("--weight-decay", default=0.0, show_default=True, type=float, help="L2 (lars) or decoupled (adamw) weight decay.")
@click.option("--temperature", default=0.1, show_default=True, type=float,
              help="NT-Xent softmax temperature; lower sharpens the contrast between pairs.")
@click.option("--width", default=32, show_default=True, type=int,
              help="small backbone only: channels at full resolution (the feature map has twice as many).")
@click.option("--proj-dim", default=64, show_default=True, type=int, help="Size of the embedding the loss compares.")
@click.option("--head-layers", default=2, show_default=True, type=int,
              help="Dense layers of each projection head (SimCLR v2: 3), BN after each.")
@click.option("--intra-modal-negatives", is_flag=True,
              help="multimodal: also use the same sensor's other rows of the batch as negatives.")
@click.option("--global-bn/--no-global-bn", default=True, show_default=True,
              help="Batch-norm statistics over the global batch when there are several replicas.")
@click.option("--s1-bands", default=None, help="Comma-separated S1 bands to use, e.g. VV,VH. Default: all.")
@click.option("--s2-bands", default=None, help="Comma-separated S2 bands to use, e.g. B2,B3,B4,B8. Default: all.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for weights, shuffling and augmentation.")
@click.option("--deterministic", is_flag=True, help="Exact reruns: deterministic ops and input order (slower).")
@click.option("--strategy", type=choice(STRATEGIES), default="auto", show_default=True,
              help="auto: TPU if attached, multi-worker if TF_CONFIG names several workers, mirrored on >1 GPU, else one device.")
@click.option("--tpu", default=None, help="TPU name or grpc:// address (default on a TPU VM: the local TPU).")
@click.option("--precision", type=choice(PRECISIONS), default="fp32", show_default=True,
              help="bf16 (TPU, Ampere+ GPUs) or fp16 (loss-scaled) mixed precision; the loss stays float32.")
@click.option("--checkpoint-steps", default=0, show_default=True, type=int,
              help="Back up every N steps instead of every epoch (total steps round up to a multiple of N).")
@click.option("--steps-per-execution", default=1, show_default=True, type=int,
              help="Steps per compiled call (raise it on TPUs).")
@click.option("--crop-scale", default=",".join(map(str, AUG.crop_scale)), show_default=True,
              help="simclr: area range LO,HI of the random resized crop.")
@click.option("--no-crop", is_flag=True, help="simclr: no random resized crop.")
@click.option("--no-flip", is_flag=True, help="simclr: no horizontal/vertical flips.")
@click.option("--no-rotate", is_flag=True, help="simclr: no 90-degree rotations.")
@click.option("--jitter-prob", default=AUG.jitter_prob, show_default=True, type=float,
              help="simclr: probability of per-band brightness/contrast jitter.")
@click.option("--brightness", default=AUG.brightness, show_default=True, type=float,
              help="simclr: per-band additive shift, in standard deviations.")
@click.option("--contrast", default=AUG.contrast, show_default=True, type=float, help="simclr: per-band gain range 1 +- c.")
@click.option("--blur-prob", default=AUG.blur_prob, show_default=True, type=float, help="simclr: probability of Gaussian blur.")
@click.option("--blur-sigma", default=",".join(map(str, AUG.blur_sigma)), show_default=True,
              help="simclr: blur sigma range LO,HI in pixels.")
@click.option("--speckle-looks", default=AUG.speckle_looks, show_default=True, type=float,
              help="simclr: multiplicative S1 speckle with this many looks (0: off; ~4.4 for GRD).")
@click.option("--overwrite", is_flag=True, help="Replace whatever --model-dir holds (a model, its evaluation/, a backup).")
def train(data, model_dir, overwrite, s1_bands, s2_bands, crop_scale, no_crop, no_flip, no_rotate, jitter_prob,
          brightness, contrast, blur_prob, blur_sigma, speckle_looks, **flags):
    """Pre-train encoders with NT-Xent: S1/S2 pairs (multimodal) or augmentations (simclr).

    Saves the encoders (s1_encoder.keras / s2_encoder.keras, or the SimCLR modality's), config.json,
    history.csv and TensorBoard logs to --model-dir; a killed run rerun with the same flags resumes.
    """
    try:
        aug = AugmentConfig(crop_scale=parse_range(crop_scale, "--crop-scale"), crop=not no_crop, flip=not no_flip,
                            rotate90=not no_rotate, jitter_prob=jitter_prob, brightness=brightness, contrast=contrast,
                            blur_prob=blur_prob, blur_sigma=parse_range(blur_sigma, "--blur-sigma"),
                            speckle_looks=speckle_looks)
    except ValueError as e:
        raise InputError(f"bad augmentation setting: {e}") from None
    spec = TrainSpec(s1_bands=parse_bands(s1_bands), s2_bands=parse_bands(s2_bands), augment=aug,
                     **{k: v.lower() if isinstance(v, str) and k != "tpu" else v for k, v in flags.items()})
    preflight_run(data, model_dir, spec, overwrite)  # before TensorFlow loads
    from senclr.models.train import TrainingDiverged, train as run_training

    try:
        result = run_training(data, model_dir, spec, overwrite=overwrite)
    except TrainingDiverged as e:
        click.echo(f"senclr: error: {e}", err=True)
        raise SystemExit(1) from None
    click.echo(summary(result))
