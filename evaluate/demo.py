"""``senclr demo``: the whole chain on synthetic data, in one fresh folder, with the numbers at the end.

export synthetic -> preprocess (Beam, DirectRunner) -> train twice (the multimodal dual encoder, and
the SimCLR augmentation baseline on S1 with the same backbone, batch and epochs) -> evaluate (water
IoU of the multimodal S1 encoder, the SimCLR S1 encoder and a random one under the same head budget).
"""

from __future__ import annotations

import json
import os
import shutil
import time

import click

from senclr import storage
from senclr.errors import InputError

MARKER = ".senclr-demo"
# Sized for 2 CPU cores, slow ones included: `senclr demo` (two pre-trainings) took 3 min 45 s and
# --quick about 1.5 min on a 2-core VM on which the earlier profile (6000 pairs, width 32) took
# 9.5 min; 5 min 43 s and about 2 min there without oneDNN (``senclr.tf_defaults``). Width 16
# halves the small backbone's step time against width 32 (docs/performance.md).
PROFILES = {
    "full": {"pairs": 4500, "patch_size": 32, "train_epochs": 10, "batch_size": 64, "width": 16, "head_epochs": 10},
    "quick": {"pairs": 1500, "patch_size": 32, "train_epochs": 8, "batch_size": 64, "width": 16, "head_epochs": 5},
}


def prepare_workdir(workdir: str) -> None:
    """A fresh folder: new, empty, or one an earlier demo made (its content is replaced)."""
    storage.refuse_file(workdir, "--workdir")
    if os.path.isdir(workdir) and os.listdir(workdir):
        if not os.path.exists(os.path.join(workdir, MARKER)):
            raise InputError(f"--workdir {workdir} is not empty and was not made by `senclr demo`: choose another folder")
        shutil.rmtree(workdir)
    os.makedirs(workdir, exist_ok=True)
    open(os.path.join(workdir, MARKER), "w").close()


def run_demo(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Run the four stages; returns the evaluation result plus per-stage seconds."""
    from tqdm import tqdm

    p = PROFILES["quick" if quick else "full"]
    prepare_workdir(workdir)
    raw, data, model, simclr, report = (os.path.join(workdir, d)
                                        for d in ("raw", "dataset", "model", "model-simclr", "evaluation"))
    seconds = {}
    stages = tqdm(total=5, desc="senclr demo", unit="stage", position=0, leave=True)

    def stage(name: str, fn):
        stages.set_postfix_str(name)
        t0 = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t0, 1)
        stages.update(1)
        return out

    from senclr.evaluate.report import write_report
    from senclr.evaluate.segmentation import compare
    from senclr.export.synthetic.source import generate
    from senclr.models.train import train
    from senclr.pipeline.preprocess import preprocess

    stage("export", lambda: generate(raw, p["pairs"], seed, patch_size=p["patch_size"], progress=True))
    m = stage("preprocess", lambda: preprocess(raw, data, seed=seed, cell_deg=0.25))
    budget = dict(epochs=p["train_epochs"], batch_size=p["batch_size"], width=p["width"], seed=seed)
    stage("train", lambda: train(data, model, **budget))
    stage("train simclr", lambda: train(data, simclr, method="simclr", modality="s1", **budget))
    result = stage("evaluate", lambda: compare(data, model, epochs=p["head_epochs"], seed=seed, progress=False,
                                               baselines={"simclr": simclr}))
    stages.close()
    paths = write_report(result, report)
    summary = {
        "profile": "quick" if quick else "full", **p, "seconds": seconds, "total_seconds": round(sum(seconds.values()), 1),
        "counts": m["counts"], "splits": m["splits"], "report": paths["report.md"],
        "water_iou": {k: result[k]["water_iou"] for k in ("pretrained", "simclr", "random")},
        "miou": {k: result[k]["miou"] for k in ("pretrained", "simclr", "random")},
    }
    with open(os.path.join(workdir, "demo.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    return summary


def _fmt(v) -> str:
    return "n/a (no water in the held-out split)" if v is None else f"{v:.3f}"


@click.command()
@click.option("--workdir", default="senclr-demo", show_default=True, help="Folder for every stage's output (made fresh).")
@click.option("--quick", is_flag=True, help="Smaller run: about 1.5 minutes on 2 cores instead of about 4.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of every stage.")
def demo(workdir, quick, seed):
    """Run export -> preprocess -> train -> evaluate on synthetic data and print the headline numbers."""
    s = run_demo(workdir, quick, seed)
    c = s["counts"]
    click.echo("")
    click.echo(f"pairs: read {c['read']}, kept {c['kept']}, rejected {c['rejected']}; splits {s['splits']}")
    click.echo(f"stage seconds: {s['seconds']} (total {s['total_seconds']})")
    for metric in ("water_iou", "miou"):
        v = s[metric]
        click.echo(f"{metric:<10} multimodal S1 encoder: {_fmt(v['pretrained'])}   SimCLR S1 encoder: "
                   f"{_fmt(v['simclr'])}   random init: {_fmt(v['random'])}")
    click.echo(f"report: {s['report']}")
