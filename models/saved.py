"""A trained model folder: one ``<modality>_encoder.keras`` per encoder and ``config.json``.

``--method multimodal`` saves ``s1_encoder.keras`` and ``s2_encoder.keras``; ``--method simclr``
saves the one encoder of its modality (``s1``, ``s2`` or ``s1s2``). ``config.json`` (backbone,
method, modality, bands, the statistics the inputs were normalised with, hyper-parameters,
history) is written last and removed first when a folder is overwritten, so its presence marks a
finished model. Only the encoders are kept: the projection heads exist for the loss. Local
folders and gs:// prefixes both work (files go through ``senclr.storage``).
"""

from __future__ import annotations

import json
import os
import tempfile

import keras

from senclr import storage
from senclr.errors import InputError

CONFIG = "config.json"
ENCODER_KEYS = ("s1", "s2", "s1s2")
REQUIRED_KEYS = ("s1_bands", "s2_bands", "width", "feature_channels", "downsample", "proj_dim")


def encoder_file(key: str) -> str:
    return f"{key}_encoder.keras"


def encoder_bands(config: dict, key: str) -> list[str]:
    """Input bands of the ``key`` encoder, in channel order (S1 first when stacked)."""
    return {"s1": config["s1_bands"], "s2": config["s2_bands"],
            "s1s2": config["s1_bands"] + config["s2_bands"]}[key]


def save(model_dir: str, encoders: dict, config: dict) -> None:
    """Write each encoder of ``{key: model}``, then ``config`` as config.json; each file appears
    whole or not at all."""
    storage.refuse_file(model_dir, "--model-dir")
    storage.makedirs(model_dir)
    storage.remove(storage.join(model_dir, CONFIG))  # config.json marks a finished model
    with tempfile.TemporaryDirectory(prefix="senclr-save-") as tmp:
        for key, encoder in encoders.items():
            local = os.path.join(tmp, encoder_file(key))
            encoder.save(local)
            with open(local, "rb") as f:
                storage.write_bytes(storage.join(model_dir, encoder_file(key)), f.read())
    config = {"encoders": sorted(encoders), **config}
    storage.write_text(storage.join(model_dir, CONFIG), json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_config(model_dir: str) -> dict:
    """The model's config.json, or InputError saying why the folder is not a finished model."""
    uri = storage.join(model_dir, CONFIG)
    if not storage.exists(uri):
        what = "does not exist" if not storage.is_dir(model_dir) else f"has no {CONFIG}"
        raise InputError(
            f"model dir {model_dir} {what}: it is not a finished senclr model; "
            f"train one with `senclr train --data DATASET --model-dir {model_dir}`"
        )
    try:
        config = json.loads(storage.read_text(uri))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{uri} is not valid JSON ({e}); retrain the model") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(config, dict) or k not in config]
    if missing:
        raise InputError(f"{uri} lacks {missing}; it was not written by `senclr train`, retrain the model")
    config.setdefault("backbone", "small")
    config.setdefault("method", "multimodal")
    config.setdefault("encoders", ["s1", "s2"])
    return config


def _read_keras(uri: str) -> keras.Model:
    import senclr.models.lars  # noqa: F401  (registers LARS, should a file carry an optimizer)

    if not storage.is_gcs(uri):
        return keras.saving.load_model(uri, compile=False)
    with tempfile.TemporaryDirectory(prefix="senclr-load-") as tmp:
        local = os.path.join(tmp, os.path.basename(uri))
        with open(local, "wb") as f:
            f.write(storage.read_bytes(uri))
        return keras.saving.load_model(local, compile=False)


def load_encoder(model_dir: str, sensor: str) -> tuple[keras.Model, dict]:
    """(the trained encoder of ``sensor`` — "s1", "s2" or "s1s2" —, the model config).

    The encoder maps [B, H, W, len(encoder_bands(config, sensor))] to the feature map of
    ``config["backbone"]`` (``senclr.models.backbones.multiscale`` gives its feature pyramid).
    InputError when anything is off, e.g. a SimCLR model of another modality.
    """
    if sensor not in ENCODER_KEYS:
        raise InputError(f"unknown sensor {sensor!r}: use one of {ENCODER_KEYS}")
    config = load_config(model_dir)
    if sensor not in config["encoders"]:
        raise InputError(f"{model_dir} holds no {sensor} encoder (method {config['method']}, encoders "
                         f"{config['encoders']}); train one on {sensor} or evaluate another modality")
    uri = storage.join(model_dir, encoder_file(sensor))
    if not storage.exists(uri):
        raise InputError(f"{uri} not found: the model dir is incomplete; retrain the model")
    try:
        encoder = _read_keras(uri)
    except Exception as e:  # keras raises many types for a corrupt or foreign file
        raise InputError(f"{uri} could not be loaded ({type(e).__name__}: {e}); retrain the model") from None
    channels, bands = encoder.input_shape[-1], encoder_bands(config, sensor)
    if channels != len(bands):
        raise InputError(
            f"{uri} takes {channels} channels but config.json lists {len(bands)} bands for it; "
            f"the folder mixes two trainings, retrain the model"
        )
    return encoder, config
