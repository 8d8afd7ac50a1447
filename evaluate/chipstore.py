"""Arrays of many equal-sized chips on local disk, so evaluation memory stays flat.

Sen1Floods11 as normalised float16 inputs is ~3.5 GB and a ResNet-50 pyramid of it ~7 GB:
more than a laptop holds, so chips and cached encoder features live in ``numpy.memmap``
files (one per field) and are read a batch at a time. float16 keeps the disk cost halved;
normalised inputs and features are O(1) values where its 3 significant digits are plenty.
"""

from __future__ import annotations

import json
import os

import numpy as np


class ChipStore:
    """``n`` items, each a tuple of arrays of fixed ``shapes`` and ``dtypes``, in ``folder``."""

    def __init__(self, folder: str, n: int, shapes: list[tuple[int, ...]], dtypes: list[str], mode: str = "r"):
        self.folder, self.n = folder, n
        self.shapes, self.dtypes = [tuple(s) for s in shapes], list(dtypes)
        self.fields = [np.memmap(os.path.join(folder, f"field{i}.bin"), dtype=d, mode=mode, shape=(max(n, 1), *s))
                       for i, (s, d) in enumerate(zip(self.shapes, self.dtypes))]

    @classmethod
    def create(cls, folder: str, n: int, shapes, dtypes) -> "ChipStore":
        os.makedirs(folder, exist_ok=True)
        store = cls(folder, n, shapes, dtypes, mode="w+")
        return store

    @classmethod
    def open(cls, folder: str) -> "ChipStore | None":
        """The finished store in ``folder``, or None (never written, or interrupted)."""
        try:
            with open(os.path.join(folder, "store.json")) as f:
                spec = json.load(f)
        except (OSError, ValueError):
            return None
        return cls(folder, spec["n"], spec["shapes"], spec["dtypes"])

    def finish(self) -> "ChipStore":
        """Flush and mark complete (``store.json`` last): a later run may reuse it."""
        for f in self.fields:
            f.flush()
        with open(os.path.join(self.folder, "store.json"), "w") as f:
            json.dump({"n": self.n, "shapes": self.shapes, "dtypes": self.dtypes}, f)
        return ChipStore(self.folder, self.n, self.shapes, self.dtypes)

    def put(self, i: int, *arrays) -> None:
        for field, a in zip(self.fields, arrays):
            field[i] = a

    def get(self, index) -> tuple[np.ndarray, ...]:
        """Items ``index`` (an int, a slice or an index array) of every field, in memory."""
        return tuple(np.asarray(f[index]) for f in self.fields)

    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.fields) if self.n else 0


def map_store(fn, image: ChipStore, folder: str, batch_size: int, dtype: str) -> ChipStore:
    """A store of ``fn``'s arrays (``dtype``) for every item of ``image``, beside its labels (its
    last field): ``fn`` maps a float32 batch of the inputs (first field) to a list of [B, ...] arrays."""
    store = None
    for start in range(0, image.n, batch_size):
        x, y = image.get(slice(start, start + batch_size))
        outs = [np.asarray(a) for a in fn(x.astype(np.float32))]
        if store is None:
            store = ChipStore.create(folder, image.n, [a.shape[1:] for a in outs] + [y.shape[1:]],
                                     [dtype] * len(outs) + [image.dtypes[-1]])
        store.put(slice(start, start + len(y)), *[a.astype(dtype) for a in outs], y)
    return store.finish()


def batches(store: ChipStore, indices: np.ndarray, batch_size: int, seed: int | None = None):
    """Endless batches over ``indices`` (reshuffled each pass with ``seed``), or one ordered pass
    when ``seed`` is None; each batch is a tuple of the store's fields, items sorted for disk order."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(indices) if seed is not None else np.asarray(indices)
        for s in range(0, len(order), batch_size):
            yield store.get(np.sort(order[s:s + batch_size]))
        if seed is None:
            return
