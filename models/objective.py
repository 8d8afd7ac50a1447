"""Cross-modal NT-Xent: an S1 patch and the S2 patch of the same place are each other's positive.

Every other S2 patch in the (global) batch is a negative for an S1 patch and vice versa, so the
loss is InfoNCE / NT-Xent (SimCLR) with the two views coming from two sensors instead of two
augmentations. Under ``tf.distribute`` the other side's embeddings are gathered from every
replica so each replica sees the negatives of the whole global batch, as SimCLR's tf2 code does
(DESIGN.md section 5: all_gather + labels offset by replica id reproduce the one-device loss).
"""

from __future__ import annotations

import tensorflow as tf


def _gather_replicas(z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(embeddings of all replicas stacked in replica order, offset of this replica's rows).

    Outside a strategy, or with one replica, the tensor itself and offset 0.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return z, tf.constant(0, tf.int32)
    offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(z)[0]
    return ctx.all_gather(z, axis=0), offset


def cross_modal_logits(
    z1: tf.Tensor, z2: tf.Tensor, temperature: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Cosine-similarity logits in both directions and the index of each row's positive.

    Args:
      z1: [b, d] S1 embeddings of this replica's rows (not necessarily normalised).
      z2: [b, d] S2 embeddings; row i is the positive of ``z1[i]``.
      temperature: softmax temperature (> 0); small values sharpen the contrast.

    Returns:
      ``logits_12`` [b, B]: each S1 row against every S2 row of the global batch (B = b x replicas),
      ``logits_21`` [b, B]: each S2 row against every S1 row, and ``labels`` [b]: the global
      column of each row's positive.
    """
    z1 = tf.math.l2_normalize(z1, axis=-1)
    z2 = tf.math.l2_normalize(z2, axis=-1)
    z1_all, offset = _gather_replicas(z1)
    z2_all, _ = _gather_replicas(z2)
    labels = tf.range(tf.shape(z1)[0], dtype=tf.int32) + offset
    logits_12 = tf.matmul(z1, z2_all, transpose_b=True) / temperature
    logits_21 = tf.matmul(z2, z1_all, transpose_b=True) / temperature
    return logits_12, logits_21, labels


def nt_xent_from_logits(logits_12: tf.Tensor, logits_21: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean of the two directions' cross entropies (S1->S2 and S2->S1) over this replica's rows."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits
    return 0.5 * (tf.reduce_mean(ce(labels, logits_12)) + tf.reduce_mean(ce(labels, logits_21)))


def nt_xent(z1: tf.Tensor, z2: tf.Tensor, temperature: float = 0.1) -> tf.Tensor:
    """Symmetric cross-modal NT-Xent loss (scalar) of paired embeddings ``z1[i] <-> z2[i]``.

    With no strategy this is the plain loss over the batch. Inside a replica context it is this
    replica's share, computed against the global batch: the mean over replicas equals the
    one-device loss on the concatenated batch. Scale it by ``1 / num_replicas_in_sync`` before
    taking gradients, because Keras sums gradients over replicas.
    """
    return nt_xent_from_logits(*cross_modal_logits(z1, z2, temperature))


def top1_retrieval(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per row 1.0 when its positive is the most similar candidate, else 0.0 (float32 [b])."""
    hit = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return tf.cast(hit, tf.float32)
