"""models/: cross-modal NT-Xent, the dual encoder, training, saving and ``senclr train``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

from senclr.cli import cli  # noqa: E402
from senclr.errors import InputError  # noqa: E402
from senclr.models import objective, saved  # noqa: E402
from senclr.models.dual_encoder import DualEncoder  # noqa: E402
from senclr.models.encoders import build_encoder  # noqa: E402
from senclr.models.train import train  # noqa: E402

FAST = dict(epochs=1, batch_size=8, width=4, proj_dim=8, progress=False)
MODEL_FILES = ["config.json", "history.csv", "logs", "run.json", "s1_encoder.keras", "s2_encoder.keras"]


def numpy_nt_xent(z1, z2, temperature):
    """Reference written out by hand: softmax cross entropy with positives on the diagonal."""
    z1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    z2 = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
    sim = z1 @ z2.T / temperature
    losses = []
    for logits in (sim, sim.T):
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        losses.append(-np.mean(np.diag(log_softmax)))
    return 0.5 * sum(losses)


# ---- objective ---------------------------------------------------------------------------------


def test_nt_xent_matches_numpy_reference():
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    got = objective.nt_xent(tf.constant(z1, tf.float32), tf.constant(z2, tf.float32), 0.2)
    assert float(got) == pytest.approx(numpy_nt_xent(z1, z2, 0.2), rel=1e-5)


def test_nt_xent_is_symmetric_in_the_two_sensors():
    rng = np.random.default_rng(1)
    z1, z2 = (tf.constant(rng.normal(size=(7, 4)), tf.float32) for _ in range(2))
    assert float(objective.nt_xent(z1, z2)) == pytest.approx(float(objective.nt_xent(z2, z1)), rel=1e-6)


def test_aligned_pairs_cost_less_than_random_ones():
    rng = np.random.default_rng(2)
    z = tf.constant(rng.normal(size=(16, 8)), tf.float32)
    other = tf.constant(rng.normal(size=(16, 8)), tf.float32)
    assert float(objective.nt_xent(z, z)) < float(objective.nt_xent(z, other))


def test_logits_labels_and_retrieval():
    z = tf.eye(4)
    logits_12, logits_21, labels = objective.cross_modal_logits(z, 3.0 * z, temperature=0.5)
    assert logits_12.shape == logits_21.shape == (4, 4)
    np.testing.assert_array_equal(labels.numpy(), np.arange(4))
    np.testing.assert_allclose(np.diag(logits_12.numpy()), 2.0)  # cosine 1 / temperature 0.5
    np.testing.assert_array_equal(objective.top1_retrieval(logits_12, labels).numpy(), np.ones(4))
    shifted = tf.roll(tf.eye(4), 1, axis=0)
    assert objective.top1_retrieval(objective.cross_modal_logits(z, shifted, 0.5)[0], labels).numpy().sum() == 0


# ---- encoder and model -------------------------------------------------------------------------


@pytest.mark.parametrize("size, out", [(32, 16), (15, 8)])
def test_encoder_keeps_a_spatial_feature_map(size, out):
    encoder = build_encoder(13, width=4)
    assert encoder(tf.zeros([2, size, size, 13])).shape == (2, out, out, 8)


def test_batch_norm_statistics_settle_within_a_short_run():
    """With Keras' default momentum 0.99 a frozen encoder was at chance after a CPU-sized run."""
    norms = [layer for layer in build_encoder(2, 4).layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum <= 0.9 for layer in norms)


def test_dual_encoder_rejects_tuple_batches():
    model = DualEncoder(build_encoder(2, 4), build_encoder(3, 4), proj_dim=8)
    model.compile(optimizer="adam")
    with pytest.raises(TypeError, match="dicts"):
        model.train_step((tf.zeros([2, 8, 8, 2]), tf.zeros([2, 8, 8, 3])))


@pytest.mark.slow
def test_training_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    batch = {"s1": rng.normal(size=(8, 8, 8, 2)).astype("float32"),
             "s2": rng.normal(size=(8, 8, 8, 3)).astype("float32")}
    model = DualEncoder(build_encoder(2, 4), build_encoder(3, 4), proj_dim=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(tf.data.Dataset.from_tensors(batch), epochs=8, shuffle=False, verbose=0).history["loss"]
    assert losses[-1] < losses[0] - 0.1


# ---- saving and loading ------------------------------------------------------------------------


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    keras.utils.set_random_seed(0)
    s1, s2 = build_encoder(2, 4, name="s1_encoder"), build_encoder(13, 4, name="s2_encoder")
    config = {"s1_bands": ["VV", "VH"], "s2_bands": [f"B{i}" for i in range(13)], "width": 4,
              "feature_channels": 8, "downsample": 2, "proj_dim": 8}
    saved.save(str(tmp_path / "m"), {"s1": s1, "s2": s2}, config)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 2)).astype("float32")
    loaded, cfg = saved.load_encoder(str(tmp_path / "m"), "s1")
    assert {k: cfg[k] for k in config} == config and cfg["encoders"] == ["s1", "s2"]
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), s1(x, training=False).numpy())
    assert saved.load_encoder(str(tmp_path / "m"), "s2")[0].input_shape[-1] == 13


