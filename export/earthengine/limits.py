"""How much one pair asks of Earth Engine, and the patch sizes and task sizes that fit.

computePixels refuses (HTTP 400, which the client does not retry) a request whose size exceeds
48 MiB = 50,331,648 bytes, counted as pixels x bands x (bytes per pixel + 1 mask byte). A pair
is S1 VV, VH (float32), the S2 bands (uint16), cs_cdf (float32) and any label bands (uint8 class
maps, 64 int8 for the embedding), so an L1C pair needs 54 bytes a pixel (186 with every label
and the embedding, 520 px at most): 964 px is the largest even patch side that fits (992 px
for L2A). Batch tasks hold the same per-patch arrays, so their patches obey the same cap, and a
task's pairs are capped by bytes (``TASK_MAX_BYTES``) as well as by count.
"""

from __future__ import annotations

import math

from senclr.bands import S1_BANDS, s2_collection
from senclr.errors import InputError
from senclr.label_bands import bands_of

COMPUTE_PIXELS_MAX_BYTES = 50_331_648  # 48 MiB, Earth Engine's computePixels limit
MASK_BYTES = 1  # Earth Engine counts one mask byte per pixel and band
DTYPE_BYTES = {"float32": 4, "uint16": 2, "uint8": 1, "int8": 1}
PAIRS_PER_TASK = 1000  # batch: at most this many pairs per task (task start-up cost vs the 3000-task queue)
# Batch: what one task may hold. 1000 L1C pairs of 128 px (the default) are 0.88 GB; bigger patches
# get fewer pairs per task, so one task never asks neighborhoodToArray + sample for much more.
TASK_MAX_BYTES = 1 << 30


def pair_bands(s2_level: str, labels=()) -> list[tuple[str, str]]:
    """(band, dtype) of one pair's image, in the order requested."""
    return ([(b, "float32") for b in S1_BANDS] + [(b, "uint16") for b in s2_collection(s2_level).band_names]
            + [("cs_cdf", "float32")] + [band for label in labels for band in bands_of(label)])


def bytes_per_pixel(dtypes) -> int:
    """Bytes Earth Engine counts per pixel for bands of ``dtypes``: each band's bytes + its mask byte."""
    return sum(DTYPE_BYTES[d] + MASK_BYTES for d in dtypes)


def largest_side(dtypes) -> int:
    """The largest even square side whose request of ``dtypes`` bands fits the limit."""
    side = math.isqrt(COMPUTE_PIXELS_MAX_BYTES // bytes_per_pixel(dtypes))
    return side - side % 2


def request_bytes(patch_size: int, s2_level: str, labels=()) -> int:
    """The size Earth Engine counts for one pair's request: pixels x sum over bands of (bytes + mask byte)."""
    return patch_size * patch_size * bytes_per_pixel(d for _, d in pair_bands(s2_level, labels))


def largest_patch_size(s2_level: str, labels=()) -> int:
    """The largest even patch side whose pair request fits COMPUTE_PIXELS_MAX_BYTES."""
    return largest_side([d for _, d in pair_bands(s2_level, labels)])


def check_patch_size(patch_size: int, s2_level: str, labels=()) -> None:
    """InputError, before any request, for a patch whose pair Earth Engine would refuse."""
    need = request_bytes(patch_size, s2_level, labels)
    if need > COMPUTE_PIXELS_MAX_BYTES:
        extra = f" with {', '.join(labels)}" if labels else ""
        raise InputError(
            f"--patch-size {patch_size}: one {s2_level.upper()} pair{extra} is {need:,} bytes as Earth Engine counts "
            f"it (pixels x bands x (bytes + 1 mask byte)), over its {COMPUTE_PIXELS_MAX_BYTES:,}-byte limit per "
            f"request; use --patch-size {largest_patch_size(s2_level, labels)} or less")


def pairs_per_task(patch_size: int, s2_level: str, labels=()) -> int:
    """Pairs in one batch task: PAIRS_PER_TASK, fewer where their bytes would pass TASK_MAX_BYTES."""
    return max(1, min(PAIRS_PER_TASK, TASK_MAX_BYTES // request_bytes(patch_size, s2_level, labels)))
