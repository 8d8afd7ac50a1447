"""Sen1Floods11-style GeoTIFF chips: found in a folder or gs:// prefix, cut into square patches.

A chip is a triple ``<EVENT>_<ID>_S1Hand.tif``, ``_S2Hand.tif`` and an optional
``_LabelHand.tif``, either side by side (as in the dataset's sample) or in sibling folders named
``S1Hand/``, ``S2Hand/``, ``LabelHand/`` (as in the dataset's bucket). Chips are larger than a
training patch (Sen1Floods11's are 512 px), so each is cut into non-overlapping ``patch_size``
squares from its upper-left corner; partial squares at the right and bottom edges are dropped.
Each patch gets its own transform, centre and pair id, so a patch is a pair like any exported one.
"""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from senclr import storage
from senclr.casualty import ReadError
from senclr.pair import PatchPair, make_pair_id
from senclr.bands import S2_BANDS
from senclr.raw_geotiff import header, lonlat, read_geotiff_pair

SUFFIXES = {"s1": "_S1Hand.tif", "s2": "_S2Hand.tif", "label": "_LabelHand.tif"}
FOLDERS = {"S1Hand", "S2Hand", "LabelHand"}
EVENT_METADATA = "Sen1Floods11_Metadata.geojson"


@dataclass(frozen=True)
class Chip:
    """The files of one chip; ``s1`` or ``s2`` is "" when the folder lacks it (read then fails)."""

    stem: str
    s1: str = ""
    s2: str = ""
    label: str = ""
    event_metadata: str = ""

    @property
    def uri(self) -> str:
        """The file that names the chip in rejects and errors."""
        return self.s1 or self.s2 or self.label


def role_of(uri: str) -> tuple[str, str] | None:
    """('s1' | 's2' | 'label', stem) for a chip file name, else None."""
    name = posixpath.basename(uri)
    for role, suffix in SUFFIXES.items():
        if name.endswith(suffix):
            return role, name[: -len(suffix)]
    return None


def _chip_key(uri: str, stem: str) -> tuple[str, str]:
    """Files of one chip share a stem and a folder, counting S1Hand/, S2Hand/, LabelHand/ as one."""
    folder = posixpath.dirname(uri)
    if posixpath.basename(folder) in FOLDERS:
        folder = posixpath.dirname(folder)
    return folder, stem


def _nearest_metadata(uri: str, candidates: list[str]) -> str:
    """The event metadata file in the chip's folder or the closest folder above it."""
    above = [c for c in candidates if (posixpath.dirname(uri) + "/").startswith(posixpath.dirname(c) + "/")]
    return max(above, key=len) if above else ""


def find_chips(files: Iterable[str]) -> list[Chip]:
    """Group listed file URIs into chips (each stem once), sorted; other files are ignored."""
    files = list(files)
    metadata = [f for f in files if posixpath.basename(f) == EVENT_METADATA]
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for uri in files:
        found = role_of(uri)
        if found:
            role, stem = found
            groups.setdefault(_chip_key(uri, stem), {"stem": stem})[role] = uri
    chips = [Chip(**g) for _, g in sorted(groups.items())]
    return [dataclasses.replace(c, event_metadata=_nearest_metadata(c.uri, metadata)) for c in chips]


def list_chips(prefix: str) -> list[Chip]:
    """The chips under a folder or gs:// prefix, at any depth."""
    return find_chips(storage.list_files(prefix))


def layout(chip: Chip) -> tuple[tuple[str, ...], int, int]:
    """(S2 band names, height, width) of a chip, from its S2 file's header alone."""
    count, h, w = header(chip.s2 or chip.uri)
    level = {13: "l1c", 12: "l2a"}.get(count)
    if level is None:
        raise ReadError(f"{chip.s2}: expected 13 (L1C) or 12 (L2A) bands, found {count}", "bad_shape")
    return S2_BANDS[level], h, w


def read_chip(chip: Chip, patch_size: int | None = None) -> Iterator[PatchPair]:
    """The chip's patches (the whole chip when ``patch_size`` is None); ReadError when it has none."""
    if not chip.s1 or not chip.s2:
        missing = " and ".join(f"{chip.stem}{SUFFIXES[r]}" for r in ("s1", "s2") if not getattr(chip, r))
        raise ReadError(f"chip {chip.stem}: no {missing} beside {chip.uri}", "missing_bands")
    pair = read_geotiff_pair(chip.s1, chip.s2, chip.label or None, chip.event_metadata or None)
    if patch_size is None:
        yield pair
        return
    h, w = pair.shape
    if h < patch_size or w < patch_size:
        raise ReadError(f"chip {chip.stem} is {h}x{w} px, smaller than --patch-size {patch_size}", "bad_shape")
    yield from cut(pair, patch_size)


def cut(pair: PatchPair, size: int) -> list[PatchPair]:
    """Non-overlapping ``size`` squares of a pair, row by row; partial edge squares are dropped."""
    a, b, c, d, e, f = pair.meta.transform
    corners = [(r, k) for r in range(0, pair.shape[0] - size + 1, size) for k in range(0, pair.shape[1] - size + 1, size)]
    cols = np.array([k + size / 2 for _, k in corners])
    rows = np.array([r + size / 2 for r, _ in corners])
    lons, lats = lonlat(pair.meta.crs, a * cols + b * rows + c, d * cols + e * rows + f)
    return [_patch(pair, r, k, size, lon, lat) for (r, k), lon, lat in zip(corners, lons, lats)]


def _patch(pair: PatchPair, row: int, col: int, size: int, lon: float, lat: float) -> PatchPair:
    a, b, c, d, e, f = pair.meta.transform
    m = pair.meta
    meta = dataclasses.replace(
        m, pair_id=make_pair_id(lon, lat, m.s1_id, m.s2_id), lon=lon, lat=lat,
        transform=(a, b, c + a * col + b * row, d, e, f + d * col + e * row),
    )
    window = np.s_[row : row + size, col : col + size]
    return PatchPair(
        meta=meta, s1=pair.s1[window].copy(), s2=pair.s2[window].copy(), cloud=pair.cloud[window].copy(),
        s2_bands=pair.s2_bands, labels={n: lab[window].copy() for n, lab in pair.labels.items()},
        s1_bands=pair.s1_bands, origin=f"{pair.origin}#{row},{col}",
    )
