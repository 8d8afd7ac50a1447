"""``senclr evaluate``: water segmentation on the frozen S1 encoder, pre-trained vs random.

TensorFlow is imported only when the command runs, so ``senclr evaluate --help`` stays fast.
"""

from __future__ import annotations


import click

from senclr import storage
from senclr.errors import InputError
from senclr.evaluate.report import check_out
from senclr.evaluate.segmentation import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE


def headline(result: dict, report_path: str) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"water IoU (mIoU) on the {result['split']} split, {result['test']['patches']} patches:"]
    for key, label in result["encoders"]:
        lines.append(f"  {label:<40} {f(result[key]['water_iou'])} ({f(result[key]['miou'])})")
    return "\n".join([*lines, f"report: {report_path}"])


def parse_baselines(values) -> dict[str, str]:
    """('simclr=DIR', 'DIR2') -> {"simclr": DIR, "baseline2": DIR2}."""
    out = {}
    for i, v in enumerate(values, 1):
        name, sep, path = v.partition("=")
        name, path = (name.strip(), path) if sep else (f"baseline{i}", v)
        if not name or not path or name in out:
            raise InputError(f"--baseline {v!r}: give NAME=MODEL_DIR with a new NAME, or a model dir")
        out[name] = path
    return out


@click.command()
@click.option("--data", required=True,
              help="Dataset folder or gs:// prefix with a 'water' label: its train split trains the head, "
                   "its test split (val if test is empty) is scored.")
@click.option("--model-dir", required=True, help="Model folder written by `senclr train`; its S1 encoder is evaluated.")
@click.option("--out", default=None,
              help="Folder for report.md, metrics.json and comparison.png. Default: <model-dir>/evaluation.")
@click.option("--epochs", default=DEFAULT_EPOCHS, show_default=True, type=click.IntRange(min=1),
              help="Epochs of head training, the same for the pre-trained and the random encoder.")
@click.option("--batch-size", default=DEFAULT_BATCH_SIZE, show_default=True, type=click.IntRange(min=1),
              help="Patches per head-training step.")
@click.option("--learning-rate", default=DEFAULT_LEARNING_RATE, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Peak Adam learning rate of the head (cosine decay).")
@click.option("--baseline", "baselines", multiple=True,
              help="NAME=MODEL_DIR of another model (e.g. simclr=runs/simclr) whose S1 encoder gets the same head "
                   "and budget; repeatable.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the head, the random encoder and the shuffling (both runs use it).")
def evaluate(data, model_dir, out, epochs, batch_size, learning_rate, baselines, seed):
    """Water segmentation on the frozen S1 encoder: IoU report.

    Trains the same small head (1x1 conv + bilinear upsampling) on the pre-trained S1 encoder
    and on a randomly initialised copy, with the same budget and seed, and scores both on the
    held-out split with one global confusion matrix (no-data pixels ignored).
    """
    out = out or storage.join(model_dir, "evaluation")
    check_out(out)
    from senclr.evaluate.report import write_report
    from senclr.evaluate.segmentation import compare

    result = compare(data, model_dir, epochs=epochs, batch_size=batch_size, seed=seed,
                     learning_rate=learning_rate, progress=True, baselines=parse_baselines(baselines))
    paths = write_report(result, out)
    click.echo(headline(result, paths["report.md"]))
