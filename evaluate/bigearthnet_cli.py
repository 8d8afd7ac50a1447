"""``senclr evaluate bigearthnet``: the BigEarthNet multi-label protocol from the command line.

Its own options rather than ``protocol_options``: BigEarthNet is read as S2 by default (the
land-cover benchmark is optical; S1 and S1+S2 are options), and v1 needs two extra folders.
TensorFlow is imported only when the command runs; ``senclr.evaluate.cli``'s helpers are imported
there too, so that module may import this one to register the command without an import cycle.
"""

from __future__ import annotations

import click

from senclr.evaluate.protocol import Budget

_B = Budget()


@click.command("bigearthnet")
@click.option("--data", default=None,
              help="v2: the reBEN root (metadata.parquet, BigEarthNet-S2/, BigEarthNet-S1/). v1: the BigEarthNet-S2 "
                   "v1.0 root (needed unless --input s1).")
@click.option("--s1-root", default=None, help="v1 only: the BigEarthNet-S1 v1.0 root (for --input s1 or s1s2).")
@click.option("--splits-dir", default=None,
              help="v1 only: folder of train.csv, val.csv, test.csv and the cloud/snow exclusion lists.")
@click.option("--version", "version", type=click.Choice(["v1", "v2"]), default="v2", show_default=True,
              help="BigEarthNet release: v1 (BigEarthNet-S1/S2 v1.0, 43 labels mapped to 19) or v2 (reBEN).")
@click.option("--model", "models", multiple=True, required=True,
              help="NAME=MODEL_DIR of a model to score (repeatable). The random-init and from-scratch baselines "
                   "take the first model's architecture.")
@click.option("--out", required=True, help="Folder (or gs:// prefix) for runs/, report.md, results.json and plots.")
@click.option("--input", "inputs", type=click.Choice(["s1", "s2", "s1s2"]), default="s2", show_default=True,
              help="Bands the encoders read: S1, S2 or both (a multimodal model fuses its two encoders).")
@click.option("--modes", default="linear,finetune", show_default=True,
              help="linear (probe on frozen pooled features) and/or finetune (end to end).")
@click.option("--fractions", default="0.01,0.1,1", show_default=True,
              help="Label fractions: seeded subsets of the train patches, each in (0, 1].")
@click.option("--seeds", default=3, show_default=True, type=int, help="Seeds per setting (0..N-1).")
@click.option("--epochs", default=_B.epochs, show_default=True, type=click.IntRange(min=1),
              help="Budget: passes' worth of steps over the whole train split, whatever the fraction.")
@click.option("--batch-size", default=_B.batch_size, show_default=True, type=click.IntRange(min=1))
@click.option("--learning-rate", default=_B.learning_rate, show_default=True,
              type=click.FloatRange(min=0, min_open=True), help="Peak AdamW learning rate (cosine decay).")
@click.option("--limit", default=None, type=int,
              help="Use only the first N patches of each split: for quick trials (recorded in every run).")
@click.option("--cache-dir", default=None,
              help="Local folder for normalised patches and frozen features (kept and reused); default: a "
                   "temporary folder removed at the end.")
def bigearthnet(data, s1_root, splits_dir, version, models, out, inputs, modes, fractions, seeds, epochs, batch_size,
                learning_rate, limit, cache_dir):
    """BigEarthNet multi-label land cover: linear probe and fine-tuning, fractions x seeds.

    Scores val and test (micro/macro mAP and F1 over the 19 classes), then writes report.md.
    Reruns skip runs already recorded in --out.
    """
    from senclr.evaluate.bigearthnet_eval import MODES, evaluate_bigearthnet
    from senclr.evaluate.cli import _report, parse_fractions, parse_modes
    from senclr.evaluate.contenders import parse_models

    settings = dict(inputs=inputs, modes=parse_modes(modes, MODES), fractions=parse_fractions(fractions), seeds=seeds)
    budget = Budget(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    evaluate_bigearthnet(data, parse_models(models), out, version=version, budget=budget, splits_dir=splits_dir,
                         root_s1=s1_root, limit=limit, cache_dir=cache_dir, **settings)
    _report(out)
