"""Distributed training: MirroredStrategy and MultiWorkerMirroredStrategy steps equal one device's,
and ``senclr.models.strategy`` picks and refuses strategies as documented.

The TensorFlow checks run in subprocesses: logical devices and collective runtimes must be set
up before TensorFlow initialises, once per process. Each script prints one JSON line last.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from senclr.errors import InputError
from senclr.models import strategy as strategy_lib

# CPU only, even on a GPU host: the processes would otherwise share (and each claim) one GPU.
ENV = {**{k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "TPU_NAME")},
       "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}

# Tolerances. Measured on this machine (float32, CPU, oneDNN kernels on as the commands run
# them; 2026-12-06): loss <= 6.8e-7 relative, gradients <= 5.7e-6 of the largest gradient, BN
# moving statistics <= 1.8e-7 absolute, MWMS loss 6.8e-7 relative and updated weights <= 1.4e-5
# apart (oneDNN off: gradients 7.4e-6, statistics 3.9e-7, weights 1.9e-5). Synchronized BN
# computes the variance as E[x^2] - E[x]^2 over the all-reduced sums where one device uses
# tf.nn.moments: that, and the order of the sums, is the whole difference.
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4
STATS_ATOL = 1e-5
WEIGHT_ATOL = 1e-4


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- MirroredStrategy

MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from senclr.models.heads import batch_norms, set_global_batch_norm
    from senclr.models.spec import TrainSpec
    from senclr.models.train import build_model

    method, intra = sys.argv[1], sys.argv[2] == "1"
    LR = 0.5  # SGD: the update is -LR * gradient, so equal updates mean equal gradients
    spec = TrainSpec(method=method, modality="s1s2", width=4, proj_dim=8, temperature=0.2,
                     intra_modal_negatives=intra)
    bands = {"s1": ["VV", "VH"], "s2": ["B2", "B3", "B4"]}

    def make(strategy, global_bn):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = build_model(spec, bands)  # the real encoders and heads, BN included
            set_global_batch_norm(model, global_bn)
            model.compile(optimizer=keras.optimizers.SGD(LR))
        return model

    rng = np.random.default_rng(0)
    x = lambda c: rng.normal(size=(8, 8, 8, c)).astype("float32")
    batch = {"s1": x(2), "s2": x(3)} if method == "multimodal" else {"view1": x(5), "view2": x(5)}
    ds = tf.data.Dataset.from_tensors(batch)  # one global batch of 8 rows: 4 per replica
    arrays = lambda vs: [keras.ops.convert_to_numpy(v) for v in vs]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    models = {"one_device": make(tf.distribute.get_strategy(), False)}  # as train() builds it
    w0 = models["one_device"].get_weights()
    trainable0 = arrays(models["one_device"].trainable_weights)
    models["global_bn"] = make(mirrored, True)
    models["local_bn"] = make(mirrored, False)  # control: per-replica batch statistics
    for m in models.values():
        m.set_weights(w0)
    runs = {}
    for name, m in models.items():
        h = m.fit(ds, epochs=1, shuffle=False, verbose=0).history
        grads = [(a - b) / LR for a, b in zip(trainable0, arrays(m.trainable_weights))]
        runs[name] = (h, grads, arrays(m.non_trainable_weights))

    h1, g1, s1 = runs["one_device"]
    gmax = max(float(np.abs(g).max()) for g in g1)
    out = {"replicas": mirrored.num_replicas_in_sync, "bn_layers": len(batch_norms(models["one_device"])),
           "intra_negatives": models["one_device"].intra_negatives, "loss": h1["loss"][0], "grad_max": gmax,
           "vars_moved": sum(bool(np.any(g != 0)) for g in g1), "vars": len(g1)}
    for name in ("global_bn", "local_bn"):
        h, g, s = runs[name]
        out[name] = {
            "loss": h["loss"][0],
            "loss_rel": abs(h["loss"][0] - h1["loss"][0]) / abs(h1["loss"][0]),
            "retrieval_acc": [h1["retrieval_acc"][0], h["retrieval_acc"][0]],
            "grad_rel": max(float(np.abs(a - b).max()) for a, b in zip(g, g1)) / gmax,
            "stats_diff": max(float(np.abs(a - b).max()) for a, b in zip(s, s1)),
        }
    print(json.dumps(out))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("method,intra", [("multimodal", False), ("multimodal", True), ("simclr", True)],
                         ids=["multimodal", "multimodal-intra", "simclr"])
def test_mirrored_step_with_global_bn_matches_one_device(method, intra):
    """On 2 replicas with synchronized BN, the first step's loss and every gradient (SGD update)
    and BN moving statistic equal one device's on the same global batch; per-replica BN does not."""
    proc = subprocess.run([sys.executable, "-c", MIRRORED, method, str(int(intra))], capture_output=True,
                          text=True, timeout=150, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = _last_json(proc.stdout)
    assert r["replicas"] == 2
    assert r["bn_layers"] > 0 and r["intra_negatives"] is intra
    assert r["grad_max"] > 1e-2 and r["vars_moved"] == r["vars"]  # a real step: every variable moved
    same = r["global_bn"]
    assert same["loss"] == pytest.approx(r["loss"], rel=LOSS_RTOL)
    assert same["grad_rel"] < GRAD_RTOL
    assert same["stats_diff"] < STATS_ATOL
    assert same["retrieval_acc"][1] == pytest.approx(same["retrieval_acc"][0])
    # The control shows the comparison can see BN: local statistics change loss and gradients.
    assert r["local_bn"]["loss_rel"] > 100 * LOSS_RTOL
    assert r["local_bn"]["grad_rel"] > 100 * GRAD_RTOL


# ------------------------------------------------------------------ MultiWorkerMirroredStrategy

# One script for both workers and the single-process reference. Keras 3.15's fit cannot run a
# multi-worker step without ContrastiveModel's workarounds, so the step is also run by hand as fit runs it:
# model.train_step under strategy.run, on the batch strategy.experimental_distribute_dataset
# hands this worker, exactly the call Keras' TFEpochIterator makes for a tf.data.Dataset.
MULTIWORKER = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TF op
    import numpy as np
    import keras
    from senclr.models import strategy as strategy_lib
    from senclr.models.heads import set_global_batch_norm
    from senclr.models.spec import TrainSpec
    from senclr.models.train import build_model

    LR = 0.5
    spec = TrainSpec(method="multimodal", width=4, proj_dim=8, temperature=0.2, intra_modal_negatives=True)
    bands = {"s1": ["VV", "VH"], "s2": ["B2", "B3", "B4"]}
    rng = np.random.default_rng(0)
    batch = {"s1": rng.normal(size=(8, 8, 8, 2)).astype("float32"),
             "s2": rng.normal(size=(8, 8, 8, 3)).astype("float32")}
    # Every worker builds the same global batch of 8; sharding by DATA after Keras/tf.distribute
    # rebatch gives worker i rows 4i..4i+3 (OFF would give every worker rows 0..3).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensors(batch).with_options(options)

    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_model(spec, bands)
        set_global_batch_norm(model, replicas > 1)  # as train() does
        model.compile(optimizer=keras.optimizers.SGD(LR))
        model.optimizer.build(model.trainable_variables)
    w0 = model.get_weights()
    out = {"replicas": replicas, "workers": strategy_lib.worker_count(), "chief": strategy_lib.is_chief()}

    try:  # the real path; fails on 2 workers with Keras 3.15 (tracing only: no collective ran)
        out["fit_loss"] = model.fit(ds, epochs=1, verbose=0).history["loss"][0]
        model.set_weights(w0)
        model.reset_metrics()
    except Exception as e:
        out["fit_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"

    @tf.function
    def train_step(data):
        strategy.run(model.train_step, args=(data,))

    @tf.function
    def row_sums(data):
        return strategy.run(lambda d: tf.reduce_sum(d["s1"], axis=[1, 2, 3]), args=(data,))

    data = next(iter(strategy.experimental_distribute_dataset(ds)))
    rows = [float(v) for t in strategy.experimental_local_results(row_sums(data)) for v in t.numpy()]
    train_step(data)
    w1 = model.get_weights()
    np.savez(sys.argv[1], *w1)
    out.update(loss=float(model.loss_tracker.result()), rows=rows,
               update=max(float(np.abs(a - b).max()) for a, b in zip(w0, w1)))
    print(json.dumps(out), flush=True)
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_together(jobs: list[tuple[list[str], dict]], folder, deadline_s: float) -> list[str]:
    """Run each (command, env) at the same time and return their stdouts; every process is
    killed on failure or after ``deadline_s``. Output goes to files: a pipe could fill and block."""
    procs, logs = [], []
    try:
        for i, (cmd, env) in enumerate(jobs):
            out, err = open(folder / f"out{i}.txt", "w+"), open(folder / f"err{i}.txt", "w+")
            logs.append((out, err))
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True))
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            codes = [p.poll() for p in procs]
            if None not in codes or any(c not in (None, 0) for c in codes):
                break  # one failure leaves its peers waiting on collectives forever
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        for f in (f for pair in logs for f in pair):
            f.flush()
            f.seek(0)
    texts = [(out.read(), err.read()) for out, err in logs]
    for f in (f for pair in logs for f in pair):
        f.close()
    failed = [f"process {i} exited with {p.returncode}\n{stderr[-2000:]}"
              for i, (p, (_, stderr)) in enumerate(zip(procs, texts)) if p.returncode != 0]
    assert not failed, "(-9: killed, after a peer failed or at the deadline)\n" + "\n".join(failed)
    return [stdout for stdout, _ in texts]


