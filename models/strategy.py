"""``--strategy``: where training runs, chosen from the hardware as a user would.

``auto`` picks TPUStrategy when a TPU is attached (``--tpu`` given, ``TPU_NAME`` set, or a TPU
VM's ``/dev/accel*`` / ``/dev/vfio`` devices), MultiWorkerMirroredStrategy when ``TF_CONFIG``
names several workers, MirroredStrategy on more than one GPU, else TensorFlow's default
strategy. The TPU resolver is only asked when there is local evidence of a TPU: off Google Cloud
it would otherwise query the metadata server. ``check`` needs no TensorFlow, so the CLI refuses
an impossible choice before anything loads or is written.
"""

from __future__ import annotations

import glob
import json
import os

from senclr.errors import InputError

STRATEGIES = ("auto", "onedevice", "mirrored", "multiworker", "tpu")


def tf_config() -> dict:
    """The parsed ``TF_CONFIG`` ({} when unset); InputError when it is not JSON."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise InputError(f"TF_CONFIG is not valid JSON ({e}); see docs/train.md for its form") from None
    if not isinstance(cfg, dict):
        raise InputError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return cfg


def worker_count(cfg: dict | None = None) -> int:
    """Training hosts named in TF_CONFIG (chief + workers), 1 without a cluster."""
    cluster = (tf_config() if cfg is None else cfg).get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", [])) or 1


def is_chief(cfg: dict | None = None) -> bool:
    """True on the host that writes the model: the chief, or worker 0 when there is no chief."""
    cfg = tf_config() if cfg is None else cfg
    task = cfg.get("task", {})
    if worker_count(cfg) == 1 or not task:
        return True
    has_chief = bool(cfg.get("cluster", {}).get("chief"))
    return task.get("type") == "chief" or (not has_chief and task.get("type") == "worker" and task.get("index") == 0)


def task_id(cfg: dict | None = None) -> str:
    """A name for this host's private files (backups of non-chief workers)."""
    task = (tf_config() if cfg is None else cfg).get("task", {})
    return f"{task.get('type', 'worker')}-{task.get('index', 0)}"


def tpu_present(tpu: str | None) -> bool:
    return bool(tpu or os.environ.get("TPU_NAME") or glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def check(name: str, tpu: str | None = None) -> None:
    """InputError for a strategy that cannot run here (no TensorFlow needed)."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    if name == "tpu" and not tpu_present(tpu):
        raise InputError("--strategy tpu but no TPU is attached (no --tpu, TPU_NAME or /dev/accel*): "
                         "run on a TPU VM, pass --tpu NAME, or choose another --strategy")
    if name == "multiworker" and worker_count() < 2:
        raise InputError("--strategy multiworker needs TF_CONFIG naming at least two workers "
                         "(see docs/train.md); on one machine use mirrored or auto")


def resolve(name: str, tpu: str | None = None) -> str:
    """The concrete strategy ``auto`` stands for on this machine (others unchanged)."""
    check(name, tpu)
    if name != "auto":
        return name
    import tensorflow as tf

    if tpu_present(tpu):
        return "tpu"
    if worker_count() > 1:
        return "multiworker"
    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"


def make(name: str, tpu: str | None = None):
    """(the tf.distribute strategy, its concrete name). Create it before any other TF op:
    collective strategies must configure the runtime first."""
    import tensorflow as tf

    concrete = resolve(name, tpu)
    if concrete == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "local")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise InputError(f"no usable TPU ({type(e).__name__}: {e}); check --tpu or choose another --strategy") from None
        return tf.distribute.TPUStrategy(resolver), concrete
    if concrete == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy(), concrete
    if concrete == "mirrored":
        return tf.distribute.MirroredStrategy(), concrete
    if concrete == "onedevice":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0"), concrete
    return tf.distribute.get_strategy(), concrete