def test_load_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        saved.load_encoder(str(tmp_path / "nowhere"), "s1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no config.json"):
        saved.load_config(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        saved.load_config(str(bad))
    (bad / "config.json").write_text(json.dumps({"s1_bands": ["VV"]}))
    with pytest.raises(InputError, match="lacks"):
        saved.load_config(str(bad))
    (bad / "config.json").write_text(json.dumps(dict.fromkeys(saved.REQUIRED_KEYS, 1)))
    with pytest.raises(InputError, match="not found"):
        saved.load_encoder(str(bad), "s1")
    (bad / "s1_encoder.keras").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="could not be loaded"):
        saved.load_encoder(str(bad), "s1")
    with pytest.raises(InputError, match="unknown sensor"):
        saved.load_encoder(str(bad), "s3")


# ---- train() -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(epochs=0), "epochs"),
        (dict(batch_size=1), "batch size"),
        (dict(temperature=0.0), "temperature"),
        (dict(batch_size=25), "fewer than one batch"),
        (dict(s2_bands=["B2", "B99"]), "no S2 bands"),
        (dict(s1_bands=[]), "no S1 bands"),
    ],
)
def test_bad_input_raises_before_writing(tiny, tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        train(tiny, str(tmp_path / "model"), **{**FAST, **change})
    assert not (tmp_path / "model").exists()


def test_model_dir_that_is_a_file_is_refused(tiny, tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(InputError, match="existing file"):
        train(tiny, str(tmp_path / "file"), **FAST)
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.slow
def test_train_writes_a_loadable_model(tiny, tmp_path):
    model_dir = str(tmp_path / "model")
    result = train(tiny, model_dir, s2_bands=["B2", "B3", "B4", "B8"], **{**FAST, "epochs": 2})
    assert sorted(os.listdir(model_dir)) == MODEL_FILES
    assert len(result["history"]["loss"]) == 2 and "val_retrieval_acc" in result["history"]
    encoder, config = saved.load_encoder(model_dir, "s2")
    assert config["s2_bands"] == ["B2", "B3", "B4", "B8"] and config["s1_bands"] == ["VV", "VH"]
    assert config["feature_channels"] == 8 and config["downsample"] == 2
    assert encoder(tf.zeros([1, 16, 16, 4])).shape == (1, 8, 8, 8)


# ---- senclr train ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_trains_and_reports(tiny, tmp_path):
    model_dir = str(tmp_path / "model")
    args = ["train", "--data", tiny, "--model-dir", model_dir, "--epochs", "1", "--batch-size", "8",
            "--width", "4", "--proj-dim", "8", "--s1-bands", "VV"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "final loss" in result.output and model_dir in result.output
    assert saved.load_config(model_dir)["s1_bands"] == ["VV"]


@pytest.mark.parametrize("extra", [["--s1-bands", "VV,HH"], ["--epochs", "0"], ["--s2-bands", " , "]])
def test_cli_bad_input_exits_2_and_writes_nothing(tiny, tmp_path, extra):
    model_dir = tmp_path / "model"
    result = CliRunner().invoke(cli, ["train", "--data", tiny, "--model-dir", str(model_dir), *extra])
    assert result.exit_code == 2, result.output
    assert "senclr: error:" in result.output
    assert not model_dir.exists()


def test_cli_help_documents_every_flag():
    out = CliRunner().invoke(cli, ["train", "--help"]).output
    for flag in ("--data", "--model-dir", "--epochs", "--batch-size", "--learning-rate", "--temperature",
                 "--width", "--proj-dim", "--s1-bands", "--s2-bands", "--seed", "--method", "--backbone",
                 "--modality", "--strategy", "--tpu", "--precision", "--optimizer", "--lr-scaling",
                 "--warmup-epochs", "--weight-decay", "--intra-modal-negatives", "--deterministic",
                 "--checkpoint-steps", "--crop-scale", "--speckle-looks", "--blur-prob", "--overwrite"):
        assert flag in out


def test_nonempty_model_dir_needs_overwrite(tiny, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    r = CliRunner().invoke(cli, ["train", "--data", tiny, "--model-dir", str(mine), "--epochs", "1",
                                 "--batch-size", "8"])
    assert r.exit_code == 2 and "--overwrite" in r.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_overwrite_replaces_the_whole_model_dir(tiny, tmp_path):
    out = tmp_path / "model"
    train(tiny, str(out), epochs=1, batch_size=4, width=4, proj_dim=4, progress=False)
    (out / "evaluation").mkdir()
    (out / "evaluation" / "report.md").write_text("about the old model")
    train(tiny, str(out), epochs=1, batch_size=4, width=4, proj_dim=4, progress=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == MODEL_FILES


def test_bad_input_fails_before_tensorflow_loads(tiny, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from senclr.cli import cli
        r = CliRunner().invoke(cli, ["train", "--data", {tiny!r}, "--model-dir", {str(tmp_path / "m")!r}, "--s2-bands", "B13"])
        assert r.exit_code == 2, r.output
        print("tensorflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
