"""models/objective.py against hand-written references (issue 12, mutation check): the loss with
intra-view negatives (SimCLR's 2N views), and the replica-split loss under tf.distribute (two
logical CPUs, in a subprocess: logical devices must be set before TensorFlow starts)."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest


def _log_softmax(x):
    return x - np.log(np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)) - x.max(axis=1, keepdims=True)


def numpy_intra(z1, z2, t):
    """Each anchor against the other view's rows (positive: same row) and its own view's other rows."""
    z1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    z2 = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
    n, out = len(z1), []
    for a, b in ((z1, z2), (z2, z1)):
        own = a @ a.T / t
        np.fill_diagonal(own, -np.inf)  # never its own candidate
        logits = np.concatenate([a @ b.T / t, own], axis=1)
        out.append(-np.mean(_log_softmax(logits)[np.arange(n), np.arange(n)]))
    return 0.5 * sum(out)


def test_the_loss_with_intra_view_negatives_matches_a_numpy_reference():
    import tensorflow as tf

    from senclr.models import objective

    rng = np.random.default_rng(1)
    z1, z2 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    got = objective.nt_xent(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), 0.3, intra_negatives=True)
    assert float(got) == pytest.approx(numpy_intra(z1, z2, 0.3), rel=1e-5)
    l12, l21, labels = objective.cross_modal_logits(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), 0.3, True)
    assert l12.shape == l21.shape == (5, 10) and list(labels.numpy()) == [0, 1, 2, 3, 4]
    assert float(tf.reduce_max(tf.linalg.diag_part(l12[:, 5:]))) < -1e8  # itself masked out


REPLICAS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from senclr.models import objective
    rng = np.random.default_rng(2)
    z1, z2 = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=(6, 4)).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    intra = sys.argv[1] == "1"

    def step(ctx):
        i = ctx.replica_id_in_sync_group
        a, b = tf.constant(z1)[3 * i:3 * i + 3], tf.constant(z2)[3 * i:3 * i + 3]
        _, _, labels = objective.cross_modal_logits(a, b, 0.2, intra)
        return objective.nt_xent(a, b, 0.2, intra), labels

    losses, labels = strategy.run(lambda: step(tf.distribute.get_replica_context()))
    per = [float(x) for x in strategy.experimental_local_results(losses)]
    lab = [x.numpy().tolist() for x in strategy.experimental_local_results(labels)]
    one = float(objective.nt_xent(tf.constant(z1), tf.constant(z2), 0.2, intra))
    print(json.dumps({"per_replica": per, "labels": lab, "one_device": one}))
""")


@pytest.mark.parametrize("intra", [False, True])
def test_the_replica_split_loss_averages_to_the_one_device_loss(intra):
    r = subprocess.run([sys.executable, "-c", REPLICAS, "1" if intra else "0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["labels"] == [[0, 1, 2], [3, 4, 5]]  # each replica's positives sit at its offset in the global batch
    assert np.mean(got["per_replica"]) == pytest.approx(got["one_device"], rel=1e-5)
    assert got["per_replica"][0] != pytest.approx(got["per_replica"][1])  # two different shares
