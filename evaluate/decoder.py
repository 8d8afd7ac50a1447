"""A U-Net-style decoder over an encoder's feature pyramid, for segmentation benchmarks.

From the coarsest map up: resize to the next finer map, concatenate it (the skip connection),
two 3x3 conv-BN-ReLU; at the end, resize to the output size and a 1x1 convolution to the
classes. Frozen mode trains only the decoder on features the encoder computes in inference mode
(its batch norms frozen too); fine-tuned mode trains encoder and decoder together. Bilinear
resizes to the actual size of each skip keep odd input sizes aligned, whatever the strides.

``pyramid`` also fuses two encoders (an S1 and an S2 encoder of a multimodal model) late: the
stacked input is split by channel and their maps are concatenated level by level.
``decoder_model`` is the decoder alone, on feature maps computed once and cached (frozen runs).
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


class ResizeTo(layers.Layer):
    """Bilinear resize to a fixed (height, width): the chip size of a cached-feature decoder."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(int(s) for s in size)

    def call(self, x):
        return tf.image.resize(x, self.size, method="bilinear")

    def compute_output_shape(self, shape):
        return (shape[0], *self.size, shape[-1])


class Channels(layers.Layer):
    """Channels [start, stop) of the input: one sensor's bands out of a stacked S1+S2 input."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[..., self.start:self.stop]

    def compute_output_shape(self, shape):
        return (*shape[:-1], self.stop - self.start)


def pyramid(encoders: list[keras.Model], backbone: str) -> keras.Model:
    """Model from the channel-stacked input of ``encoders`` to their feature maps per level.

    One encoder: its own pyramid. Several (same backbone): each reads its channels, in order,
    and the maps of one level are concatenated.
    """
    if len(encoders) == 1:
        return multiscale(encoders[0], backbone)
    channels = [e.input_shape[-1] for e in encoders]
    x = keras.Input((None, None, sum(channels)), name="stacked")
    levels, start = [], 0
    for i, (enc, c) in enumerate(zip(encoders, channels)):
        feats = multiscale(enc, backbone)(Channels(start, start + c, name=f"bands{i}")(x))
        levels.append(list(feats) if isinstance(feats, (list, tuple)) else [feats])
        start += c
    fused = [layers.Concatenate(name=f"fuse{lvl}")(list(maps)) for lvl, maps in enumerate(zip(*levels))]
    return keras.Model(x, fused, name="fused_multiscale")


def _block(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def decode(feats: list, to_size, num_classes: int, width: int):
    """Logits from the pyramid ``feats`` (finest first); ``to_size(y)`` resizes to the output.

    ``width`` is the decoder's channels at the finest level, doubling per coarser level (max 8x).
    """
    y = feats[-1]
    for level in range(len(feats) - 2, -1, -1):
        skip = feats[level]
        y = ResizeLike(name=f"up{level}")([y, skip])
        y = layers.Concatenate(name=f"skip{level}")([y, skip])
        y = _block(y, width * min(2 ** level, 8), f"dec{level}")
    return layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(to_size(y))


def segmenter(features: keras.Model, num_classes: int = 2, mode: str = "frozen", width: int = 32) -> keras.Model:
    """[B, H, W, C] -> logits [B, H, W, num_classes] through the pyramid model ``features``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    features.trainable = mode == "finetune"
    x = keras.Input((None, None, features.input_shape[-1]), name="image")
    feats = features(x, training=False) if mode == "frozen" else features(x)
    feats = list(feats) if isinstance(feats, (list, tuple)) else [feats]
    logits = decode(feats, lambda y: ResizeLike(name="to_input")([y, x]), num_classes, width)
    return keras.Model(x, logits, name=f"segmenter_{mode}_{features.name}")


def build_segmenter(encoder: keras.Model, backbone: str, num_classes: int = 2, mode: str = "frozen",
                    width: int = 32) -> keras.Model:
    """``segmenter`` over one encoder's pyramid."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return segmenter(multiscale(encoder, backbone), num_classes, mode, width)


def decoder_model(channels: list[int], size: tuple[int, int], num_classes: int = 2, width: int = 32) -> keras.Model:
    """The decoder alone: feature maps with ``channels`` per level (finest first) -> logits at ``size``."""
    feats = [keras.Input((None, None, c), name=f"level{i}") for i, c in enumerate(channels)]
    logits = decode(feats, ResizeTo(size, name="to_chip"), num_classes, width)
    return keras.Model(feats, logits, name="decoder")