@pytest.fixture(scope="module")
def multiworker(tmp_path_factory):
    """Two local workers (TF_CONFIG with two 127.0.0.1 ports) and one process without TF_CONFIG,
    all running MULTIWORKER at once: ([worker 0, worker 1, single] results, their weights)."""
    folder = tmp_path_factory.mktemp("multiworker")
    hosts = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    jobs = [({**ENV, "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})},
             str(folder / f"worker{i}.npz")) for i in range(2)]
    jobs.append((ENV, str(folder / "single.npz")))
    results = [_last_json(out) for out in
               _run_together([([sys.executable, "-c", MULTIWORKER, w], env) for env, w in jobs], folder, 80)]
    weights = []
    for _, path in jobs:
        with np.load(path) as f:
            weights.append([f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))])
    return results, weights


@pytest.mark.slow
def test_multiworker_step_matches_one_worker(multiworker):
    """Two MultiWorkerMirroredStrategy workers, each with 4 of the 8 rows, take the step one
    worker takes on all 8: the same loss and the same updated weights on both workers."""
    (w0, w1, single), (p0, p1, ps) = multiworker
    assert (w0["replicas"], w0["workers"], w0["chief"]) == (2, 2, True)
    assert (w1["replicas"], w1["workers"], w1["chief"]) == (2, 2, False)
    assert (single["replicas"], single["workers"], single["chief"]) == (1, 1, True)
    assert w0["rows"] + w1["rows"] == single["rows"] and len(w0["rows"]) == 4  # each row on one worker
    assert single["fit_loss"] == pytest.approx(single["loss"], rel=1e-6)  # the hand-run step is fit's
    assert w0["loss"] == pytest.approx(single["loss"], rel=LOSS_RTOL)
    assert w1["loss"] == w0["loss"]
    assert single["update"] > 1e-2
    diff = lambda a, b: max(float(np.abs(x - y).max()) for x, y in zip(a, b))
    assert len(p0) == len(ps) and diff(p0, p1) == 0.0  # the workers stay in sync
    assert diff(p0, ps) < WEIGHT_ATOL


