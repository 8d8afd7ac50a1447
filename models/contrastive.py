"""What both pre-training methods share: a two-view NT-Xent train step under ``model.fit``.

A method defines ``embed(inputs, training) -> (z_a, z_b)``; this class turns the two views into
the loss and a retrieval metric. The steps follow DESIGN.md section 5, so one code path is right
on one device, under MirroredStrategy, MultiWorkerMirroredStrategy and TPUStrategy: the
per-replica loss is divided by ``num_replicas_in_sync`` (Keras sums replica gradients), scaled
by the optimizer for fp16 (``scale_loss`` is a no-op otherwise), and reported through Mean
trackers (a raw tensor returned from ``train_step`` reads 0.0 in the History under a strategy).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from senclr.dataset_tf import standardize
from senclr.models import backup, objective


def num_replicas() -> int:
    ctx = tf.distribute.get_replica_context()
    return 1 if ctx is None else ctx.num_replicas_in_sync


def _multi_worker() -> bool:
    """True inside a MultiWorkerMirroredStrategy that spans several hosts."""
    strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def sensor_inputs(data, keys: tuple[str, ...]) -> dict:
    """The input dict from whatever ``fit``/``evaluate`` hands a step (``fit`` reads tuples as (x, y))."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    if not isinstance(x, dict) or not all(k in x for k in keys):
        raise TypeError(f"{type(data).__name__} batches must be dicts with keys {keys}, not tuples")
    return x


class ContrastiveModel(keras.Model):
    """Base of the methods: NT-Xent between two embedded views of each row.

    Args:
      temperature: NT-Xent temperature.
      intra_negatives: also use the anchor's own view's other rows as negatives.
    """

    input_keys: tuple[str, ...] = ()

    def __init__(self, temperature: float = 0.1, intra_negatives: bool = False, input_norm: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.intra_negatives = bool(intra_negatives)
        # {input key: senclr.normalize.band_params(...)}: inputs arrive in physical units and are
        # clipped and standardised here, on the accelerator, instead of in the input pipeline.
        self.input_norm = dict(input_norm or {})
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.retrieval_tracker = keras.metrics.Mean(name="retrieval_acc")
        backup.add_epoch_counter(self)

    @property
    def metrics(self):
        # Listed here so Keras resets them every epoch and aggregates them across replicas.
        return [self.loss_tracker, self.retrieval_tracker]

    def embed(self, inputs: dict, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def contrastive_loss(self, inputs, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """(this replica's NT-Xent, its rows' top-1 retrieval hits), both float32."""
        za, zb = self.embed(inputs, training)
        logits_ab, logits_ba, labels = objective.cross_modal_logits(za, zb, self.temperature, self.intra_negatives)
        loss = objective.nt_xent_from_logits(logits_ab, logits_ba, labels)
        return loss, objective.top1_retrieval(logits_ab, labels)

    def _report(self, loss, hits) -> dict:
        self.loss_tracker.update_state(loss)
        self.retrieval_tracker.update_state(hits)
        logs = {m.name: m.result() for m in self.metrics}
        if _multi_worker():
            # Keras 3.15 reduces step outputs across workers with reduce(..., axis=0), which
            # fails on scalars (tensorflow/tensorflow#72388); it turns [1] back into a scalar.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 reduces a dict batch of PerReplica values here to build the model
        # symbolically, which fails across workers (keras-team/keras#20329). The methods are
        # built before fit and compile no losses or metrics: only the optimizer needs building.
        if not all(layer.built for layer in self._flatten_layers()):
            return super()._maybe_symbolic_build(iterator, data_batch)
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=None)

    def normalized(self, inputs: dict) -> dict:
        """Inputs clipped to [p1, p99] and standardised, S2's no data to 0 (``senclr.normalize``'s arithmetic)."""
        out = dict(inputs)
        for key, p in self.input_norm.items():
            out[key] = standardize(tf.cast(inputs[key], tf.float32), p)
        return out

    def train_step(self, data):
        inputs = self.normalized(sensor_inputs(data, self.input_keys))
        with tf.GradientTape() as tape:
            loss, hits = self.contrastive_loss(inputs, training=True)
            scaled = self.optimizer.scale_loss(loss / tf.cast(num_replicas(), loss.dtype))
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._report(loss, hits)

    def test_step(self, data):
        loss, hits = self.contrastive_loss(self.normalized(sensor_inputs(data, self.input_keys)), training=False)
        return self._report(loss, hits)
