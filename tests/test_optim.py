"""models/lars.py and models/optim.py: the LARS update, its serialisation and distribution, LR helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from senclr.models.lars import LARS  # noqa: E402
from senclr.models.optim import build_optimizer, scaled_learning_rate, warmup_cosine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def reference_lars(w, grads, lrs, wd, tc, nesterov, adapt, momentum=0.9):
    """The LARS update in float64 numpy, straight from the formula."""
    v = np.zeros_like(w)
    for g, lr in zip(grads, lrs):
        if adapt:
            g = g + wd * w
            wn, gn = np.linalg.norm(w), np.linalg.norm(g)
            lr = lr * (tc * wn / gn if wn > 0 and gn > 0 else 1.0)
        v = momentum * v + lr * g
        w = w - (momentum * v + lr * g if nesterov else v)
    return w


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("scheduled", [False, True])
def test_lars_matches_numpy_reference(nesterov, scheduled):
    rng = np.random.default_rng(0)
    init = {"kernel": (rng.normal(size=(3, 4)), True),
            "bias": (rng.normal(size=(4,)), False),          # rank 1: excluded
            "skip_kernel": (rng.normal(size=(4, 2)), False),  # excluded by name
            "zero_kernel": (np.zeros((2, 3)), True)}          # ||w|| = 0: trust 1 on step 1
    variables = [keras.Variable(w.astype("float32"), name=n) for n, (w, _) in init.items()]
    grads = [[rng.normal(size=w.shape).astype("float32") for w, _ in init.values()] for _ in range(4)]
    lr = keras.optimizers.schedules.ExponentialDecay(0.5, 1, 0.7) if scheduled else 0.5
    # A large trust coefficient, so that adaptation visibly changes the result.
    opt = LARS(lr, weight_decay=0.1, trust_coefficient=0.3, nesterov=nesterov, exclude_from_adaptation=["skip"])
    for step in grads:
        opt.apply(step, variables)
    lrs = [float(lr(k)) if scheduled else lr for k in range(len(grads))]
    for i, (var, (w0, adapt)) in enumerate(zip(variables, init.values())):
        w0 = w0.astype("float32").astype(np.float64)
        want = reference_lars(w0, [g[i].astype(np.float64) for g in grads], lrs, 0.1, 0.3, nesterov, adapt)
        np.testing.assert_allclose(var.numpy() - w0, want - w0, rtol=1e-5, atol=1e-6, err_msg=var.name)
    assert int(opt.iterations.numpy()) == len(grads)
    assert opt.weight_decay is None  # the base class must not decay as well


@pytest.fixture
def no_op_determinism():
    """Keras silently drops jit_compile=True while op determinism is on, which is process-wide
    (`train` restores it after a `--deterministic` run, but anything else in the same test
    process may have left it on): off for this test, restored afterwards."""
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    yield
    if was:
        config.enable_op_determinism()


@pytest.mark.parametrize("jit", [False, True])
def test_lars_trains_with_fit(jit, no_op_determinism):
    keras.utils.set_random_seed(1)
    x = np.random.default_rng(1).normal(size=(256, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.3).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])
    opt = LARS(warmup_cosine(0.3, 48, 4), weight_decay=1e-4, trust_coefficient=0.1)
    model.compile(optimizer=opt, loss="mse", jit_compile=jit)
    assert model.jit_compile == jit  # XLA really compiles the LARS update in the jit case
    loss = model.fit(x, y, batch_size=32, epochs=6, verbose=0).history["loss"]
    assert loss[-1] < 0.25 * loss[0], loss


def test_lars_config_round_trip():
    opt = LARS(warmup_cosine(1.0, 100, 10), momentum=0.8, weight_decay=1e-4, trust_coefficient=0.01,
               nesterov=True, exclude_from_adaptation=["bn"])
    config = opt.get_config()
    assert config["weight_decay"] == 1e-4 and config["exclude_from_adaptation"] == ["bn"]
    assert LARS.from_config(opt.get_config()).get_config() == config
    restored = keras.optimizers.deserialize(json.loads(json.dumps(keras.optimizers.serialize(opt))))
    assert isinstance(restored, LARS) and restored.get_config() == config and restored.weight_decay is None


# Three apply_gradients steps of a 2-layer model, on one device and mirrored on two; then model.fit.
DISTRIBUTED = """
import json, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from senclr.models.lars import LARS
rng = np.random.default_rng(0)
x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
init = [rng.normal(size=s).astype("float32") for s in [(3, 4), (4,), (4, 1), (1,)]]

