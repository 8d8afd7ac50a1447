"""Checks of ``senclr train``'s input that need no TensorFlow, so bad input fails at once.

The CLI runs ``preflight`` before TensorFlow is imported; ``train`` runs it again for callers
that use the Python API directly.
"""

from __future__ import annotations

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.dataset import band_indices, count
from senclr.errors import InputError


def check_hyperparameters(epochs, batch_size, learning_rate, temperature, width, proj_dim) -> None:
    """InputError naming the first out-of-range value and what would be valid."""
    rules = [
        (epochs >= 1, f"epochs must be >= 1, got {epochs}"),
        (batch_size >= 2, f"batch size must be >= 2 (a pair needs another pair as negative), got {batch_size}"),
        (learning_rate > 0, f"learning rate must be > 0, got {learning_rate}"),
        (temperature > 0, f"temperature must be > 0 (0.1 is usual), got {temperature}"),
        (width >= 1, f"width must be >= 1, got {width}"),
        (proj_dim >= 1, f"projection dim must be >= 1, got {proj_dim}"),
    ]
    for ok, message in rules:
        if not ok:
            raise InputError(message)


def resolve_bands(manifest: dict, sensor: str, wanted) -> list[str]:
    """Band names to train on: all of the dataset's when ``wanted`` is None; InputError if absent."""
    if wanted is not None and not list(wanted):
        raise InputError(f"no {sensor.upper()} bands given; name at least one, or leave the option out for all")
    idx = band_indices(manifest, sensor, None if wanted is None else list(wanted))
    return [manifest["bands"][sensor][i] for i in idx]


def check_split_size(manifest: dict, data: str, batch_size: int, replicas: int = 1) -> int:
    """Records in the train split, which must fill at least one batch evenly split over replicas."""
    n = count(manifest, "train")
    if n < batch_size:
        raise InputError(
            f"{data} has {n} training pairs, fewer than one batch of {batch_size}; "
            f"lower --batch-size or build a larger dataset"
        )
    if batch_size % replicas:
        raise InputError(f"batch size {batch_size} does not split evenly over {replicas} replicas")
    return n


def check_model_dir(model_dir: str, overwrite: bool) -> None:
    """A model goes into a new or empty folder, or replaces a model only when asked to."""
    storage.refuse_file(model_dir, "--model-dir")
    if storage.is_dir(model_dir) and any(True for _ in storage.list_files(model_dir, limit=1)):
        if not overwrite:
            raise InputError(f"model dir {model_dir} is not empty: choose a new folder or pass --overwrite")


def preflight(data: str, model_dir: str, overwrite: bool, batch_size: int, s1_bands, s2_bands, **hyper) -> tuple:
    """(manifest, S1 bands, S2 bands) once every argument is known to be usable."""
    check_hyperparameters(batch_size=batch_size, **hyper)
    check_model_dir(model_dir, overwrite)
    m = manifest_lib.read(data, kind="dataset")
    b1, b2 = resolve_bands(m, "s1", s1_bands), resolve_bands(m, "s2", s2_bands)
    check_split_size(m, data, batch_size)
    return m, b1, b2
