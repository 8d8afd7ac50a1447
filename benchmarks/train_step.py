"""Pre-training step time and input-pipeline throughput, as ratios measured within one run.

    .venv/bin/python benchmarks/train_step.py [--backbone small|resnet18|resnet50] [--batch-size 64]
        [--patch-size 32] [--pairs 2000] [--steps 10] [--precision fp32|bf16] [--quick]
        [--gpu-peak-tflops T]

Writes a synthetic schema-v1 dataset (``--pairs`` random pairs, L1C, in 8 train shards) to a
temporary folder, then measures:

1. ``multimodal_step/simclr_step``: the time of one training step of ``--method multimodal``
   (``DualEncoder``: an S1 encoder on 2 bands and an S2 encoder on 13 bands, B rows each) over
   one of ``--method simclr --modality s1s2`` (one encoder on the 15 stacked channels, two views
   of B rows), same backbone, same global batch, so both push 2B images through a backbone.
   Both are built with ``senclr.models.train.build_model`` and compiled as ``train`` compiles
   them (adam); each step is ``model.train_on_batch`` on one fixed random batch (a
   ``tf.constant``, so no input work is timed), after warm-up steps (tracing). Steps of the two
   models alternate in ``--repeats`` blocks of ``--steps`` steps (A B, B A, ...); the ratio is
   the median over r of block r of one / block r of the other (neighbours in time, so the
   machine's slow and fast spells cancel), the step times printed the median blocks. The
   forward FLOPs of both (TensorFlow's graph profiler) are printed beside it: the small
   backbone's first convolution sees 15 channels on 2B images in SimCLR but 2 + 13 on B in the
   dual encoder, so SimCLR does a few percent more work. Target <= 1.1.
2. ``input/raw_read``: records/s of ``pretraining_dataset`` for the multimodal method (the
   training input pipeline: shuffle, batch, batch parse) against the faster of two raw reads of
   the same shard files — 8 files in turn (``cycle_length=min(files, 8)``), and one sequential
   ``TFRecordDataset`` — which only yield the serialized records, batched by B. Target >= 0.8.
   ``input/raw_unbuffered`` is information: against a sequential read without a read buffer,
   which is how the pipeline reads local files (each record read straight into its string), so
   it shows what everything after the read costs. ``input_simclr/raw_read`` is the same
   for SimCLR (also normalisation and two augmented views of every patch): information, bound
   by the augmentations. Each stream runs in its own process and is pulled inside a
   ``tf.function``, as ``fit`` pulls batches (no Python per batch); the processes take turns and
   stop themselves when their block ends, so no stream refills its buffers while another is
   timed (``benchmarks/streams.py`` says why that matters). After a warm-up that fills the
   shuffle buffer, each block times ``--records`` records (SimCLR: a quarter); the median of
   ``--repeats`` blocks counts. The CPU cores each stream kept busy are printed beside it.
3. ``input/step_consumption``: records/s the multimodal input pipeline delivers (from 2)
   against the records/s one multimodal step consumes (B / step time, from 1). Target >= 5.
   ``input_simclr/simclr_step_consumption``: the same for SimCLR (its input against B / its
   step time), the same target. Both are measured alone; in a real CPU run they share the cores, so this is an upper bound
   there, and the relevant number on an accelerator.

With a GPU present, ResNet-50 multimodal steps are timed in fp32 and in bf16 (Keras policy
``mixed_bfloat16`` set before building, as ``--precision bf16`` does) and reported as images/s
(2B images a step), with the bf16 step's share of the GPU's dense bf16 peak (3 x forward FLOPs
per step; peaks by device name in ``benchmarks/gpu_peak.py``, or ``--gpu-peak-tflops``). On a
CPU that part is skipped. ``--precision`` sets the policy of the
models of part 1 (and so 3).

How to read it: only the ``ratio`` lines are meant to be compared, with the target each names;
the absolute steps/s and records/s beside them depend on the machine and whatever else runs
on it, and nothing here asserts a time. ``--quick`` shrinks everything (small backbone, 16x16
patches, batch 16) so the whole script runs in well under a minute; it checks the script, not
the targets.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time

from senclr import tf_defaults

tf_defaults.apply()  # the TensorFlow settings `senclr` runs with (oneDNN on), before it loads
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # tests.helpers and benchmarks.streams
    sys.path.insert(0, ROOT)
SHARDS = 8
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16"}


# ---------------------------------------------------------------------------------------------
# data


def write_dataset(folder: str, n: int, size: int, shards: int = SHARDS, seed: int = 0) -> dict:
    """A schema-v1 dataset of ``n`` random pairs, all in the train split, in ``shards`` files."""
    import numpy as np

    from senclr import manifest as manifest_lib
    from senclr import storage, tfrecord
    from senclr.bands import S1_BANDS, S2_BANDS
    from senclr.schema import encode_record
    from tests.helpers import random_pair

    rng = np.random.default_rng(seed)
    pairs = [random_pair(rng, size, i) for i in range(n)]
    shards = max(1, min(shards, n))
    entries = []
    for k in range(shards):
        items = pairs[k::shards]
        data = tfrecord.encode_file(encode_record(p, "train") for p in items)
        name = f"train-{k:05d}-of-{shards:05d}.tfrecord"
        storage.write_bytes(storage.join(folder, name), data)
        entries.append({"path": name, "split": "train", "records": len(items),
                        "sha256": hashlib.sha256(data).hexdigest()})
    stats = {}
    for key, names in (("s1", S1_BANDS), ("s2", S2_BANDS["l1c"])):
        arr = np.stack([getattr(p, key) for p in pairs]).astype(np.float64)
        for i, b in enumerate(names):
            v = arr[..., i].ravel()
            stats[b] = {"mean": float(v.mean()), "std": float(v.std()),
                        "p1": float(np.percentile(v, 1)), "p99": float(np.percentile(v, 99))}
    m = manifest_lib.new(
        "dataset", "benchmarks/train_step.py", {"n": n}, seed=seed,
        bands={"s1": list(S1_BANDS), "s2": list(S2_BANDS["l1c"]), "s2_level": "l1c"},
        labels=["water", "landcover"], counts={"read": n, "kept": n, "rejected": {}},
        statistics=stats, splits={"train": n, "val": 0, "test": 0}, shards=entries,
    )
    manifest_lib.write(folder, m)
    return m


# ---------------------------------------------------------------------------------------------
# training steps


def build(method: str, backbone: str, batch: int, bands: dict, precision: str, input_norm: dict | None = None):
    """A compiled model as ``senclr.models.train.train`` builds it (one replica, adam); the
    multimodal step normalises its raw-unit inputs (``input_norm``) as in training."""
    import keras

    from senclr.models import optim
    from senclr.models.heads import set_global_batch_norm
    from senclr.models.spec import TrainSpec
    from senclr.models.train import build_model

    spec = TrainSpec(method=method, backbone=backbone, batch_size=batch, modality="s1s2", optimizer="adam")
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[precision])
    try:
        model = build_model(spec, bands, input_norm if method == "multimodal" else None)
        set_global_batch_norm(model, False)
        model.compile(optimizer=optim.build_optimizer("adam", spec.learning_rate, 0.0, model.trainable_variables),
                      steps_per_execution=1)
    finally:
        keras.config.set_dtype_policy(old)
    return model


def step_inputs(batch: int, size: int, bands: dict, seed: int = 0) -> dict:
    """Fixed random batches: {"multimodal": {"s1", "s2"}, "simclr": {"view1", "view2"}}."""
    import tensorflow as tf

    g = tf.random.Generator.from_seed(seed)
    s1 = tf.constant(g.normal([batch, size, size, len(bands["s1"])]))
    s2 = tf.constant(g.normal([batch, size, size, len(bands["s2"])]))
    both = tf.concat([s1, s2], axis=-1)
    return {"multimodal": {"s1": s1, "s2": s2},
            "simclr": {"view1": both, "view2": tf.constant(tf.reverse(both, axis=[1]))}}


def forward_flops(model, x: dict) -> float:
    """Float operations of one inference-mode forward pass (TensorFlow's graph profiler), or nan."""
    import tensorflow as tf

    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation warnings
    try:
        fn = tf.function(lambda inputs: model(inputs, training=False))
        graph = fn.get_concrete_function({k: tf.TensorSpec(v.shape, v.dtype) for k, v in x.items()}).graph
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        return float(tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops)
    except Exception:  # the profiler is a v1 tool; an informative line, never a failure
        return float("nan")
    finally:
        tf.get_logger().setLevel(level)


def time_steps(models: dict, inputs: dict, steps: int, repeats: int, warmup: int) -> dict:
    """{name: [seconds per step of each block]}, the models' blocks of ``steps`` alternating
    (A B, B A, A B, ...), so block r of one model sits next to block r of the other."""
    for name, model in models.items():
        for _ in range(warmup):
            model.train_on_batch(inputs[name], return_dict=True)
    blocks = {name: [] for name in models}
    names = list(models)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            for _ in range(steps):
                model_logs = models[name].train_on_batch(inputs[name], return_dict=True)  # numpy: synced
            blocks[name].append((time.perf_counter() - t0) / steps)
            assert all(v == v for v in model_logs.values()), (name, model_logs)  # not NaN
    return blocks


def medians(blocks: dict) -> dict:
    """{name: median seconds per step} of ``time_steps``' blocks."""
    return {name: statistics.median(v) for name, v in blocks.items()}


def paired_ratio(blocks: dict, a: str, b: str) -> float:
    """Median over r of block r of ``a`` / block r of ``b``: neighbours in time, so a machine
    that speeds up or slows down for seconds at a time (these VMs do) moves both alike."""
    return statistics.median(x / y for x, y in zip(blocks[a], blocks[b]))


# ---------------------------------------------------------------------------------------------
# input pipeline


def raw_stream(files: list[str], batch: int, how: str):
    """Serialized records of ``files``, repeated, batched by ``batch``: nothing decoded, no
    shuffles. ``how``: "read" (8 files in turn), "sequential", or "unbuffered" (sequential with
    ``buffer_size=0``, as ``pretraining_dataset`` reads local files)."""
    import tensorflow as tf

    if how == "read":
        ds = tf.data.Dataset.from_tensor_slices(files).interleave(tf.data.TFRecordDataset,
                                                                  cycle_length=min(len(files), 8))
    else:
        ds = tf.data.TFRecordDataset(files, **({"buffer_size": 0} if how == "unbuffered" else {}))
    return ds.repeat().batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


STREAMS = ("raw_read", "raw_sequential", "raw_unbuffered", "input", "input_simclr")


def stream(name: str, data: str, batch: int):
    """One of STREAMS over the train split of the dataset in ``data``."""
    from senclr import manifest as manifest_lib
    from senclr.dataset import shard_uris
    from senclr.models.augment_config import AugmentConfig
    from senclr.models.data import pretraining_dataset

    m = manifest_lib.read(data, kind="dataset")
    files = shard_uris(data, m, "train")
    if name.startswith("raw_"):
        return raw_stream(files, batch, how=name.removeprefix("raw_"))
    method = "simclr" if name == "input_simclr" else "multimodal"
    return pretraining_dataset(data, m, "train", method, bands={k: m["bands"][k] for k in ("s1", "s2")},
                               global_batch=batch, seed=0, deterministic=False, modality="s1s2",
                               augment_cfg=AugmentConfig() if method == "simclr" else None)


def stream_worker(argv: list[str]) -> None:
    """``--stream NAME --data DIR --batch B --records N --warmup W``: one stream, served to
    ``streams.time_streams`` in the parent process."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream", choices=STREAMS, required=True)
    for flag in ("--batch", "--records", "--warmup"):
        ap.add_argument(flag, type=int, required=True)
    ap.add_argument("--data", required=True)
    a = ap.parse_args(argv)
    from benchmarks.streams import serve

    # SimCLR's augmentations run at about a tenth of the others' rate: shorter blocks
    records = max(4 * a.batch, a.records // 4) if a.stream == "input_simclr" else a.records
    serve(stream(a.stream, a.data, a.batch), a.batch, records, a.warmup)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", choices=("small", "resnet18", "resnet50"), default="small")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--patch-size", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=2000, help="records in the synthetic dataset")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per block")
    ap.add_argument("--repeats", type=int, default=5, help="blocks per measurement (the median counts)")
    ap.add_argument("--records", type=int, default=0,
                    help="records per input-pipeline block (default: 12 x --pairs)")
    ap.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32", help="policy of part 1's models")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, not the targets")
    ap.add_argument("--gpu-peak-tflops", type=float, default=0.0,
                    help="the GPU's dense bf16 peak in TFLOP/s, for a GPU that benchmarks/gpu_peak.py does not list")
    args = ap.parse_args()
    if args.quick:
        args.backbone, args.batch_size, args.patch_size = "small", 16, 16
        args.pairs, args.steps, args.repeats = min(args.pairs, 256), 3, 3
    records = args.records or (1024 if args.quick else 12 * args.pairs)
    if args.pairs < args.batch_size:
        ap.error(f"--pairs ({args.pairs}) must fill one batch of --batch-size ({args.batch_size})")
    if args.gpu_peak_tflops < 0:
        ap.error(f"--gpu-peak-tflops must be a GPU's peak in TFLOP/s (> 0), or 0 to look it up by name; got {args.gpu_peak_tflops}")
    warmup_steps = 2

    t_start = time.perf_counter()
    import keras
    import tensorflow as tf

    from benchmarks.streams import time_streams
    from senclr import manifest as manifest_lib
    from senclr.dataset import shard_uris

    gpus = tf.config.list_physical_devices("GPU")
    devices = ", ".join(f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in tf.config.list_physical_devices())
    print(f"backbone {args.backbone}, global batch {args.batch_size}, patch {args.patch_size}x{args.patch_size} px, "
          f"{args.pairs} pairs in {min(SHARDS, args.pairs)} shards, precision {args.precision}")
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, devices: {devices}, "
          f"{os.cpu_count()} CPU(s), inter/intra-op threads {tf.config.threading.get_inter_op_parallelism_threads()}"
          f"/{tf.config.threading.get_intra_op_parallelism_threads()} (0 = all)")

    with tempfile.TemporaryDirectory(prefix="senclr-bench-") as tmp:
        t0 = time.perf_counter()
        write_dataset(tmp, args.pairs, args.patch_size)
        m = manifest_lib.read(tmp, kind="dataset")
        bands = {"s1": m["bands"]["s1"], "s2": m["bands"]["s2"]}
        print(f"dataset written in {time.perf_counter() - t0:.1f} s (not timed in any ratio)")

        # 1. steps ---------------------------------------------------------------------------
        t0 = time.perf_counter()
        from senclr.models.data import norm_params

        models = {method: build(method, args.backbone, args.batch_size, bands, args.precision, norm_params(m, bands))
                  for method in ("multimodal", "simclr")}
        inputs = step_inputs(args.batch_size, args.patch_size, bands)
        flops = {name: forward_flops(models[name], inputs[name]) for name in models}
        blocks = time_steps(models, inputs, args.steps, args.repeats, warmup_steps)
        step, step_ratio = medians(blocks), paired_ratio(blocks, "multimodal", "simclr")
        print(f"\n1. training steps (train_on_batch on a fixed batch; {warmup_steps} warm-up, median of "
              f"{args.repeats} x {args.steps} steps; jit_compile={models['multimodal'].jit_compile}; "
              f"{time.perf_counter() - t0:.1f} s):")
        for name, what in (("multimodal", "S1 enc. on 2 bands + S2 enc. on 13 bands, B rows"),
                           ("simclr", "one enc. on 15 channels, 2 views of B rows")):
            print(f"  {name:<10} {1 / step[name]:8.2f} steps/s  {1000 * step[name]:8.1f} ms/step  "
                  f"{2 * args.batch_size / step[name]:8.0f} images/s  forward {flops[name] / 1e9:.3f} GFLOP  ({what})")
        del models

        # 2. input pipeline ------------------------------------------------------------------
        t0 = time.perf_counter()
        files = shard_uris(tmp, m, "train")
        # warm-up: a little more than the shuffle buffer (the whole train split here)
        warmup_batches = -(-args.pairs // args.batch_size) + 2
        worker_args = ["--data", tmp, "--batch", str(args.batch_size), "--records", str(records),
                       "--warmup", str(warmup_batches)]
        rate, cores = time_streams(os.path.abspath(__file__), list(STREAMS), args.repeats, worker_args)
        rate["baseline"] = max(rate["raw_read"], rate["raw_sequential"])  # the stricter of the two
        print(f"\n2. input pipeline (records/s, each stream in its own process, timed one at a time, pulled "
              f"in a tf.function as fit does; median of {args.repeats} blocks of {records} records after "
              f"{warmup_batches} warm-up batches; {time.perf_counter() - t0:.1f} s):")
        for name, label, what in (
                ("raw_read", "raw read, interleaved", f"TFRecordDataset x {min(len(files), 8)} in turn, "
                                                      "serialized records only"),
                ("raw_sequential", "raw read, sequential", "one TFRecordDataset"),
                ("raw_unbuffered", "raw read, unbuffered", "one TFRecordDataset, buffer_size=0"),
                ("input", "pretraining_dataset multimodal", "shuffled, parsed, stored dtypes"),
                ("input_simclr", "pretraining_dataset simclr", "s1s2, default augmentation, two views")):
            print(f"  {label:<32} {rate[name]:10.0f} records/s  {cores[name]:4.2f} cores  ({what})")
        print("  (baseline of the ratios: the faster of the first two raw reads)")
        consume = args.batch_size / step["multimodal"]
        print(f"\n3. one multimodal step consumes {consume:.0f} records/s ({args.batch_size} / "
              f"{1000 * step['multimodal']:.1f} ms), one SimCLR step {args.batch_size / step['simclr']:.0f} "
              f"({args.batch_size} / {1000 * step['simclr']:.1f} ms)")

    # GPU only ---------------------------------------------------------------------------------
    if gpus:
        gpu_resnet50(args, bands, tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU"))
    else:
        print("\nResNet-50 bf16 images/s: needs a GPU (none found), skipped")

    print(f"\nwall time {time.perf_counter() - t_start:.1f} s")
    print(f"ratio multimodal_step/simclr_step {step_ratio:.2f} (target <= 1.1)")
    print(f"ratio input/raw_read {rate['input'] / rate['baseline']:.2f} (target >= 0.8)")
    print(f"ratio input/raw_unbuffered {rate['input'] / rate['raw_unbuffered']:.2f} "
          "(information: the pipeline's own way of reading, nothing after it)")
    print(f"ratio input_simclr/raw_read {rate['input_simclr'] / rate['baseline']:.2f} "
          "(information: bound by the augmentations)")
    print(f"ratio input_simclr/simclr_step_consumption {rate['input_simclr'] * step['simclr'] / args.batch_size:.1f} "
          "(target >= 5)")
    print(f"ratio input/step_consumption {rate['input'] / consume:.1f} (target >= 5)")


def gpu_resnet50(args, bands: dict, device_name: str) -> None:
    """ResNet-50 multimodal steps in fp32 and bf16: images/s (2B images a step) and the bf16
    step's share of the device's dense bf16 peak (``benchmarks/gpu_peak.py``)."""
    from benchmarks.gpu_peak import bf16_peak_tflops, share_of_peak

    inputs = step_inputs(args.batch_size, args.patch_size, bands)
    models = {p: build("multimodal", "resnet50", args.batch_size, bands, p) for p in ("fp32", "bf16")}
    blocks = time_steps(models, {p: inputs["multimodal"] for p in models}, args.steps, args.repeats, 3)
    step = medians(blocks)
    flops = forward_flops(models["bf16"], inputs["multimodal"])
    peak = bf16_peak_tflops(device_name, args.gpu_peak_tflops)
    share = share_of_peak(flops, step["bf16"], peak)
    print(f"\nResNet-50 multimodal on {device_name}, batch {args.batch_size}, {args.patch_size}x{args.patch_size} px, "
          f"forward {flops / 1e9:.1f} GFLOP:")
    for p in models:
        print(f"  {p:<5} {2 * args.batch_size / step[p]:8.0f} images/s  {1000 * step[p]:8.1f} ms/step")
    print(f"  bf16 peak {f'{peak:.0f} TFLOP/s' if peak else 'unknown (give --gpu-peak-tflops)'}")
    print(f"ratio resnet50_bf16/fp32_images {paired_ratio(blocks, 'fp32', 'bf16'):.2f} (information: > 1 expected)")
    print(f"ratio resnet50_bf16_share_of_peak {'n/a' if share is None else f'{share:.3g}'} "
          "(information: 3 x forward FLOPs per step against the dense bf16 peak)")


if __name__ == "__main__":
    if "--stream" in sys.argv[1:]:
        stream_worker(sys.argv[1:])
    else:
        main()