def train(strategy):
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
        model.set_weights(init)
        opt = LARS(0.1, weight_decay=1e-2, trust_coefficient=0.1, nesterov=True)
        opt.build(model.trainable_variables)  # lazily in tf.function fails mirrored (SGD too)
    batch = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(8))))
    def replica_step(xb, yb):
        with tf.GradientTape() as tape:  # over the global batch: the replicas' gradients add up
            loss = tf.reduce_sum(tf.square(model(xb) - yb)) / 8.0
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    step = tf.function(lambda xb, yb: strategy.run(replica_step, (xb, yb)))
    for _ in range(3):
        step(*batch)
    copies = [getattr(v.value, "values", [v.value]) for v in model.trainable_variables]
    return [[c.numpy().tolist() for c in cs] for cs in copies]

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {"init": [w.tolist() for w in init], "one": train(tf.distribute.OneDeviceStrategy("/cpu:0")),
       "two": train(mirrored), "replicas": mirrored.num_replicas_in_sync}
with mirrored.scope():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=LARS(0.5, weight_decay=1e-2), loss="mse", jit_compile=False)
out["fit_loss"] = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history["loss"]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_lars_mirrored_matches_one_device():
    proc = subprocess.run([sys.executable, "-c", DISTRIBUTED], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and np.isfinite(out["fit_loss"]).all()
    for init, [one], [two_a, two_b] in zip(out["init"], out["one"], out["two"]):
        assert not np.allclose(one, init)
        np.testing.assert_allclose(two_a, one, rtol=1e-5, atol=1e-6)  # only the all-reduce order differs
        np.testing.assert_array_equal(two_a, two_b)  # the replicas' copies stay identical


@pytest.mark.parametrize("scaling, base, want",
                         [("linear", 0.3, 4.8), ("sqrt", 0.075, 4.8), ("none", 0.3, 0.3)])
def test_scaled_learning_rate(scaling, base, want):
    assert scaled_learning_rate(base, 4096, scaling) == pytest.approx(want)
    with pytest.raises(ValueError, match="linear, sqrt, none"):
        scaled_learning_rate(base, 4096, "cubic")


def test_warmup_cosine():
    at = {k: float(warmup_cosine(2.0, total_steps=110, warmup_steps=10)(k)) for k in (0, 5, 10, 60, 110, 500)}
    assert at[0] == 0.0 and at[5] == pytest.approx(1.0) and at[10] == pytest.approx(2.0)
    assert abs(at[60] - 1.0) < 1e-6 and abs(at[110]) < 1e-6 and abs(at[500]) < 1e-6
    assert float(warmup_cosine(1.0, 10, 0)(0)) == pytest.approx(1.0)  # no warm-up
    for bad in [(1.0, 10, 10), (1.0, 10, -1), (1.0, 0, 0), (-1.0, 10, 1)]:
        with pytest.raises(ValueError):
            warmup_cosine(*bad)


def test_build_optimizer_kinds():
    lars = build_optimizer("lars", 0.1, 1e-6)
    assert isinstance(lars, LARS)
    assert (lars.momentum, lars.lars_weight_decay, lars.trust_coefficient) == (0.9, 1e-6, 1e-3)
    assert type(build_optimizer("adam", 0.1, 0.0)) is keras.optimizers.Adam
    assert isinstance(build_optimizer("adamw", 0.1, 0.1), keras.optimizers.AdamW)
    with pytest.raises(ValueError, match="adamw or lars"):
        build_optimizer("adam", 0.1, 1e-4)
    with pytest.raises(ValueError, match="lars, adamw, adam"):
        build_optimizer("sgd", 0.1, 0.0)


def test_adamw_does_not_decay_rank1_variables():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, bias_initializer="ones"),
                              keras.layers.BatchNormalization(beta_initializer="ones")])
    before = [v.numpy() for v in model.trainable_variables]
    opt = build_optimizer("adamw", 0.01, 0.5, model.trainable_variables)
    # A zero gradient makes Adam's own step zero, so only the decoupled decay can move a variable.
    opt.apply([tf.zeros_like(v) for v in model.trainable_variables], model.trainable_variables)
    for var, old in zip(model.trainable_variables, before):
        factor = 1.0 - 0.01 * 0.5 if len(var.shape) > 1 else 1.0
        np.testing.assert_allclose(var.numpy(), old * factor, rtol=1e-6, err_msg=var.path)
