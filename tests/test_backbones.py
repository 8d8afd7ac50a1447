"""models/backbones.py: shapes, feature taps, parameter counts, BN momentum, save and load."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from senclr.models import backbones  # noqa: E402
from senclr.models.backbones import build_backbone, multiscale  # noqa: E402
from senclr.models.encoders import BN_MOMENTUM  # noqa: E402

# ResNet-50 at 64x64 builds and runs in under 2 s per test on 2 cores: no slow mark needed.
ALL = list(backbones.BACKBONES)
MULTISCALE = {
    "small": [(64, 32), (32, 64)],  # width 32: stem at width, output at 2*width
    "resnet18": [(16, 64), (8, 128), (4, 256), (2, 512)],
    "resnet50": [(16, 256), (8, 512), (4, 1024), (2, 2048)],
}


def _x(size: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(2, size, size, channels)).astype("float32")


def _bn_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.parametrize("backbone", ALL)
@pytest.mark.parametrize("channels", [2, 13, 15])
def test_output_shape_any_channel_count(backbone, channels):
    model = build_backbone(backbone, channels, width=8)
    side = 64 // backbones.output_stride(backbone)
    assert model(_x(64, channels)).shape == (2, side, side, backbones.feature_channels(backbone, 8))


@pytest.mark.parametrize("backbone", ALL)
def test_multiscale_shapes_and_strides(backbone):
    model = build_backbone(backbone, 2, width=32)
    maps = multiscale(model, backbone)(_x(64, 2))
    assert [(m.shape[1], m.shape[-1]) for m in maps] == MULTISCALE[backbone]
    assert [64 // m.shape[1] for m in maps] == [stride for _, stride in backbones.FEATURE_LAYERS[backbone]]
    assert backbones.FEATURE_LAYERS[backbone][-1][1] == backbones.output_stride(backbone)
    np.testing.assert_allclose(maps[-1], model(_x(64, 2)), atol=1e-5)  # last tap is the output


def test_resnet18_parameter_count_matches_torchvision():
    model = build_backbone("resnet18", 3)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 11_176_512  # torchvision resnet18 without fc: bias-free convs + BN scale/shift
    # Keras also counts the BN moving mean and variance: 2 x 4,800 BN channels.
    assert model.count_params() == 11_176_512 + 2 * 4_800


def test_resnet50_parameter_count_is_keras_no_top():
    assert build_backbone("resnet50", 3).count_params() == 23_587_712


@pytest.mark.parametrize("backbone", ALL)
def test_bn_momentum_and_names(backbone):
    model = build_backbone(backbone, 2, name="s1_encoder")
    assert model.name == "s1_encoder" and model.layers[0].name == "s1_encoder_input"
    assert _bn_layers(model) and all(layer.momentum == BN_MOMENTUM for layer in _bn_layers(model))
    if backbone != "small":  # the small network keeps Keras' default epsilon
        assert all(math.isclose(layer.epsilon, 1.001e-5) for layer in _bn_layers(model))


def test_invalid_arguments():
    with pytest.raises(ValueError, match="small, resnet18, resnet50"):
        build_backbone("vit", 2)
    with pytest.raises(ValueError, match="in_channels"):
        build_backbone("resnet18", 0)
    for fn in (backbones.feature_channels, backbones.output_stride):
        with pytest.raises(ValueError, match="resnet18"):
            fn("resnet34")


def _train_step(model, x):
    """One SGD step in training mode, so weights and BN moving statistics leave their defaults."""
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    target = np.zeros(model.compute_output_shape(x.shape), "float32")
    model.fit(x, target, epochs=1, batch_size=2, verbose=0)


@pytest.mark.parametrize("backbone, first_conv", [("small", "stem1_conv"), ("resnet18", "conv1_conv")])
def test_save_load_roundtrip_and_shared_weights(tmp_path, backbone, first_conv):
    model = build_backbone(backbone, 13, width=8, name="s2_encoder")
    x = _x(32, 13, seed=1)
    _train_step(model, x)
    path = str(tmp_path / "encoder.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    np.testing.assert_array_equal(loaded(x), model(x))
    assert loaded.layers[0].name == "s2_encoder_input"
    assert all(layer.momentum == BN_MOMENTUM for layer in _bn_layers(loaded))

    features = multiscale(loaded, backbone)
    before = [np.asarray(m) for m in features(x)]
    np.testing.assert_array_equal(before[-1], loaded(x))
    kernel = loaded.get_layer(first_conv).kernel
    kernel.assign(kernel * 2.0)  # shared, not copied: multiscale must see the change
    after = features(x)
    assert all(not np.allclose(b, a) for b, a in zip(before, after))


def test_resnet50_momentum_survives_save_load(tmp_path):
    path = str(tmp_path / "r50.keras")
    build_backbone("resnet50", 2).save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert all(layer.momentum == BN_MOMENTUM for layer in _bn_layers(loaded))
    assert [t.shape[-1] for t in multiscale(loaded, "resnet50").outputs] == [256, 512, 1024, 2048]


@pytest.mark.parametrize("size", [33, 16])
def test_resnet18_odd_and_small_inputs(size):
    model = build_backbone("resnet18", 2)
    maps = multiscale(model, "resnet18")(_x(size, 2))
    # Every downsampling rounds up, so each map is ceil(size / stride) wide.
    assert [m.shape[1] for m in maps] == [math.ceil(size / s) for _, s in backbones.FEATURE_LAYERS["resnet18"]]
