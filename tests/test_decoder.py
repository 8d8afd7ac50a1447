"""evaluate/decoder.py: the U-Net-style decoder over each backbone's feature pyramid."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from senclr.evaluate.decoder import build_segmenter  # noqa: E402
from senclr.models.backbones import build_backbone  # noqa: E402


@pytest.mark.parametrize("backbone, size", [("small", 15), ("small", 32), ("resnet18", 33), ("resnet18", 64)])
def test_logits_have_the_input_size_for_any_pyramid(backbone, size):
    seg = build_segmenter(build_backbone(backbone, 2, width=4), backbone, num_classes=3, width=4)
    assert seg(np.zeros((2, size, size, 2), np.float32)).shape == (2, size, size, 3)


def test_frozen_mode_trains_only_the_decoder_and_finetune_everything():
    encoder = build_backbone("small", 2, width=4)
    n_enc = len(encoder.trainable_weights)
    frozen = build_segmenter(encoder, "small", width=4)
    enc_ids = {id(v) for v in encoder.weights}
    assert frozen.trainable_weights and not any(id(v) in enc_ids for v in frozen.trainable_weights)
    encoder2 = build_backbone("small", 2, width=4)
    tuned = build_segmenter(encoder2, "small", width=4, mode="finetune")
    assert sum(id(v) in {id(w) for w in encoder2.weights} for v in tuned.trainable_weights) == n_enc
    with pytest.raises(ValueError, match="unknown mode"):
        build_segmenter(encoder, "small", mode="linear")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_a_few_steps_learn_a_mask_and_frozen_leaves_the_encoder_alone(mode):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 16, 16, 2)).astype("float32")
    y = (x[..., 0] > 0.5).astype("int32")  # water where VV is high: learnable from the input
    encoder = build_backbone("small", 2, width=4)
    before = [w.copy() for w in encoder.get_weights()]
    seg = build_segmenter(encoder, "small", width=4, mode=mode)
    seg.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = seg.fit(x, y, epochs=15, batch_size=8, verbose=0, shuffle=False).history["loss"]
    assert losses[-1] < 0.7 * losses[0]
    same = all(np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))
    assert same == (mode == "frozen")  # frozen: weights and BN statistics untouched


def test_two_encoders_fuse_late_and_the_decoder_runs_on_cached_maps():
    from senclr.evaluate.decoder import decoder_model, pyramid, segmenter

    s1, s2 = build_backbone("small", 2, width=4, name="s1"), build_backbone("small", 3, width=6, name="s2")
    fused = pyramid([s1, s2], "small")
    x = np.random.default_rng(0).normal(size=(1, 9, 9, 5)).astype("float32")
    maps = fused(x)
    assert [m.shape[-1] for m in maps] == [4 + 6, 8 + 12]
    # each encoder reads its own channels: the fused maps are the two encoders' maps side by side
    np.testing.assert_allclose(np.asarray(maps[1])[..., :8], np.asarray(tf.keras.Model(s1.input, s1.output)(x[..., :2])),
                               atol=1e-5)
    assert segmenter(fused, 2, "frozen", 4)(x).shape == (1, 9, 9, 2)
    dec = decoder_model([10, 20], (9, 9), num_classes=3, width=4)
    assert dec({"level0": maps[0], "level1": maps[1]}).shape == (1, 9, 9, 3)
