"""Records per second of the numpy-only dataset reader against tf.data, measured in one run.

    python benchmarks/readers.py [--pairs 3000] [--patch-size 32]

Builds a synthetic dataset in a temporary folder (export synthetic -> preprocess), then reads
every record, normalised, with ``senclr.dataset.iter_records`` (pure numpy) and with
``senclr.dataset_tf.make_dataset`` (TensorFlow's C++ parsing: the baseline). Prints the ratio;
the target is >= 0.5 (the numpy reader at least half as fast as tf.data).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _rate(fn, repeats: int = 3) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return n / best, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--patch-size", type=int, default=32)
    args = ap.parse_args()

    from senclr.dataset import iter_records
    from senclr.dataset_tf import make_dataset
    from senclr.export.synthetic.source import generate
    from senclr.pipeline.preprocess import preprocess

    with tempfile.TemporaryDirectory() as tmp:
        raw, data = os.path.join(tmp, "raw"), os.path.join(tmp, "ds")
        generate(raw, args.pairs, 0, patch_size=args.patch_size)
        preprocess(raw, data, min_clear=0.0)

        numpy_rate, n = _rate(lambda: sum(1 for _ in iter_records(data, normalized=True)))
        ds = make_dataset(data, labels=("water",))
        tf_rate, n_tf = _rate(lambda: sum(1 for _ in ds.as_numpy_iterator()))
    assert n == n_tf, (n, n_tf)
    print(f"records: {n} of {args.patch_size}x{args.patch_size} px")
    print(f"tf.data reader (baseline): {tf_rate:8.0f} records/s")
    print(f"numpy-only reader:         {numpy_rate:8.0f} records/s")
    print(f"ratio numpy / tf.data:     {numpy_rate / tf_rate:8.2f}  (target >= 0.5)")


if __name__ == "__main__":
    main()
