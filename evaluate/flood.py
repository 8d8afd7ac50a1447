"""Sen1Floods11 flood segmentation: the official splits, every encoder, mode, fraction and seed.

Heads train on the hand-labelled ``train`` split (a seeded fraction of it) and are scored on
``valid``, ``test`` and ``bolivia`` (the geographic hold-out), each from one global confusion
matrix: water IoU, mIoU and overall accuracy (docs/evaluate.md).
"""

from __future__ import annotations

import json

from senclr import storage
from senclr.evaluate import flood_inputs, sen1floods11
from senclr.evaluate.contenders import Contender, resolve
from senclr.evaluate.decoder import MODES
from senclr.evaluate.protocol import Budget, Runner, SegData, check_settings, working_cache, write_examples

BENCHMARK = "sen1floods11"
SCORED = ("valid", "test", "bolivia")
N_EXAMPLES = 4


def _check_bands(root: str, contenders: list[Contender]) -> None:
    """Every encoder's bands exist in the chips, and every model's encoders load with them."""
    pair = sen1floods11.load_chip(root, sen1floods11.read_split(root, "train")[0])
    for c in contenders:
        flood_inputs.chip_bands(pair, c.bands)
        if c.kind == "pretrained":
            c.encoders()


def evaluate_flood(root: str, models: dict[str, str], out: str, inputs: str = "s1",
                   modes=MODES, fractions=(0.01, 0.1, 1.0), seeds: int = 3, budget: Budget = Budget(),
                   cache_dir: str | None = None, progress: bool = True) -> list[dict]:
    """Run (or resume) the protocol into ``out``/runs; returns every run record."""
    check_settings(fractions, seeds, modes, MODES)
    storage.refuse_file(out, "--out")
    for split in ("train", *SCORED):
        sen1floods11.read_split(root, split)  # the layout and every chip file, before any work
    contenders = resolve(models, inputs)
    _check_bands(root, contenders)
    runner = Runner(out, budget, fractions, range(seeds), modes, progress)
    runner.check_existing(BENCHMARK, inputs, runner.plan(contenders))
    idx, figure = flood_inputs.examples(root, "test", N_EXAMPLES)
    with working_cache(cache_dir, "senclr-flood-") as runner.cache_dir:
        made: dict = {}

        def data_for(c: Contender) -> SegData:
            key = json.dumps([c.bands, c.statistics], sort_keys=True)
            if key not in made:  # encoders of the same bands and statistics share the stores
                stats, _ = flood_inputs.statistics_for(root, c.bands, c.statistics)
                store = lambda s: flood_inputs.split_store(root, s, c.bands, stats, runner.cache_dir, progress)[0]  # noqa: E731
                made[key] = SegData(BENCHMARK, flood_inputs.CLASS_NAMES, inputs, store("train"),
                                    {s: store(s) for s in SCORED}, "test", tuple(idx))
            return made[key]

        data_for(contenders[0])  # reads every chip: a broken one stops the run before anything is written
        write_examples(out, BENCHMARK, figure)
        return runner.run(data_for, contenders)
