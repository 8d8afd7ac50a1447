"""NT-Xent (InfoNCE) for two views of one batch: S1/S2 pairs or two augmentations of one patch.

Row i of view a and row i of view b are each other's positive. The negatives of an anchor are
the other view's rows of the whole global batch and, with ``intra_negatives``, its own view's
other rows as well: that is SimCLR's loss over 2N views, and what ``--method simclr`` always
uses; ``--method multimodal`` uses it on request (``--intra-modal-negatives``), otherwise only
the other sensor's rows are candidates, as in arXiv 2209.02329.

Under ``tf.distribute`` the embeddings are gathered from every replica, so each replica scores
its rows against the negatives of the whole global batch, as SimCLR's tf2 code does (DESIGN.md
section 5: all_gather + labels offset by replica id reproduce the one-device loss). Everything
is computed in float32 whatever the model's compute dtype (bf16 logits lose the contrast).
"""

from __future__ import annotations

import tensorflow as tf

LARGE_NUM = 1e9  # subtracted from an anchor's similarity with itself: never its own candidate


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
    z1: tf.Tensor, z2: tf.Tensor, temperature: float, intra_negatives: bool = False
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Cosine-similarity logits of each view's rows against their candidates, and the positives.

    Args:
      z1: [b, d] embeddings of view a (S1, or augmentation 1) of this replica's rows.
      z2: [b, d] embeddings of view b; row i is the positive of ``z1[i]``.
      temperature: softmax temperature (> 0); small values sharpen the contrast.
      intra_negatives: also contrast each anchor with the other rows of its own view.

    Returns:
      ``logits_12`` [b, B] (or [b, 2B] with intra negatives): each z1 row against every z2 row
      of the global batch (B = b x replicas), then against every other z1 row; ``logits_21``
      the same from z2's side; ``labels`` [b]: the column of each row's positive.
    """
    z1 = tf.math.l2_normalize(tf.cast(z1, tf.float32), axis=-1)
    z2 = tf.math.l2_normalize(tf.cast(z2, tf.float32), axis=-1)
    z1_all, offset = _gather_replicas(z1)
    z2_all, _ = _gather_replicas(z2)
    labels = tf.range(tf.shape(z1)[0], dtype=tf.int32) + offset
    logits_12 = tf.matmul(z1, z2_all, transpose_b=True) / temperature
    logits_21 = tf.matmul(z2, z1_all, transpose_b=True) / temperature
    if intra_negatives:
        self_mask = tf.one_hot(labels, tf.shape(z1_all)[0]) * LARGE_NUM
        logits_11 = tf.matmul(z1, z1_all, transpose_b=True) / temperature - self_mask
        logits_22 = tf.matmul(z2, z2_all, transpose_b=True) / temperature - self_mask
        logits_12 = tf.concat([logits_12, logits_11], axis=1)
        logits_21 = tf.concat([logits_21, logits_22], axis=1)
    return logits_12, logits_21, labels


def nt_xent_from_logits(logits_12: tf.Tensor, logits_21: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean of the two directions' cross entropies over this replica's rows: the mean over all
    2b anchors, i.e. SimCLR's loss divided by 2 (SimCLR sums the two directions)."""
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits
    return 0.5 * (tf.reduce_mean(ce(labels, logits_12)) + tf.reduce_mean(ce(labels, logits_21)))


def nt_xent(z1: tf.Tensor, z2: tf.Tensor, temperature: float = 0.1, intra_negatives: bool = False) -> tf.Tensor:
    """Symmetric NT-Xent loss (scalar float32) of paired embeddings ``z1[i] <-> z2[i]``.

    With no strategy this is the plain loss over the batch. Inside a replica context it is this
    replica's share, computed against the global batch: the mean over replicas equals the
    one-device loss on the concatenated batch. Scale it by ``1 / num_replicas_in_sync`` before
    taking gradients, because Keras sums gradients over replicas.
    """
    return nt_xent_from_logits(*cross_modal_logits(z1, z2, temperature, intra_negatives))


def top1_retrieval(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per row 1.0 when its positive is the most similar candidate, else 0.0 (float32 [b])."""
    hit = tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels)
    return tf.cast(hit, tf.float32)