@pytest.mark.slow
def test_multiworker_fit_matches_one_worker(multiworker):
    """model.fit itself runs the two-worker step and reports the one-worker loss. Keras 3.15 needs
    ContrastiveModel's two workarounds for it (keras-team/keras#20329, tensorflow/tensorflow#72388)."""
    (w0, w1, single), _ = multiworker
    assert "fit_error" not in w0, w0.get("fit_error")
    assert w0["fit_loss"] == pytest.approx(single["fit_loss"], rel=LOSS_RTOL)
    assert w1["fit_loss"] == w0["fit_loss"]


@pytest.mark.slow
def test_senclr_train_on_two_workers(tmp_path):
    """`senclr train --strategy multiworker` on two local workers: both finish the same steps, the
    chief writes the model (2 replicas recorded), the other worker writes nothing there."""
    from tests.helpers import write_tiny_dataset

    data, model_dir = str(tmp_path / "data"), tmp_path / "m"
    write_tiny_dataset(data, n=48, size=16, seed=3)  # 24 train pairs: 3 steps of 8 an epoch
    hosts = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    cmd = [sys.executable, "-m", "senclr", "train", "--data", data, "--model-dir", str(model_dir),
           "--strategy", "multiworker", "--epochs", "2", "--batch-size", "8", "--width", "4", "--proj-dim", "8"]
    tf_config = lambda i: json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})  # noqa: E731
    _run_together([(cmd, {**ENV, "TF_CONFIG": tf_config(i)}) for i in range(2)], tmp_path, 150)
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["strategy"] == "multiworker" and cfg["replicas"] == 2 and cfg["steps"] == 6
    assert len(cfg["history"]["loss"]) == 2 and all(np.isfinite(cfg["history"]["loss"]))
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "history.csv", "logs", "run.json",
                                                          "s1_encoder.keras", "s2_encoder.keras"]


