"""Everything that defines a pre-training run, in one frozen record the CLI fills from its flags.

``fingerprint`` is what a rerun must share with the run whose backup it finds in the model dir
to resume it; where the run executes (strategy, TPU address) and how it reports are left out,
so a preempted job may come back on other hardware.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from senclr.models.augment_config import AugmentConfig

METHODS = ("multimodal", "simclr")
BACKBONES = ("small", "resnet18", "resnet50")
OPTIMIZERS = ("lars", "adamw", "adam")
LR_SCALINGS = ("linear", "sqrt", "none")
MODALITIES = ("s1", "s2", "s1s2")
PRECISIONS = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
NOT_IN_FINGERPRINT = ("strategy", "tpu", "progress")


@dataclass(frozen=True)
class TrainSpec:
    """A run's settings; see docs/train.md for each flag."""

    method: str = "multimodal"
    backbone: str = "small"
    modality: str = "s1"  # simclr only: the encoder's input
    epochs: int = 10
    batch_size: int = 64  # global: split evenly over the replicas
    learning_rate: float = 1e-3  # base rate, before --lr-scaling
    lr_scaling: str = "none"
    warmup_epochs: float = 0.0
    optimizer: str = "adam"
    weight_decay: float = 0.0
    temperature: float = 0.1
    width: int = 32  # small backbone only
    proj_dim: int = 64
    head_layers: int = 2
    intra_modal_negatives: bool = False
    global_bn: bool = True
    s1_bands: tuple[str, ...] | None = None
    s2_bands: tuple[str, ...] | None = None
    seed: int = 0
    deterministic: bool = False
    precision: str = "fp32"
    checkpoint_steps: int = 0  # 0: back up at every epoch
    steps_per_execution: int = 1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    strategy: str = "auto"
    tpu: str | None = None
    progress: bool = True

    def replace(self, **changes) -> "TrainSpec":
        return dataclasses.replace(self, **changes)

    def fingerprint(self, data: str) -> dict:
        """JSON-able settings a resumed run must share (bands resolved, data as given)."""
        d = dataclasses.asdict(self)
        for k in NOT_IN_FINGERPRINT:
            d.pop(k)
        d["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["augment"].items()}
        for k in ("s1_bands", "s2_bands"):
            d[k] = None if d[k] is None else list(d[k])
        if self.method == "multimodal":
            d.pop("modality")
            d.pop("augment")
        return {"data": data, **d}
