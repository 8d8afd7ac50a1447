"""The S1/S2 dual encoder: two encoders, two projection heads, cross-modal NT-Xent.

Inputs are dicts {"s1": [B,H,W,n1], "s2": [B,H,W,n2]}: ``fit`` would read a tuple as (x, y).
The custom train/test steps follow DESIGN.md section 5 so the same code is right on one device
and under MirroredStrategy: the per-replica loss is divided by ``num_replicas_in_sync`` (Keras
sums replica gradients) and the loss is reported through a Mean tracker (a raw tensor returned
from ``train_step`` reads 0.0 in the History under a strategy).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from senclr.models import objective

SENSORS = ("s1", "s2")


def projection_head(hidden_dim: int, proj_dim: int, name: str) -> keras.Sequential:
    """Global average pool -> Dense -> ReLU -> Dense: the SimCLR head, discarded after training."""
    return keras.Sequential(
        [
            layers.GlobalAveragePooling2D(name=f"{name}_pool"),
            layers.Dense(hidden_dim, name=f"{name}_hidden"),
            layers.ReLU(name=f"{name}_relu"),
            layers.Dense(proj_dim, name=f"{name}_out"),
        ],
        name=name,
    )


def _sensor_inputs(data) -> dict:
    """The {"s1", "s2"} dict from whatever ``fit``/``evaluate`` hands a step."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    if not isinstance(x, dict) or not all(s in x for s in SENSORS):
        raise TypeError("DualEncoder expects batches as dicts {'s1': ..., 's2': ...}, not tuples")
    return x


def _num_replicas() -> int:
    ctx = tf.distribute.get_replica_context()
    return 1 if ctx is None else ctx.num_replicas_in_sync


class DualEncoder(keras.Model):
    """Pairs an S1 and an S2 encoder in one embedding space by cross-modal contrast.

    Args:
      s1_encoder, s2_encoder: models mapping each sensor's patches to feature maps (separate
        weights: SAR and optical images share no low-level statistics).
      proj_dim: size of the embedding the loss compares.
      temperature: NT-Xent temperature.
      hidden_dim: width of each head's hidden layer; defaults to the S1 feature channels.
    """

    def __init__(self, s1_encoder, s2_encoder, proj_dim: int = 64, temperature: float = 0.1,
                 hidden_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.s1_encoder = s1_encoder
        self.s2_encoder = s2_encoder
        hidden = hidden_dim or int(s1_encoder.output.shape[-1])
        self.s1_head = projection_head(hidden, proj_dim, "s1_head")
        self.s2_head = projection_head(hidden, proj_dim, "s2_head")
        self.temperature = float(temperature)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.retrieval_tracker = keras.metrics.Mean(name="retrieval_acc")

    @property
    def metrics(self):
        # Listed here so Keras resets them every epoch and aggregates them across replicas.
        return [self.loss_tracker, self.retrieval_tracker]

    def call(self, inputs, training=False):
        """Projected embeddings {"s1": [B, proj_dim], "s2": [B, proj_dim]}."""
        z1 = self.s1_head(self.s1_encoder(inputs["s1"], training=training), training=training)
        z2 = self.s2_head(self.s2_encoder(inputs["s2"], training=training), training=training)
        return {"s1": z1, "s2": z2}

    def contrastive_loss(self, inputs, training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """(this replica's NT-Xent, its rows' S1->S2 top-1 retrieval hits)."""
        z = self(inputs, training=training)
        logits_12, logits_21, labels = objective.cross_modal_logits(z["s1"], z["s2"], self.temperature)
        loss = objective.nt_xent_from_logits(logits_12, logits_21, labels)
        return loss, objective.top1_retrieval(logits_12, labels)

    def _report(self, loss, hits) -> dict:
        self.loss_tracker.update_state(loss)
        self.retrieval_tracker.update_state(hits)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        inputs = _sensor_inputs(data)
        with tf.GradientTape() as tape:
            loss, hits = self.contrastive_loss(inputs, training=True)
            scaled = loss / tf.cast(_num_replicas(), loss.dtype)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._report(loss, hits)

    def test_step(self, data):
        loss, hits = self.contrastive_loss(_sensor_inputs(data), training=False)
        return self._report(loss, hits)
