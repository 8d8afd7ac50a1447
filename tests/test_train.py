"""senclr train at scale: both methods, backbones, precision, resume, input pipeline, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from unittest import mock

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from click.testing import CliRunner  # noqa: E402

from senclr import manifest as manifest_lib  # noqa: E402
from senclr.cli import cli  # noqa: E402
from senclr.dataset import iter_records  # noqa: E402
from senclr.dataset_tf import make_dataset, record_parser  # noqa: E402
from senclr.errors import InputError  # noqa: E402
from senclr.models import objective, saved  # noqa: E402
from senclr.models.backbones import multiscale  # noqa: E402
from senclr.models.data import pretraining_dataset  # noqa: E402
from senclr.models.train import train  # noqa: E402
from tests.helpers import write_tiny_dataset  # noqa: E402

FAST = dict(epochs=1, batch_size=8, width=4, proj_dim=8, progress=False)


def numpy_simclr_loss(za, zb, temperature):
    """NT-Xent over 2N views written out by hand: each of the 2N anchors against the other 2N-1."""
    z = np.concatenate([za, zb])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(za)
    sim = z @ z.T / temperature
    losses = []
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        losses.append(-(sim[i, pos] - np.log(np.exp(sim[i, others]).sum())))
    return float(np.mean(losses))


# ---- objective --------------------------------------------------------------------------------


def test_intra_negative_loss_matches_numpy_reference_over_2n_views():
    rng = np.random.default_rng(3)
    za, zb = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    got = objective.nt_xent(tf.constant(za, tf.float32), tf.constant(zb, tf.float32), 0.3, intra_negatives=True)
    assert float(got) == pytest.approx(numpy_simclr_loss(za, zb, 0.3), rel=1e-5)


def test_intra_negatives_make_the_task_harder_and_logits_wider():
    rng = np.random.default_rng(4)
    za, zb = (tf.constant(rng.normal(size=(6, 8)), tf.float32) for _ in range(2))
    l12, l21, labels = objective.cross_modal_logits(za, zb, 0.1, intra_negatives=True)
    assert l12.shape == l21.shape == (6, 12)
    assert float(tf.reduce_max(tf.linalg.diag_part(l12[:, 6:]))) < -1e8  # an anchor is never its own candidate
    assert float(objective.nt_xent(za, zb, 0.1, True)) > float(objective.nt_xent(za, zb, 0.1, False))


def test_loss_is_float32_for_bfloat16_embeddings():
    z = tf.cast(tf.random.stateless_normal([4, 8], [1, 2]), tf.bfloat16)
    assert objective.nt_xent(z, z).dtype == tf.float32


# ---- input pipeline ---------------------------------------------------------------------------


def test_batched_parser_equals_the_per_record_reader(tiny):
    m = manifest_lib.read(tiny, kind="dataset")
    bands = dict(s1_bands=["VH", "VV"], s2_bands=["B8", "B4", "B2"])  # not the dataset's order
    one = list(make_dataset(tiny, "train", **bands).as_numpy_iterator())
    raw = tf.data.TFRecordDataset([os.path.join(tiny, s["path"]) for s in m["shards"] if s["split"] == "train"])
    batch = record_parser(m, **bands, batched=True)(next(iter(raw.batch(64))))
    for i, rec in enumerate(one):
        np.testing.assert_array_equal(batch["s1"][i].numpy(), rec["s1"])
        np.testing.assert_array_equal(batch["s2"][i].numpy(), rec["s2"])


def test_training_input_keeps_band_order_and_the_model_normalises_it(tiny):
    """Multimodal batches come in physical units, in the order asked for; the model's step
    normalises them exactly as the numpy reader does."""
    from senclr.models.data import norm_params
    from senclr.models.spec import TrainSpec
    from senclr.models.train import build_model

    m = manifest_lib.read(tiny, kind="dataset")
    bands = {"s1": ["VH"], "s2": ["B8", "B4"]}
    got = next(iter(pretraining_dataset(tiny, m, "train", "multimodal", bands, global_batch=24, shuffle=False)))
    assert got["s1"].shape == (24, 16, 16, 1) and got["s2"].shape == (24, 16, 16, 2)
    raw = {r["pair_id"]: r for r in iter_records(tiny, "train", s1_bands=["VH"], s2_bands=["B8", "B4"])}
    norm = {r["pair_id"]: r for r in iter_records(tiny, "train", normalized=True, s1_bands=["VH"],
                                                  s2_bands=["B8", "B4"])}
    model = build_model(TrainSpec(width=4, proj_dim=8), bands, norm_params(m, bands))
    normalised = model.normalized(got)
    order = {float(r["s2"].astype(np.float64).sum()): pid for pid, r in raw.items()}
    for i in range(24):
        pid = order[float(got["s2"][i].numpy().astype(np.float64).sum())]
        np.testing.assert_array_equal(got["s2"][i].numpy(), raw[pid]["s2"].astype(np.float32))
        np.testing.assert_array_equal(got["s1"][i].numpy(), raw[pid]["s1"].astype(np.float32))
        np.testing.assert_allclose(normalised["s2"][i].numpy(), norm[pid]["s2"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(normalised["s1"][i].numpy(), norm[pid]["s1"], rtol=1e-6, atol=1e-6)


def test_each_pass_of_the_shuffled_input_holds_every_record_once_in_a_new_order(tiny):
    """Records are shuffled one by one before the stream repeats: a pass is a permutation of the
    split (nothing dropped or doubled), and the next pass is another one. In order
    (``deterministic``): by default parallel batches may leave a few places early or late, so a
    batch of one pass can cross the pass boundary."""
    m = manifest_lib.read(tiny, kind="dataset")
    bands = {"s1": ["VV", "VH"], "s2": m["bands"]["s2"]}
    n = m["splits"]["train"]
    batch = next(b for b in (8, 6, 4, 3, 2, 1) if n % b == 0)  # passes end on batch boundaries
    ds = pretraining_dataset(tiny, m, "train", "multimodal", bands, global_batch=batch, seed=3, buffer=n,
                            deterministic=True)
    key = {r["s2"].tobytes(): r["pair_id"] for r in iter_records(tiny, "train")}
    ids = [key[x.tobytes()] for b in ds.take(2 * n // batch) for x in b["s2"].numpy()]
    first, second = ids[:n], ids[n:]
    assert sorted(first) == sorted(key.values()) == sorted(second)
    assert first != second and first != sorted(first)


@pytest.mark.parametrize("workers", [2, 3])
def test_multi_worker_input_is_sharded_by_file(tmp_path, workers):
    """What MultiWorkerMirroredStrategy does to the input (auto-shard, FILE policy when there are
    at least as many shards as workers): each worker reads whole shards of its own, together all
    of them. TensorFlow falls back to sharding by record, or fails, when it cannot find the reader."""
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    from benchmarks.train_step import write_dataset
    from senclr.dataset import shard_uris

    m = write_dataset(str(tmp_path), n=48, size=8, shards=4)
    bands = {"s1": m["bands"]["s1"], "s2": m["bands"]["s2"]}
    parse = record_parser(m, normalized=False, ids=False)
    home = {ex["s2"].numpy().tobytes(): f for f in shard_uris(str(tmp_path), m, "train")
            for ex in tf.data.TFRecordDataset(f).map(parse)}
    seen = []
    for index in range(workers):
        ds = pretraining_dataset(str(tmp_path), m, "train", "multimodal", bands, global_batch=4, seed=1,
                                 workers=workers)
        batches = _AutoShardDataset(ds, workers, index).take(48 // 4)  # a whole pass of the split
        seen.append({home[x.tobytes()] for b in batches for x in b["s2"].numpy()})
    assert all(seen) and sum(len(files) for files in seen) == 4
    assert set().union(*seen) == set(home.values())


def test_shuffle_buffer_is_bounded_in_bytes_not_only_records():
    from senclr.models.data import SHUFFLE_BUFFER, shuffle_buffer

    m = {"bands": {"s1": ["VV", "VH"], "s2": [f"B{i}" for i in range(13)]}, "labels": ["water"]}
    assert shuffle_buffer(m, 16, 16) == SHUFFLE_BUFFER
    assert 400 < shuffle_buffer(m, 128, 128) < 600  # 256 MB of 0.5 MB records
    assert shuffle_buffer(m, 2048, 2048) == 64


@pytest.mark.parametrize("chunk", [128, 2])  # one call per batch; batches built of 4 chunks
def test_simclr_input_gives_two_views_of_the_stacked_modality(tiny, chunk, monkeypatch):
    from senclr.models import data

    monkeypatch.setattr(data, "AUGMENT_CHUNK", chunk)
    m = manifest_lib.read(tiny, kind="dataset")
    bands = {"s1": ["VV", "VH"], "s2": ["B2", "B3", "B4"]}
    ds = pretraining_dataset(tiny, m, "train", "simclr", bands, global_batch=8, modality="s1s2")
    assert ds.element_spec["view1"].shape == (8, 16, 16, 5)  # static, as XLA and TPUs need
    batch = next(iter(ds))
    assert sorted(batch) == ["view1", "view2"] and batch["view1"].shape == (8, 16, 16, 5)
    assert batch["view1"].dtype == tf.float32
    assert not np.array_equal(batch["view1"].numpy(), batch["view2"].numpy())


def test_deterministic_input_reruns_exactly(tiny):
    m = manifest_lib.read(tiny, kind="dataset")
    bands = {"s1": ["VV"], "s2": ["B2"]}

    def first_batches():
        ds = pretraining_dataset(tiny, m, "train", "simclr", bands, global_batch=8, seed=5, deterministic=True)
        return [b["view1"].numpy() for b in ds.take(3)]

    keras.utils.set_random_seed(5)
    a = first_batches()
    keras.utils.set_random_seed(5)
    b = first_batches()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ---- training ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method, extra, files", [
    ("multimodal", dict(intra_modal_negatives=True), ["s1_encoder.keras", "s2_encoder.keras"]),
    ("simclr", dict(modality="s1"), ["s1_encoder.keras"]),
    ("simclr", dict(modality="s1s2"), ["s1s2_encoder.keras"]),
])
def test_both_methods_train_and_save_loadable_encoders(tiny, tmp_path, method, extra, files):
    model_dir = str(tmp_path / "m")
    result = train(tiny, model_dir, method=method, **{**FAST, "epochs": 2, **extra})
    assert [f for f in sorted(os.listdir(model_dir)) if f.endswith(".keras")] == files
    assert len(result["history"]["loss"]) == 2 and np.isfinite(result["history"]["loss"]).all()
    assert not os.path.exists(os.path.join(model_dir, "backup"))  # removed once the model is saved
    assert os.listdir(os.path.join(model_dir, "logs"))  # TensorBoard
    key = files[0].split("_")[0]
    encoder, cfg = saved.load_encoder(model_dir, key)
    assert cfg["method"] == method and encoder.input_shape[-1] == len(saved.encoder_bands(cfg, key))
    assert cfg["statistics"].keys() == set(cfg["s1_bands"] + cfg["s2_bands"])
    if method == "simclr" and key == "s1":
        with pytest.raises(InputError, match="holds no s2 encoder"):
            saved.load_encoder(model_dir, "s2")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["multimodal", "simclr"])
def test_a_few_steps_lower_the_loss(method):
    from senclr.models.spec import TrainSpec
    from senclr.models.train import build_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    spec = TrainSpec(method=method, modality="s1s2", width=4, proj_dim=8)
    bands = {"s1": ["VV", "VH"], "s2": ["B2", "B3", "B4"]}
    model = build_model(spec, bands)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x1, x2 = rng.normal(size=(8, 8, 8, 2)).astype("float32"), rng.normal(size=(8, 8, 8, 3)).astype("float32")
    if method == "multimodal":
        batch = {"s1": x1, "s2": x2}
    else:
        x = np.concatenate([x1, x2], -1)
        batch = {"view1": x, "view2": x + 0.1 * rng.normal(size=x.shape).astype("float32")}
    losses = model.fit(tf.data.Dataset.from_tensors(batch), epochs=8, shuffle=False, verbose=0).history["loss"]
    assert losses[-1] < losses[0] - 0.1


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_stay_finite_and_save_float32(tiny, tmp_path, precision):
    result = train(tiny, str(tmp_path / "m"), precision=precision, **FAST)
    assert np.isfinite(result["history"]["loss"]).all()
    encoder, _ = saved.load_encoder(str(tmp_path / "m"), "s1")
    assert encoder.dtype_policy.name == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.mark.slow
def test_resnet18_with_lars_warmup_and_multiscale_features(tiny, tmp_path):
    result = train(tiny, str(tmp_path / "m"), backbone="resnet18", optimizer="lars", learning_rate=0.3,
                   lr_scaling="linear", warmup_epochs=1, weight_decay=1e-6, epochs=2, batch_size=8, proj_dim=8,
                   progress=False)
    assert result["peak_learning_rate"] == pytest.approx(0.3 * 8 / 256)
    assert result["history"]["learning_rate"][0] == pytest.approx(result["peak_learning_rate"], rel=1e-4)
    encoder, cfg = saved.load_encoder(str(tmp_path / "m"), "s2")
    maps = multiscale(encoder, cfg["backbone"])(tf.zeros([1, 32, 32, 13]))
    assert [tuple(f.shape[1:3]) for f in maps] == [(8, 8), (4, 4), (2, 2), (1, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["multimodal", "simclr"])
def test_deterministic_reruns_give_identical_encoders(tiny, tmp_path, method):
    encoders = []
    for run in ("a", "b"):
        train(tiny, str(tmp_path / run), method=method, deterministic=True, seed=3, **{**FAST, "epochs": 2})
        encoders.append(saved.load_encoder(str(tmp_path / run), "s1")[0].get_weights())
    assert len(encoders[0]) > 0
    for x, y in zip(*encoders):
        np.testing.assert_array_equal(x, y)


def test_a_deterministic_run_leaves_op_determinism_as_it_found_it(tiny, tmp_path):
    """Op determinism is process-wide: on for a --deterministic run, off again after it (a later
    run in the same notebook gets XLA back), on still if it was on before."""
    from tensorflow.python.framework import config  # the private query and switch back

    was = config.is_op_determinism_enabled()
    try:
        config.disable_op_determinism()
        seen, enable = [], tf.config.experimental.enable_op_determinism

        def enable_and_note():
            enable()
            seen.append(config.is_op_determinism_enabled())

        with mock.patch.object(tf.config.experimental, "enable_op_determinism", enable_and_note):
            train(tiny, str(tmp_path / "a"), deterministic=True, **FAST)
        assert seen == [True] and not config.is_op_determinism_enabled()
        config.enable_op_determinism()
        train(tiny, str(tmp_path / "b"), deterministic=True, **FAST)
        assert config.is_op_determinism_enabled()
    finally:
        (config.enable_op_determinism if was else config.disable_op_determinism)()


# ---- resume -----------------------------------------------------------------------------------


def _train_cmd(data, model_dir, *extra):
    return [sys.executable, "-m", "senclr", "train", "--data", data, "--model-dir", model_dir, "--epochs", "6",
            "--batch-size", "4", "--width", "4", "--proj-dim", "8", "--checkpoint-steps", "3", *extra]


def _backed_up_epoch(meta: str) -> int | None:
    """The epoch in a backup's metadata; None before the first backup or while one is written."""
    try:
        with open(meta) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_resumes_and_finishes(tmp_path):
    data, model_dir = str(tmp_path / "data"), str(tmp_path / "m")
    write_tiny_dataset(data, n=96, size=16, seed=2)  # 48 train pairs: 12 steps an epoch, 72 in all
    meta = os.path.join(model_dir, "backup", "worker-0", "training_metadata.json")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(_train_cmd(data, model_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (_backed_up_epoch(meta) or 0) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    assert not os.path.exists(os.path.join(model_dir, "config.json"))
    rerun = subprocess.run(_train_cmd(data, model_dir), capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # The kill may land inside a backup (the next test covers each instant): the weights' own
    # epoch counter decides, so the resume point is at least the epoch seen before the kill.
    resumed = re.search(r"resuming from the backup .* after epoch (\d+) of 24", rerun.stderr)
    assert resumed and int(resumed.group(1)) >= 3, rerun.stderr[-3000:]
    cfg = saved.load_config(model_dir)
    assert cfg["steps"] == 72 and len(cfg["history"]["loss"]) == 24  # the same steps as an unbroken run
    assert not os.path.exists(os.path.join(model_dir, "backup"))


# A process killed at each instant of a backup: (1) after both files, (2) between the weights and
# the metadata (weights one epoch ahead), (3) with the metadata torn. Exit code 9 stands for SIGKILL.
_KILL_AT = {
    "after_backup": "orig(self); os._exit(9)",
    "between_files": "self.model.save_weights(self._weights_path, overwrite=True); os._exit(9)",
    "torn_metadata": "orig(self); open(self._training_metadata_path, 'w').write('{\"epo'); os._exit(9)",
}
_KILLER = """
import os, sys, keras
from keras.src.callbacks.backup_and_restore import BackupAndRestore
orig = BackupAndRestore._save_model
def save(self):
    if self._current_epoch == 3:
        {kill}
    orig(self)
BackupAndRestore._save_model = save
from senclr.cli import main
sys.argv = ["senclr"] + sys.argv[1:]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("instant", sorted(_KILL_AT))
def test_killed_at_any_instant_of_a_backup_the_rerun_trains_exactly_the_planned_steps(tmp_path, instant):
    data, model_dir = str(tmp_path / "data"), str(tmp_path / "m")
    write_tiny_dataset(data, n=96, size=16, seed=2)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [*_train_cmd(data, model_dir)[3:], "--epochs", "2"]  # after "python -m senclr"; 8 backups of 3 steps
    killed = subprocess.run([sys.executable, "-c", _KILLER.replace("{kill}", _KILL_AT[instant]), *cmd],
                            capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == 9, killed.stderr[-3000:]
    rerun = subprocess.run([sys.executable, "-m", "senclr", *cmd], capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "after epoch 3 of 8" in rerun.stderr
    assert ("its metadata said 2" in rerun.stderr) == (instant == "between_files")
    cfg = saved.load_config(model_dir)
    assert cfg["optimizer_steps"] == cfg["steps"] == 24  # not one epoch more, not one less
    assert len(cfg["history"]["loss"]) == 8


@pytest.mark.slow
def test_a_different_runs_backup_is_refused(tiny, tmp_path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    fingerprint = {"data": os.path.abspath(tiny), "epochs": 99}
    (model_dir / "run.json").write_text(json.dumps(fingerprint))
    r = CliRunner().invoke(cli, ["train", "--data", tiny, "--model-dir", str(model_dir), "--batch-size", "8"])
    assert r.exit_code == 2 and "backup of a different run" in r.output and "epochs 99 -> 10" in r.output
    assert sorted(p.name for p in model_dir.iterdir()) == ["run.json"]


@pytest.mark.slow
def test_a_diverging_run_stops_with_exit_1_and_says_what_to_do(tiny, tmp_path):
    r = CliRunner().invoke(cli, ["train", "--data", tiny, "--model-dir", str(tmp_path / "m"), "--batch-size", "8",
                                 "--width", "4", "--proj-dim", "8", "--epochs", "3", "--learning-rate", "1e30"])
    assert r.exit_code == 1, r.output
    assert "NaN or infinite" in r.output and "--overwrite" in r.output
    assert not (tmp_path / "m" / "config.json").exists()  # no finished model is claimed


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--backbone", "vgg16"], "Invalid value for '--backbone'"),
    (["--method", "byol"], "Invalid value for '--method'"),
    (["--strategy", "horovod"], "Invalid value for '--strategy'"),
    (["--precision", "fp8"], "Invalid value for '--precision'"),
    (["--strategy", "tpu"], "no TPU is attached"),
    (["--optimizer", "adam", "--weight-decay", "0.1"], "adam has no weight decay"),
    (["--warmup-epochs", "10"], "--warmup-epochs"),
    (["--crop-scale", "0.5"], "--crop-scale takes two numbers"),
    (["--contrast", "1.5"], "bad augmentation setting"),
])
def test_bad_flags_exit_2_and_write_nothing(tiny, tmp_path, monkeypatch, extra, message):
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.setattr("senclr.models.strategy.glob.glob", lambda pattern: [])
    model_dir = tmp_path / "m"
    r = CliRunner().invoke(cli, ["train", "--data", tiny, "--model-dir", str(model_dir), "--batch-size", "8", *extra])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not model_dir.exists()


def test_a_modality_the_dataset_lacks_is_refused(tiny, tmp_path):
    """Every dataset holds both sensors (the manifest refuses an empty band list), so what a
    dataset can lack is the bands a modality is asked to use."""
    for extra, message in ((["--method", "simclr", "--modality", "s2", "--s2-bands", "B99"], "no S2 bands ['B99']"),
                           (["--method", "simclr", "--modality", "s1s2", "--s1-bands", "HH"], "no S1 bands ['HH']")):
        r = CliRunner().invoke(cli, ["train", "--data", tiny, "--model-dir", str(tmp_path / "m"), "--batch-size", "4",
                                     *extra])
        assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "m").exists()


def test_a_global_batch_that_does_not_split_over_the_workers_is_refused(tiny, tmp_path, monkeypatch):
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    with pytest.raises(InputError, match="does not split evenly over 2 replicas"):
        train(tiny, str(tmp_path / "m"), **{**FAST, "batch_size": 7})
    assert not (tmp_path / "m").exists()
