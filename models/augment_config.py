"""The settings of SimCLR's augmentations (``senclr.models.augment``), importable without TensorFlow
so the CLI can validate them before anything heavy loads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run and how strong they are; defaults suit 32-64 px patches."""

    crop_scale: tuple[float, float] = (0.25, 1.0)  # area fraction; SimCLR's 0.08 leaves 9 px of 32
    crop: bool = True  # random resized crop: the strongest SimCLR augmentation
    flip: bool = True  # h and v flips: overhead scenes have no "up"
    rotate90: bool = True  # k*90 degrees: same reason, exact (no interpolation)
    jitter_prob: float = 0.8  # SimCLR's colour-jitter probability
    brightness: float = 0.2  # per-band shift in std units: mild, bands stay physically plausible
    contrast: float = 0.2  # per-band gain in [1-c, 1+c] around the band mean
    blur_prob: float = 0.5  # SimCLR's blur probability
    blur_sigma: tuple[float, float] = (0.1, 1.5)  # px; SimCLR's (0.1, 2) shrunk for small patches
    speckle_looks: float = 0.0  # 0 = off; else equivalent number of looks L (>= 1) of the noise

    def __post_init__(self):
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        for name in ("jitter_prob", "blur_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.brightness < 0:
            raise ValueError(f"brightness must be >= 0, got {self.brightness}")
        if not 0 <= self.contrast < 1:
            raise ValueError(f"contrast must be in [0, 1) so gains stay > 0, got {self.contrast}")
        s_lo, s_hi = self.blur_sigma
        if not 0 < s_lo <= s_hi:
            raise ValueError(f"blur_sigma must satisfy 0 < lo <= hi, got {self.blur_sigma}")
        if self.speckle_looks != 0 and not self.speckle_looks >= 1:
            raise ValueError(f"speckle_looks must be 0 (off) or >= 1, got {self.speckle_looks}")
