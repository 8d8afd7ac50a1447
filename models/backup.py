"""Backups a run killed at any instant resumes from exactly.

``keras.callbacks.BackupAndRestore`` writes two files per backup: the weights (model and optimizer
variables), then ``training_metadata.json`` with the epoch to resume at. A SIGKILL between the
two leaves weights one epoch ahead of the metadata (the resumed run would train one epoch too
many), or a truncated metadata file (the rerun could not start at all). So the model carries its
own epoch counter, ``epochs_done``, saved inside the weights file: it is the one that counts.
The optimizer's ``iterations`` cannot serve: under fp16 loss scaling a skipped step leaves it
behind.
"""

from __future__ import annotations

import json
import math
from typing import Callable

import keras

from senclr import storage

EPOCHS_DONE = "epochs_done"


def add_epoch_counter(model: keras.Model) -> None:
    """The counter the backup records (call in the model's ``__init__``, before it is built)."""
    model.epochs_done = keras.Variable(0, dtype="int64", trainable=False, name=EPOCHS_DONE)


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore at every epoch, keeping the previous backup, resuming at ``epochs_done``.
    An epoch whose logs hold NaN or inf is not backed up.

    ``log`` is told where a rerun resumes (and when the metadata disagreed with the weights).
    """

    def __init__(self, backup_dir: str, epochs: int, log: Callable[[str], None]):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False, double_checkpoint=True)
        self.epochs, self.log = epochs, log

    def on_epoch_end(self, epoch, logs=None):
        if not all(math.isfinite(float(v)) for v in (logs or {}).values()):
            return  # TerminateOnNaN stops the run: the last backup stays the last good one
        self.model.epochs_done.assign(epoch + 1)
        super().on_epoch_end(epoch, logs)

    def _load_model(self):
        try:
            super()._load_model()
        except json.JSONDecodeError:
            pass  # killed while writing the metadata; the weights loaded before it was read
        if not storage.exists(self._weights_path):
            return
        done = int(keras.ops.convert_to_numpy(self.model.epochs_done))
        said = getattr(self.model, "_initial_epoch", None)
        self.model._initial_epoch = done
        note = "" if said == done else f" (its metadata said {said}: the run was killed while saving)"
        self.log(f"resuming from the backup in {self.backup_dir} after epoch {done} of {self.epochs}{note}")
