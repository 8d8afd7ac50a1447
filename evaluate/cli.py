"""``senclr evaluate``: benchmarks (Sen1Floods11, BigEarthNet), the quick water probe, the report.

TensorFlow is imported only when a command runs, so ``senclr evaluate --help`` stays fast.
"""

from __future__ import annotations

import click

from senclr import storage
from senclr.errors import InputError
from senclr.evaluate.bigearthnet_cli import bigearthnet
from senclr.evaluate.cli_options import parse_fractions, parse_modes, protocol_options, write_report_of
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


@click.group()
def evaluate():
    """Score encoders: Sen1Floods11 floods, BigEarthNet land cover, the water probe, the report."""


@evaluate.command()
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
def probe(data, model_dir, out, epochs, batch_size, learning_rate, baselines, seed):
    """Water probe on a senclr dataset: frozen S1 encoder + a linear head, IoU report.

    Trains the same small head (1x1 conv + bilinear upsampling) on the pre-trained S1 encoder
    and on a randomly initialised copy, with the same budget and seed, and scores both on the
    held-out split with one global confusion matrix (no-data pixels ignored). Quick: the demo's check.
    """
    out = out or storage.join(model_dir, "evaluation")
    check_out(out)
    from senclr.evaluate.report import write_report
    from senclr.evaluate.segmentation import compare

    result = compare(data, model_dir, epochs=epochs, batch_size=batch_size, seed=seed,
                     learning_rate=learning_rate, progress=True, baselines=parse_baselines(baselines))
    paths = write_report(result, out)
    click.echo(headline(result, paths["report.md"]))


@evaluate.command()
@click.option("--data", required=True,
              help="Sen1Floods11 in the v1.1 layout: a local copy (`senclr data download sen1floods11`) or gs://sen1floods11.")
@protocol_options()
@click.option("--modes", default="frozen,finetune", show_default=True, help="frozen (decoder only) and/or finetune.")
@click.option("--decoder-width", default=32, show_default=True, type=click.IntRange(min=1),
              help="U-Net decoder channels at the finest level.")
def flood(data, models, out, inputs, fractions, seeds, epochs, batch_size, learning_rate, cache_dir, modes, decoder_width):
    """Sen1Floods11 flood segmentation: U-Net decoder, frozen and fine-tuned, fractions x seeds.

    Scores valid, test and the Bolivia hold-out (water IoU, mIoU, OA from one global confusion
    matrix each), then writes report.md. Reruns skip runs already recorded in --out.
    """
    from senclr.evaluate.contenders import parse_models
    from senclr.evaluate.decoder import MODES

    check_out(out)
    settings = dict(inputs=inputs, modes=parse_modes(modes, MODES), fractions=parse_fractions(fractions), seeds=seeds)
    from senclr.evaluate.flood import evaluate_flood
    from senclr.evaluate.protocol import Budget

    budget = Budget(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, decoder_width=decoder_width)
    evaluate_flood(data, parse_models(models), out, budget=budget, cache_dir=cache_dir, **settings)
    write_report_of(out)


@evaluate.command()
@click.option("--data", required=True, help="A dataset built by `senclr preprocess` (folder or gs:// prefix) with a label.")
@click.option("--label", type=click.Choice(["landcover", "water", "worldcover", "dynamicworld"]), default="landcover",
              show_default=True, help="The label band to segment: landcover, worldcover or dynamicworld (class index, "
                                      "255 no data) or water (-1 no data).")
@protocol_options()
@click.option("--modes", default="frozen,finetune", show_default=True, help="frozen (decoder only) and/or finetune.")
@click.option("--decoder-width", default=32, show_default=True, type=click.IntRange(min=1),
              help="U-Net decoder channels at the finest level.")
def dataset(data, label, models, out, inputs, fractions, seeds, epochs, batch_size, learning_rate, cache_dir, modes,
            decoder_width):
    """Segmentation of a label band of our own export: mIoU and per-class IoU on val and test.

    The same decoder, modes, fractions, seeds and baselines as `flood`; the dataset's train
    split trains. Reruns skip runs already recorded in --out.
    """
    from senclr.evaluate.contenders import parse_models
    from senclr.evaluate.decoder import MODES

    check_out(out)
    settings = dict(inputs=inputs, modes=parse_modes(modes, MODES), fractions=parse_fractions(fractions), seeds=seeds)
    from senclr.evaluate.dataset_seg import evaluate_dataset
    from senclr.evaluate.protocol import Budget

    budget = Budget(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, decoder_width=decoder_width)
    evaluate_dataset(data, parse_models(models), out, label=label, budget=budget, cache_dir=cache_dir, **settings)
    write_report_of(out)


evaluate.add_command(bigearthnet)


@evaluate.command()
@click.option("--out", required=True, help="Folder holding runs/ of earlier evaluations (any benchmarks).")
def report(out):
    """Collect every run recorded under --out into report.md, results.json and PNG plots."""
    write_report_of(out)
