"""``senclr train``: pre-train the S1/S2 dual encoder from the command line.

TensorFlow is imported only when the command runs, so ``senclr train --help`` stays fast.
"""

from __future__ import annotations

import os

import click

from senclr.errors import InputError


def parse_bands(value: str | None, sensor: str) -> list[str] | None:
    """'VV, VH' -> ['VV', 'VH']; None (option not given) means every band of the dataset."""
    if value is None:
        return None
    bands = [b.strip() for b in value.split(",") if b.strip()]
    if not bands:
        raise InputError(f"--{sensor}-bands is empty; name bands like VV,VH or leave the option out for all")
    return bands


def summary(result: dict) -> str:
    h = result["history"]
    lines = [
        f"final loss {h['loss'][-1]:.4f}, S1->S2 top-1 retrieval in batch {h['retrieval_acc'][-1]:.3f}"
        f" (chance {1 / result['batch_size']:.3f})"
    ]
    if "val_loss" in h:
        lines.append(f"validation loss {h['val_loss'][-1]:.4f}, retrieval {h['val_retrieval_acc'][-1]:.3f}")
    lines.append(f"model saved to {result['model_dir']} (s1_encoder.keras, s2_encoder.keras, config.json)")
    return "\n".join(lines)


@click.command()
@click.option("--data", required=True, help="Dataset folder or gs:// prefix written by `senclr preprocess`.")
@click.option("--model-dir", required=True, help="Folder to write the trained encoders and config.json into.")
@click.option("--epochs", default=10, show_default=True, type=int, help="Passes over the train split.")
@click.option("--batch-size", default=64, show_default=True, type=int,
              help="Pairs per step; every other pair in the batch is a negative, so bigger is harder.")
@click.option("--learning-rate", default=1e-3, show_default=True, type=float, help="Adam learning rate.")
@click.option("--temperature", default=0.1, show_default=True, type=float,
              help="NT-Xent softmax temperature; lower sharpens the contrast between pairs.")
@click.option("--width", default=32, show_default=True, type=int,
              help="Encoder width: channels at full resolution (the feature map has twice as many).")
@click.option("--proj-dim", default=64, show_default=True, type=int, help="Size of the embedding the loss compares.")
@click.option("--s1-bands", default=None, help="Comma-separated S1 bands to use, e.g. VV,VH. Default: all.")
@click.option("--s2-bands", default=None, help="Comma-separated S2 bands to use, e.g. B2,B3,B4,B8. Default: all.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for weights and shuffling.")
def train(data, model_dir, epochs, batch_size, learning_rate, temperature, width, proj_dim,
          s1_bands, s2_bands, seed):
    """Pre-train the S1/S2 dual encoder with cross-modal NT-Xent.

    The S1 and S2 patches of one place are a positive pair; the other pairs of the batch are
    negatives. Saves s1_encoder.keras, s2_encoder.keras and config.json to --model-dir.
    """
    bands1, bands2 = parse_bands(s1_bands, "s1"), parse_bands(s2_bands, "s2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: hide C++ banner noise
    from senclr.models.train import train as run_training

    result = run_training(
        data, model_dir, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
        temperature=temperature, width=width, proj_dim=proj_dim, s1_bands=bands1, s2_bands=bands2, seed=seed,
    )
    click.echo(summary(result))
