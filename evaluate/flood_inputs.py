"""Sen1Floods11 splits as normalised chip stores: the model's bands, its statistics, water labels.

Each chip's bands are picked by name (S1 VV, VH; the S2 L1C bands the model was trained on),
clipped and standardised with the statistics the model was pre-trained with (so the encoder
sees inputs scaled as in training), and stored as float16 beside the int8 water label (-1 no
data). Bands the model has no statistics for take the train split's own. No-data input pixels
(NaN in S1, 0 in S2) become 0, the band mean, and keep their label (often -1).
Stores are keyed by root, split, bands and statistics, and reused by a later run.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from senclr.errors import InputError
from senclr.evaluate import sen1floods11
from senclr.evaluate.chipstore import ChipStore
from senclr.normalize import apply, band_params, sample_statistics

CLASS_NAMES = ["not water", "water"]
RGB = ("B4", "B3", "B2")
_STAT_SAMPLE = 20_000  # pixels per chip for statistics the model lacks


def chip_bands(pair, bands) -> np.ndarray:
    """[H, W, len(bands)] float32 of the named S1 and S2 bands; InputError naming a band the chip lacks."""
    have = {**{b: (pair.s1, i) for i, b in enumerate(pair.s1_bands)}, **{b: (pair.s2, i) for i, b in enumerate(pair.s2_bands)}}
    missing = [b for b in bands if b not in have]
    if missing:
        raise InputError(f"the encoder reads bands {missing} that Sen1Floods11 chips do not have "
                         f"(they have {', '.join(have)}); evaluate a model trained on those bands")
    out = np.stack([have[b][0][..., have[b][1]].astype(np.float32) for b in bands], axis=-1)
    s2 = [i for i, b in enumerate(bands) if b in pair.s2_bands]
    out[..., s2] = np.where(out[..., s2] == 0, np.nan, out[..., s2])  # S2 no data is 0
    return out


def train_statistics(root: str, bands, chips: list[dict]) -> dict:
    """p1/p99/mean/std per band from a seeded pixel sample of ``chips`` (the train split)."""
    rng = np.random.default_rng(0)
    samples = []
    for chip in chips:
        x = chip_bands(sen1floods11.load_chip(root, chip), bands).reshape(-1, len(bands))
        samples.append(x[rng.choice(len(x), min(len(x), _STAT_SAMPLE), replace=False)])
    try:
        return sample_statistics(np.concatenate(samples), list(bands), "the train split")
    except ValueError as e:
        raise InputError(str(e)) from None


def statistics_for(root: str, bands, model_stats: dict) -> tuple[dict, list[str]]:
    """The model's statistics for ``bands``, the train split's for those it lacks (named in the second value)."""
    lacking = [b for b in bands if b not in model_stats]
    stats = {b: model_stats[b] for b in bands if b in model_stats}
    if lacking:
        stats.update(train_statistics(root, lacking, sen1floods11.read_split(root, "train")))
    return stats, lacking


def _key(root: str, split: str, bands, stats: dict) -> str:
    blob = json.dumps([os.path.abspath(root) if "://" not in root else root, split, list(bands), stats], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def split_store(root: str, split: str, bands, stats: dict, cache_dir: str, progress: bool = False) -> tuple[ChipStore, list[str]]:
    """(store of (image float16, water int8) for every chip of ``split``, chip stems)."""
    chips = sen1floods11.read_split(root, split)
    if not chips:
        raise InputError(f"the {split} split of {root} lists no chips")
    folder = os.path.join(cache_dir, f"sen1floods11-{split}-{_key(root, split, bands, stats)}")
    store = ChipStore.open(folder)
    if store is not None and store.n == len(chips):
        return store, [c["stem"] for c in chips]
    from tqdm import tqdm

    p = band_params(stats, list(bands))
    store, size = None, None
    for i, chip in enumerate(tqdm(chips, desc=f"sen1floods11 {split}", unit="chip", disable=not progress, leave=False)):
        pair = sen1floods11.load_chip(root, chip)
        if size is None:
            size = pair.shape
            store = ChipStore.create(folder, len(chips), [(*size, len(bands)), size], ["float16", "int8"])
        if pair.shape != size:
            raise InputError(f"Sen1Floods11 chip {chip['stem']} is {pair.shape[0]}x{pair.shape[1]} px, the others "
                             f"{size[0]}x{size[1]}: the copy is not the published one")
        x = np.nan_to_num(apply(chip_bands(pair, bands), p), nan=0.0)
        store.put(i, x.astype(np.float16), pair.labels["water"])
    return store.finish(), [c["stem"] for c in chips]


def stretch(rgb: np.ndarray) -> np.ndarray:
    """uint8 of a 2-98 % stretch (NaN as the low end): how the report shows true colour."""
    lo, hi = np.nanpercentile(rgb, 2), np.nanpercentile(rgb, 98)
    return (np.clip((np.nan_to_num(rgb, nan=lo) - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def examples(root: str, split: str, k: int = 4) -> tuple[list[int], dict]:
    """The ``k`` chips of ``split`` with the most water (ties: split order) and their figure arrays:
    S1 VV dB, S2 true colour (2-98 % stretch), truth. The choice depends on the labels only."""
    chips = sen1floods11.read_split(root, split)
    water = [int((sen1floods11.load_chip(root, c).labels["water"] == 1).sum()) for c in chips]  # one at a time
    idx = sorted(sorted(range(len(chips)), key=lambda i: -water[i])[:k])
    picked = [sen1floods11.load_chip(root, chips[i]) for i in idx]
    return idx, {"s1": np.stack([p.s1[..., list(p.s1_bands).index("VV")] for p in picked]).astype(np.float32),
                 "s2_rgb": np.stack([stretch(chip_bands(p, RGB)) for p in picked]),
                 "truth": np.stack([p.labels["water"] for p in picked]).astype(np.int16),
                 "stems": np.array([chips[i]["stem"] for i in idx])}
