"""Encoder backbones for either sensor: ``small``, ``resnet18`` and ``resnet50``.

- ``small``: the CPU network of ``encoders.py`` (output stride 2, ``2*width`` channels).
- ``resnet18``: written here in the layer style and naming of Keras' ResNet, because
  ``keras.applications`` has no ResNet-18 and keras-hub's ``ResNetBackbone`` would bring
  tensorflow-text, tokenizers and kagglehub along for one small network. Basic blocks as in
  He et al. (2016) and torchvision: bias-free convolutions, since batch norm follows each one.
- ``resnet50``: ``keras.applications.ResNet50`` without top or weights. It takes any channel
  count (it only warns outside 1 or 3) and unknown H, W (its 32-pixel minimum is checked only
  on static sizes).

Every backbone accepts [B, H, W, C] with any H, W and returns its final feature map.
``FEATURE_LAYERS`` names the maps a segmentation decoder taps: strides 4, 8, 16, 32 for the
ResNets (last block of conv2..conv5), 1 and 2 for ``small``; ``multiscale`` exposes them.

Every batch norm uses momentum ``encoders.BN_MOMENTUM`` (0.9, SimCLR's value) instead of
Keras' 0.99, whose moving statistics lag far behind the batch statistics in short runs.
"""

from __future__ import annotations

import warnings

import keras
from keras import layers

from senclr.models import encoders
from senclr.models.spec import BACKBONES

BN_EPSILON = 1.001e-5  # Keras' ResNet value

FEATURE_LAYERS: dict[str, list[tuple[str, int]]] = {
    "small": [("stem2_relu", 1), ("res1_out", 2)],
    # Last block of each stage conv2..conv5 (ResNet-50 stages have 3, 4, 6, 3 blocks).
    "resnet18": [(f"conv{s}_block2_out", 2**s) for s in (2, 3, 4, 5)],
    "resnet50": [(f"conv{s}_block{n}_out", 2**s) for s, n in ((2, 3), (3, 4), (4, 6), (5, 3))],
}
_CHANNELS = {"resnet18": 512, "resnet50": 2048}


def _check(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def feature_channels(backbone: str, width: int = 32) -> int:
    """Channels of the final feature map (``width`` matters for ``small`` only)."""
    _check(backbone)
    return encoders.feature_channels(width) if backbone == "small" else _CHANNELS[backbone]


def output_stride(backbone: str) -> int:
    """Factor by which the final feature map is smaller than the input (sizes round up)."""
    _check(backbone)
    return encoders.DOWNSAMPLE if backbone == "small" else 32


def _bn(x, name: str):
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=encoders.BN_MOMENTUM, name=name)(x)


def _basic_block(x, filters: int, stride: int, name: str):
    """Two 3x3 convolutions; a 1x1 projection shortcut where the shape changes."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_1_conv")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(_bn(x, f"{name}_1_bn"))
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, _bn(x, f"{name}_2_bn")])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _resnet18(inputs, name: str) -> keras.Model:
    x = layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.Activation("relu", name="conv1_relu")(_bn(x, "conv1_bn"))
    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, filters in enumerate((64, 128, 256, 512), start=2):
        x = _basic_block(x, filters, 1 if stage == 2 else 2, f"conv{stage}_block1")
        x = _basic_block(x, filters, 1, f"conv{stage}_block2")
    return keras.Model(inputs, x, name=name)


def _resnet50(inputs, name: str) -> keras.Model:
    with warnings.catch_warnings():  # "usually expects 1 or 3 input channels": fine without weights
        warnings.filterwarnings("ignore", message="This model usually expects")
        model = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=inputs, name=name)
    # Given input_tensor, Keras makes the input a one-element list, so calling on a bare tensor
    # warns; rebuilding on the same layers makes it a plain tensor input like the others.
    model = keras.Model(inputs, model.output, name=name)
    # Keras reads `momentum` at call time and saves it in the layer config, so this sticks.
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = encoders.BN_MOMENTUM
    return model


def build_backbone(backbone: str, in_channels: int, width: int = 32, name: str = "encoder") -> keras.Model:
    """Backbone mapping [B, H, W, in_channels] (any H, W) to its final feature map.

    ``width`` sets the ``small`` network's channels and is ignored by the ResNets. The model is
    called ``name`` and its input ``f"{name}_input"``.
    """
    _check(backbone)
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if backbone == "small":
        return encoders.build_encoder(in_channels, width, name)
    inputs = keras.Input((None, None, in_channels), name=f"{name}_input")
    return (_resnet18 if backbone == "resnet18" else _resnet50)(inputs, name)


def multiscale(encoder: keras.Model, backbone: str) -> keras.Model:
    """Model on ``encoder``'s input returning the FEATURE_LAYERS maps, sharing its weights."""
    _check(backbone)
    outputs = [encoder.get_layer(layer).output for layer, _ in FEATURE_LAYERS[backbone]]
    return keras.Model(encoder.input, outputs, name=f"{encoder.name}_multiscale")
