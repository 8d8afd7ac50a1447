"""``senclr evaluate bigearthnet``: the BigEarthNet multi-label protocol from the command line.

The shared protocol flags (``cli_options.protocol_options``) with S2 as the default input (the
land-cover benchmark is optical; S1 and S1+S2 are options), plus the release and v1's folders.
TensorFlow is imported only when the command runs.
"""

from __future__ import annotations

import click

from senclr.evaluate.cli_options import parse_fractions, parse_modes, protocol_options, write_report_of
from senclr.evaluate.protocol import Budget


@click.command("bigearthnet")
@click.option("--data", default=None,
              help="v2: the reBEN root (metadata.parquet, BigEarthNet-S2/, BigEarthNet-S1/). v1: the BigEarthNet-S2 "
                   "v1.0 root (needed unless --input s1).")
@click.option("--s1-root", default=None, help="v1 only: the BigEarthNet-S1 v1.0 root (for --input s1 or s1s2).")
@click.option("--splits-dir", default=None,
              help="v1 only: folder of train.csv, val.csv, test.csv and the cloud/snow exclusion lists.")
@click.option("--version", "version", type=click.Choice(["v1", "v2"]), default="v2", show_default=True,
              help="BigEarthNet release: v1 (BigEarthNet-S1/S2 v1.0, 43 labels mapped to 19) or v2 (reBEN).")
@protocol_options(default_input="s2")  # the land-cover benchmark is optical by default
@click.option("--modes", default="linear,finetune", show_default=True,
              help="linear (probe on frozen pooled features) and/or finetune (end to end).")
@click.option("--limit", default=None, type=int,
              help="Use only the first N patches of each split: for quick trials (recorded in every run).")
def bigearthnet(data, s1_root, splits_dir, version, models, out, inputs, fractions, seeds, epochs, batch_size,
                learning_rate, cache_dir, modes, limit):
    """BigEarthNet multi-label land cover: linear probe and fine-tuning, fractions x seeds.

    Scores val and test (micro/macro mAP and F1 over the 19 classes), then writes report.md.
    Reruns skip runs already recorded in --out.
    """
    from senclr.evaluate.bigearthnet_eval import MODES, evaluate_bigearthnet
    from senclr.evaluate.contenders import parse_models

    settings = dict(inputs=inputs, modes=parse_modes(modes, MODES), fractions=parse_fractions(fractions), seeds=seeds)
    budget = Budget(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    evaluate_bigearthnet(data, parse_models(models), out, version=version, budget=budget, splits_dir=splits_dir,
                         root_s1=s1_root, limit=limit, cache_dir=cache_dir, **settings)
    write_report_of(out)
