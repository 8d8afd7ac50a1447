"""A trained model folder: ``s1_encoder.keras``, ``s2_encoder.keras`` and ``config.json``.

``config.json`` is written last and removed first when a folder is overwritten, so its presence
marks a finished model. Only the encoders are kept: the projection heads exist for the loss.
Local folders and gs:// prefixes both work (files go through ``senclr.storage``).
"""

from __future__ import annotations

import json
import os
import tempfile

import keras

from senclr import storage
from senclr.errors import InputError

CONFIG = "config.json"
SENSORS = ("s1", "s2")
REQUIRED_KEYS = ("s1_bands", "s2_bands", "width", "feature_channels", "downsample", "proj_dim")


def encoder_file(sensor: str) -> str:
    return f"{sensor}_encoder.keras"


def save(model_dir: str, s1_encoder: keras.Model, s2_encoder: keras.Model, config: dict) -> None:
    """Write both encoders, then ``config`` as config.json; each file appears whole or not at all."""
    storage.refuse_file(model_dir, "--model-dir")
    storage.makedirs(model_dir)
    storage.remove(storage.join(model_dir, CONFIG))  # config.json marks a finished model
    with tempfile.TemporaryDirectory(prefix="senclr-save-") as tmp:
        for sensor, encoder in zip(SENSORS, (s1_encoder, s2_encoder)):
            local = os.path.join(tmp, encoder_file(sensor))
            encoder.save(local)
            with open(local, "rb") as f:
                storage.write_bytes(storage.join(model_dir, encoder_file(sensor)), f.read())
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
    return config


def _read_keras(uri: str) -> keras.Model:
    if not storage.is_gcs(uri):
        return keras.saving.load_model(uri, compile=False)
    with tempfile.TemporaryDirectory(prefix="senclr-load-") as tmp:
        local = os.path.join(tmp, os.path.basename(uri))
        with open(local, "wb") as f:
            f.write(storage.read_bytes(uri))
        return keras.saving.load_model(local, compile=False)


def load_encoder(model_dir: str, sensor: str) -> tuple[keras.Model, dict]:
    """(the trained ``sensor`` encoder, the model config); InputError when anything is off.

    The encoder maps [B, H, W, len(config[f"{sensor}_bands"])] to
    [B, ceil(H/2), ceil(W/2), config["feature_channels"]].
    """
    if sensor not in SENSORS:
        raise InputError(f"unknown sensor {sensor!r}: use one of {SENSORS}")
    config = load_config(model_dir)
    uri = storage.join(model_dir, encoder_file(sensor))
    if not storage.exists(uri):
        raise InputError(f"{uri} not found: the model dir is incomplete; retrain the model")
    try:
        encoder = _read_keras(uri)
    except Exception as e:  # keras raises many types for a corrupt or foreign file
        raise InputError(f"{uri} could not be loaded ({type(e).__name__}: {e}); retrain the model") from None
    channels = encoder.input_shape[-1]
    if channels != len(config[f"{sensor}_bands"]):
        raise InputError(
            f"{uri} takes {channels} channels but config.json lists {len(config[f'{sensor}_bands'])} "
            f"{sensor.upper()} bands; the folder mixes two trainings, retrain the model"
        )
    return encoder, config
