"""SimCLR's projection head: the MLP between an encoder's pooled features and the loss.

Global average pool, then ``layers - 1`` blocks of Dense (no bias) -> BatchNorm -> ReLU, then a
Dense to ``proj_dim`` with a BatchNorm without offset (SimCLR v2's head; the BN in the head is
what lets a contrastive loss train without collapse at large learning rates). The head is
discarded after pre-training: evaluation uses the encoder's features.
"""

from __future__ import annotations

import keras
from keras import layers

from senclr.models.encoders import BN_MOMENTUM


def projection_head(hidden_dim: int, proj_dim: int, name: str, num_layers: int = 3) -> keras.Sequential:
    """[B, H, W, C] feature map -> [B, proj_dim] embedding (float32 output under mixed precision)."""
    if num_layers < 1:
        raise ValueError(f"a projection head needs >= 1 layer, got {num_layers}")
    stack = [layers.GlobalAveragePooling2D(name=f"{name}_pool")]
    for i in range(num_layers - 1):
        stack += [
            layers.Dense(hidden_dim, use_bias=False, name=f"{name}_dense{i}"),
            layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}"),
            layers.ReLU(name=f"{name}_relu{i}"),
        ]
    stack += [
        layers.Dense(proj_dim, use_bias=False, name=f"{name}_out"),
        layers.BatchNormalization(momentum=BN_MOMENTUM, center=False, name=f"{name}_out_bn"),
        layers.Activation("linear", dtype="float32", name=f"{name}_float32"),  # loss in float32
    ]
    return keras.Sequential(stack, name=name)


def batch_norms(model: keras.Model) -> list:
    """Every BatchNormalization layer inside ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, layers.BatchNormalization)]


def set_global_batch_norm(model: keras.Model, on: bool) -> None:
    """Batch statistics over the global batch (all replicas) instead of each replica's share.

    SimCLR's "global BN": without it each replica normalises its own rows and the network can
    tell positives from negatives by replica-local statistics. Keras reads ``synchronized`` at
    call time, so it can be switched on a built model (and off again before saving).
    """
    for layer in batch_norms(model):
        layer.synchronized = on
