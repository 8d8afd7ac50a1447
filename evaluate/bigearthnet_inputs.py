"""BigEarthNet patches as normalised chip stores: the encoder's bands, its statistics, 19-class labels.

Bands are picked by name in the encoder's channel order, clipped and standardised with the
statistics the model was pre-trained with (a seeded sample of train patches for bands it lacks),
and stored as float16 beside the uint8 multi-hot labels, 28.8 KB per patch and band.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from senclr.errors import InputError
from senclr.evaluate import bigearthnet as ben
from senclr.evaluate.bigearthnet_labels import NUM_CLASSES
from senclr.evaluate.chipstore import ChipStore
from senclr.evaluate.contenders import Contender
from senclr.normalize import apply, band_params, sample_statistics

STAT_PATCHES = 200  # train patches sampled for statistics a model lacks


def read_bands(ds, patch: dict, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(float32 [120, 120, len(bands)] in the order of ``bands``, labels uint8 [19]); S2 no data (0) is NaN."""
    s1 = [b for b in bands if b in ben.S1_BANDS]
    s2 = [b for b in bands if b not in s1]
    inputs = ("s1" if s1 else "") + ("s2" if s2 else "")
    x, y = ds.load_patch(patch, inputs, s2 or ben.S2_BANDS, s1 or ben.S1_BANDS)
    x = x[..., [(s1 + s2).index(b) for b in bands]]
    is_s2 = [b not in ben.S1_BANDS for b in bands]
    x[..., is_s2] = np.where(x[..., is_s2] == 0, np.nan, x[..., is_s2])
    return x, y


def train_statistics(ds, patches: list[dict], bands: Sequence[str], n: int = STAT_PATCHES) -> dict:
    """p1/p99/mean/std per band from a seeded sample of ``n`` train patches (every valid pixel)."""
    pick = np.sort(np.random.default_rng(0).choice(len(patches), min(n, len(patches)), replace=False))
    x = np.concatenate([read_bands(ds, patches[i], bands)[0].reshape(-1, len(bands)) for i in pick])
    try:
        return sample_statistics(x, list(bands), f"{len(pick)} BigEarthNet train patches")
    except ValueError as e:
        raise InputError(str(e)) from None


def statistics_for(ds, train: list[dict], c: Contender) -> dict:
    """The model's statistics for its bands, the train patches' for those it lacks."""
    stats = {b: c.statistics[b] for b in c.bands if b in c.statistics}
    lacking = [b for b in c.bands if b not in stats]
    return {**stats, **(train_statistics(ds, train, lacking) if lacking else {})}


def patch_store(ds, patches: list[dict], bands, stats: dict, folder: str, split: str = "",
                progress: bool = False) -> ChipStore:
    """(normalised image float16 [120, 120, C], labels uint8 [19]) of every patch, in ``folder``."""
    store = ChipStore.open(folder)
    if store is not None and store.n == len(patches):
        return store
    from tqdm import tqdm

    p = band_params(stats, list(bands))
    store = ChipStore.create(folder, len(patches), [(ben.PATCH, ben.PATCH, len(bands)), (NUM_CLASSES,)],
                             ["float16", "uint8"])
    for i, patch in enumerate(tqdm(patches, desc=f"bigearthnet {split}", unit="patch", disable=not progress,
                                   leave=False)):
        x, y = read_bands(ds, patch, bands)
        store.put(i, np.nan_to_num(apply(x, p), nan=0.0).astype(np.float16), y)
    return store.finish()


def digest(*parts) -> str:
    """A short stable key of JSON-able parts: names cache folders by what their content depends on."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
