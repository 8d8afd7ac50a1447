"""``senclr train``: pre-train the S1/S2 dual encoder from the command line.

TensorFlow is imported only when the command runs, so ``senclr train --help`` stays fast.
"""

from __future__ import annotations


import click

from senclr.models.checks import preflight


def parse_bands(value: str | None) -> list[str] | None:
    """'VV, VH' -> ['VV', 'VH']; None (option not given) means every band of the dataset."""
    return None if value is None else [b.strip() for b in value.split(",") if b.strip()]


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
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for weights and shuffling.")
@click.option("--overwrite", is_flag=True, help="Replace the model (and its evaluation/) already in --model-dir.")
def train(data, model_dir, epochs, batch_size, learning_rate, temperature, width, proj_dim,
          s1_bands, s2_bands, seed, overwrite):
    """Pre-train the S1/S2 dual encoder with cross-modal NT-Xent.

    The S1 and S2 patches of one place are a positive pair; the other pairs of the batch are
    negatives. Saves s1_encoder.keras, s2_encoder.keras and config.json to --model-dir.
    """
    bands1, bands2 = parse_bands(s1_bands), parse_bands(s2_bands)
    hyper = dict(epochs=epochs, learning_rate=learning_rate, temperature=temperature, width=width, proj_dim=proj_dim)
    preflight(data, model_dir, overwrite, batch_size, bands1, bands2, **hyper)  # before TensorFlow loads
    from senclr.models.train import train as run_training

    result = run_training(data, model_dir, batch_size=batch_size, s1_bands=bands1, s2_bands=bands2, seed=seed,
                          overwrite=overwrite, **hyper)
    click.echo(summary(result))
