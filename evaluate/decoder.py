"""A U-Net-style decoder over an encoder's feature pyramid, for segmentation benchmarks.

From the coarsest map up: resize to the next finer map, concatenate it (the skip connection),
two 3x3 conv-BN-ReLU; at the end, resize to the input size and a 1x1 convolution to the classes.
Frozen mode trains only the decoder on features the encoder computes in inference mode (its
batch norms frozen too); fine-tuned mode trains encoder and decoder together. Bilinear resizes
to the actual size of each skip keep odd input sizes aligned, whatever the encoder's strides.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from senclr.models.backbones import multiscale

MODES = ("frozen", "finetune")


class ResizeLike(layers.Layer):
    """Bilinear resize of x to the height and width of ``like`` (known only at run time)."""

    def call(self, inputs):
        x, like = inputs
        return tf.image.resize(x, tf.shape(like)[1:3], method="bilinear")

    def compute_output_shape(self, shapes):
        return (*shapes[1][:3], shapes[0][-1])


def _block(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_segmenter(encoder: keras.Model, backbone: str, num_classes: int = 2, mode: str = "frozen",
                    width: int = 32) -> keras.Model:
    """[B, H, W, C] -> logits [B, H, W, num_classes] through ``encoder``'s pyramid and the decoder.

    ``width`` is the decoder's channels at the finest level, doubling per coarser level (max 8x).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    pyramid = multiscale(encoder, backbone)
    pyramid.trainable = mode == "finetune"
    x = keras.Input((None, None, encoder.input_shape[-1]), name="image")
    feats = pyramid(x, training=False) if mode == "frozen" else pyramid(x)
    feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
    y = feats[-1]
    for level in range(len(feats) - 2, -1, -1):
        skip = feats[level]
        y = ResizeLike(name=f"up{level}")([y, skip])
        y = layers.Concatenate(name=f"skip{level}")([y, skip])
        y = _block(y, width * min(2 ** level, 8), f"dec{level}")
    y = ResizeLike(name="to_input")([y, x])
    logits = layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(y)
    return keras.Model(x, logits, name=f"segmenter_{mode}_{encoder.name}")
