"""What caching the frozen encoder's features saves, as a ratio measured within one run.

    .venv/bin/python benchmarks/frozen_cache.py [--backbone small|resnet18|resnet50] [--chips 32]
        [--size 128] [--epochs 5] [--batch-size 8] [--repeats 3] [--quick]

A frozen-encoder run trains only the decoder. Without a cache (``segmenter(..., mode="frozen")``
on the chips) every step also runs the encoder forward; with it (what ``senclr evaluate``
does) the encoder's pyramid of each chip is computed once into a float16 store and the decoder
trains on that. Both paths use the protocol's own pieces (``protocol._dataset``, ``_features`` over ``chipstore.map_store``,
``decoder.segmenter``/``decoder_model``) on the same random normalised chips, the same budget and
seed. Printed:

- ``ratio cached/uncached (one run)``: one frozen run of ``--epochs``, the cached one including
  its feature pass. Below 1 is a saving.
- ``ratio cached/uncached (per epoch)``: decoder epochs alone, the steady state.
- ``ratio cached/uncached (protocol)``: a protocol's ``--runs`` frozen runs per encoder (fractions
  x seeds; 9 by default), where the feature pass is paid once for all of them.

Only ratios are meant to be compared; the seconds depend on the machine. ``--quick`` shrinks
everything to check the script in seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from senclr import tf_defaults

tf_defaults.apply()  # the TensorFlow settings `senclr` runs with (oneDNN on), before it loads
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="small", choices=["small", "resnet18", "resnet50"])
    p.add_argument("--chips", type=int, default=32)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3, help="timed fits per path; the median counts")
    p.add_argument("--runs", type=int, default=9, help="frozen runs per encoder in a protocol (fractions x seeds)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.chips, a.size, a.epochs, a.batch_size, a.repeats = 8, 32, 2, 4, 1

    import keras
    import numpy as np

    from senclr.evaluate import protocol
    from senclr.evaluate.chipstore import ChipStore
    from senclr.evaluate.decoder import decoder_model, segmenter
    from senclr.models.backbones import build_backbone, multiscale

    rng = np.random.default_rng(0)
    steps = a.epochs * -(-a.chips // a.batch_size)
    budget = protocol.Budget(epochs=a.epochs, batch_size=a.batch_size)
    with tempfile.TemporaryDirectory(prefix="senclr-bench-") as tmp:
        images = ChipStore.create(os.path.join(tmp, "images"), a.chips, [(a.size, a.size, 2), (a.size, a.size)],
                                  ["float16", "int8"])
        for i in range(a.chips):
            x = rng.normal(size=(a.size, a.size, 2)).astype(np.float16)
            images.put(i, x, (x[..., 0] > 0.5).astype(np.int8))
        images = images.finish()
        idx = np.arange(a.chips)

        def fit(model, store, names):
            protocol._compile(model, budget, steps)
            ds = protocol._dataset(store, idx, a.batch_size, 0, names)
            model.fit(ds, steps_per_epoch=steps // a.epochs, epochs=1, verbose=0, shuffle=False)  # warm-up (tracing)
            times = []
            for _ in range(a.repeats):  # the median of several: a 2-core VM is noisy at this scale
                t0 = time.perf_counter()
                model.fit(ds, steps_per_epoch=steps // a.epochs, epochs=a.epochs, verbose=0, shuffle=False)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)

        keras.utils.set_random_seed(0)
        encoder = build_backbone(a.backbone, 2, 32)
        uncached = fit(segmenter(multiscale(encoder, a.backbone), 2, "frozen", 32), images, ["image"])
        pyr = multiscale(encoder, a.backbone)
        t0 = time.perf_counter()
        feats = protocol._features(pyr, images, os.path.join(tmp, "features"), a.batch_size)
        feature_pass = time.perf_counter() - t0
        keras.utils.set_random_seed(0)
        dec = decoder_model([s[-1] for s in feats.shapes[:-1]], feats.shapes[-1], 2, 32)
        cached = fit(dec, feats, [f"level{i}" for i in range(len(feats.shapes) - 1)])
    print(f"backbone {a.backbone}, {a.chips} chips of {a.size}x{a.size}, {a.epochs} epochs of {steps // a.epochs} "
          f"steps (batch {a.batch_size}); feature store {feats.nbytes() / 1e6:.1f} MB")
    print(f"uncached frozen run: {uncached:.2f} s; cached: feature pass {feature_pass:.2f} s + decoder {cached:.2f} s")
    print(f"ratio cached/uncached (one run): {(feature_pass + cached) / uncached:.3f}")
    print(f"ratio cached/uncached (per epoch): {cached / uncached:.3f}")
    print(f"ratio cached/uncached (protocol, {a.runs} runs): {(feature_pass + a.runs * cached) / (a.runs * uncached):.3f}")


if __name__ == "__main__":
    main()