# ------------------------------------------------------------------ senclr.models.strategy

CHIEF_AND_WORKERS = {"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}, "task": {"type": "chief", "index": 0}}
TWO_WORKERS = {"cluster": {"worker": ["h1:1", "h2:1"]}, "task": {"type": "worker", "index": 0}}


@pytest.fixture
def no_tpu(monkeypatch):
    """No TF_CONFIG, TPU_NAME or TPU device files, whatever the host has."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr(strategy_lib.glob, "glob", lambda pattern: [])
    return monkeypatch


def _with(cfg: dict, index: int | None = None, kind: str | None = None) -> dict:
    task = {**cfg["task"], **({} if index is None else {"index": index}), **({} if kind is None else {"type": kind})}
    return {**cfg, "task": task}


def test_no_tf_config_is_one_chief_host(no_tpu):
    """Without TF_CONFIG there is one host, and it is the chief."""
    assert strategy_lib.tf_config() == {}
    assert strategy_lib.worker_count() == 1 and strategy_lib.is_chief() and strategy_lib.task_id() == "worker-0"
    no_tpu.setenv("TF_CONFIG", "  ")
    assert strategy_lib.tf_config() == {}


def test_chief_and_two_workers(no_tpu):
    """With a chief, the chief writes the model and worker 0 does not; all three hosts count."""
    no_tpu.setenv("TF_CONFIG", json.dumps(CHIEF_AND_WORKERS))
    assert strategy_lib.tf_config() == CHIEF_AND_WORKERS
    assert strategy_lib.worker_count() == 3 and strategy_lib.is_chief() and strategy_lib.task_id() == "chief-0"
    for i in (0, 1):
        worker = _with(CHIEF_AND_WORKERS, i, "worker")
        assert not strategy_lib.is_chief(worker) and strategy_lib.task_id(worker) == f"worker-{i}"


def test_two_workers_without_chief(no_tpu):
    """Without a chief, worker 0 is the chief and worker 1 is not."""
    no_tpu.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert strategy_lib.worker_count() == 2 and strategy_lib.is_chief() and strategy_lib.task_id() == "worker-0"
    second = _with(TWO_WORKERS, 1)
    assert not strategy_lib.is_chief(second) and strategy_lib.task_id(second) == "worker-1"


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]"])
def test_bad_tf_config_is_an_input_error(no_tpu, raw):
    """TF_CONFIG that is not a JSON object is the user's error, with the fix named."""
    no_tpu.setenv("TF_CONFIG", raw)
    with pytest.raises(InputError, match="TF_CONFIG"):
        strategy_lib.tf_config()
    with pytest.raises(InputError):
        strategy_lib.worker_count()


def test_check_refuses_impossible_strategies(no_tpu):
    """tpu without a TPU, multiworker without a cluster and unknown names fail before TF loads."""
    with pytest.raises(InputError, match="no TPU"):
        strategy_lib.check("tpu")
    with pytest.raises(InputError, match="TF_CONFIG"):
        strategy_lib.check("multiworker")
    with pytest.raises(InputError, match="unknown strategy 'horovod'"):
        strategy_lib.check("horovod")
    for name in ("auto", "onedevice", "mirrored"):
        strategy_lib.check(name)
    strategy_lib.check("tpu", tpu="my-tpu")  # an explicit address is evidence enough
    no_tpu.setenv("TPU_NAME", "v5e")
    strategy_lib.check("tpu")
    no_tpu.delenv("TPU_NAME")
    no_tpu.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    strategy_lib.check("multiworker")
    no_tpu.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h1:1"]}, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(InputError, match="at least two workers"):
        strategy_lib.check("multiworker")


def test_resolve_auto(no_tpu):
    """auto is TF's default strategy on this CPU host, multiworker under a cluster TF_CONFIG."""
    tf = pytest.importorskip("tensorflow")
    if len(tf.config.list_physical_devices("GPU")) > 1:
        pytest.skip("several GPUs: auto resolves to mirrored here")
    assert strategy_lib.resolve("auto") == "default"
    assert strategy_lib.resolve("mirrored") == "mirrored"
    no_tpu.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert strategy_lib.resolve("auto") == "multiworker"
