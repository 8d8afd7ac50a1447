"""BigEarthNet (multi-label land cover) read from a local copy as published: v1 and v2 (reBEN).

v1 (BigEarthNet-S2 v1.0 and BigEarthNet-S1 v1.0, one folder per patch, flat under each root)::

    <root_s2>/<S2>/<S2>_B01.tif ... _B12.tif, _B8A.tif       L2A bands (no B10), uint16
    <root_s2>/<S2>/<S2>_labels_metadata.json                  "labels" (43 CLC names), ...
    <root_s1>/<S1>/<S1>_VV.tif, <S1>_VH.tif                   backscatter, dB, float32
    <root_s1>/<S1>/<S1>_labels_metadata.json                  "labels", "corresponding_s2_patch", ...
    <splits_dir>/train.csv, val.csv, test.csv                 rows "<S2>" or "<S2>,<S1>" (BigEarthNet-MM)
    <splits_dir>/patches_with_cloud_and_shadow.csv, patches_with_seasonal_snow.csv   one S2 name a row

v2 / reBEN (Zenodo 10891137; ``Reference_Maps/`` is for segmentation and is not read)::

    <root>/metadata.parquet    patch_id, labels (19-class names), split (train/validation/test),
                               country, s1_name, s2v1_name, contains_seasonal_snow, contains_cloud_or_shadow
    <root>/BigEarthNet-S2/<patch_id minus its last 2 "_" parts>/<patch_id>/<patch_id>_B01.tif ...
    <root>/BigEarthNet-S1/<s1_name minus its last 3 "_" parts>/<s1_name>/<s1_name>_VV.tif, _VH.tif

In both, a patch is 1200 m square: 120 x 120 pixels at 10 m (B2, B3, B4, B8, VV, VH), 60 x 60 at
20 m (B5, B6, B7, B8A, B11, B12), 20 x 20 at 60 m (B1, B9). Bands come back on the 10 m grid by
nearest-neighbour upsampling (each 20 m pixel becomes 2 x 2, each 60 m pixel 6 x 6): the factors
are exact and the grids share their origin, so no value is invented and stored DNs survive.
The official v1 19-class splits already leave out the cloudy, snowy and label-less patches; the
exclusion lists are applied again so that other split files get the same treatment. reBEN's
``metadata.parquet`` holds only clean patches (flagged ones are in a separate file); rows
flagged anyway are dropped. Bands use senclr's names (``B1`` ... ``B12``, ``B8A``; ``B01`` is
accepted too). Images are float32 [120, 120, C] with S1 channels before S2 channels; labels are
uint8 multi-hot over the 19 classes of :mod:`senclr.evaluate.bigearthnet_labels`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np

from senclr.errors import InputError
from senclr.evaluate.bigearthnet_labels import CLASS_NAMES_19, NUM_CLASSES, multi_hot_19, multi_hot_from_43

__all__ = ["BigEarthNetV1", "BigEarthNetV2", "CLASS_NAMES_19", "NUM_CLASSES", "S1_BANDS", "S2_BANDS", "channels"]

PATCH = 120  # pixels on the 10 m grid
S2_RESOLUTION = {"B1": 60, "B2": 10, "B3": 10, "B4": 10, "B5": 20, "B6": 20, "B7": 20, "B8": 10,
                 "B8A": 20, "B9": 60, "B11": 20, "B12": 20}
S2_BANDS = tuple(S2_RESOLUTION)
S1_BANDS = ("VV", "VH")
INPUTS = ("s1", "s2", "s1s2")
SPLITS = ("train", "val", "test")
EXCLUDE_FILES = ("patches_with_cloud_and_shadow.csv", "patches_with_seasonal_snow.csv")
V1_LAYOUT = ("BigEarthNet v1 layout: <root>/<patch>/<patch>_<band>.tif and <patch>_labels_metadata.json, "
             "split files <splits_dir>/{train,val,test}.csv")
V2_LAYOUT = ("BigEarthNet v2 layout: <root>/metadata.parquet, <root>/BigEarthNet-S2/<tile>/<patch_id>/"
             "<patch_id>_<band>.tif, <root>/BigEarthNet-S1/<scene>/<s1_name>/<s1_name>_VV.tif")
_S2_NAME = re.compile(r"^S2[AB]_MSIL2A_")


def split_name(split: str) -> str:
    """'train' / 'val' / 'test' ('validation' accepted, as reBEN spells it)."""
    s = "val" if split == "validation" else split
    if s not in SPLITS:
        raise InputError(f"unknown BigEarthNet split {split!r}: use one of {', '.join(SPLITS)}")
    return s


def _bands(bands: Sequence[str], known: Sequence[str], sensor: str) -> tuple[str, ...]:
    """Band names as senclr spells them ('B01' -> 'B1'); InputError for unknown or repeated ones."""
    if isinstance(bands, str):
        bands = [bands]
    out = tuple(re.sub(r"^B0(\d)$", r"B\1", b) for b in bands)
    bad = [b for b, n in zip(bands, out) if n not in known]
    if bad or not out or len(set(out)) != len(out):
        why = f"unknown {', '.join(map(repr, bad))}" if bad else "empty or repeated"
        raise InputError(f"BigEarthNet {sensor} bands {list(bands)}: {why}; choose from {', '.join(known)}"
                         + (" (B10 is not in the L2A patches)" if "B10" in out else ""))
    return out


def channels(inputs: str = "s2", s2_bands: Sequence[str] = S2_BANDS, s1_bands: Sequence[str] = S1_BANDS) -> list[str]:
    """The channel names of an image ``load_patch`` returns, in order."""
    if inputs not in INPUTS:
        raise InputError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
    s1 = list(_bands(s1_bands, S1_BANDS, "S1")) if "s1" in inputs else []
    return s1 + (list(_bands(s2_bands, S2_BANDS, "S2")) if "s2" in inputs else [])


def _suffix(band: str) -> str:
    """senclr band name -> BigEarthNet file suffix: B1 -> B01, B8A and B11 unchanged."""
    return f"B0{band[1:]}" if re.fullmatch(r"B\d", band) else band


def _read_band(path: str, res: int, grid: dict, layout: str) -> np.ndarray:
    """One band on the 10 m grid; InputError when the file is absent or off the patch's grid."""
    import rasterio

    if not os.path.isfile(path):
        raise InputError(f"{path} is missing ({layout})")
    n = PATCH * 10 // res
    with rasterio.open(path) as r:
        if r.count != 1 or (r.height, r.width) != (n, n):
            raise InputError(f"{path}: {r.count} band(s) of {r.height}x{r.width} pixels; a {res} m BigEarthNet "
                             f"band is 1 band of {n}x{n}")
        where = (r.crs, np.array(tuple(r.bounds)))
        grid.setdefault("ref", (path, *where))
        ref_path, crs, bounds = grid["ref"]
        if where[0] != crs or not np.allclose(where[1], bounds, atol=0.5):
            raise InputError(f"{path}: its grid ({where[0]}, bounds {where[1].tolist()}) is not that of {ref_path} "
                             f"({crs}, bounds {bounds.tolist()})")
        a = r.read(1)
    k = res // 10
    return np.repeat(np.repeat(a, k, axis=0), k, axis=1) if k > 1 else a


def read_s2(folder: str, name: str, bands: Sequence[str] = S2_BANDS, layout: str = V1_LAYOUT) -> np.ndarray:
    """float32 [120, 120, len(bands)] from ``<folder>/<name>_<Bxx>.tif``, in the order asked."""
    bands, grid = _bands(bands, S2_BANDS, "S2"), {}
    out = np.empty((PATCH, PATCH, len(bands)), np.float32)
    for i, b in enumerate(bands):
        out[..., i] = _read_band(os.path.join(folder, f"{name}_{_suffix(b)}.tif"), S2_RESOLUTION[b], grid, layout)
    return out


def read_s1(folder: str, name: str, bands: Sequence[str] = S1_BANDS, layout: str = V1_LAYOUT) -> np.ndarray:
    """float32 [120, 120, len(bands)] from ``<folder>/<name>_VV.tif`` / ``_VH.tif`` (dB)."""
    bands, grid = _bands(bands, S1_BANDS, "S1"), {}
    out = np.empty((PATCH, PATCH, len(bands)), np.float32)
    for i, b in enumerate(bands):
        out[..., i] = _read_band(os.path.join(folder, f"{name}_{b}.tif"), 10, grid, layout)
    return out


def _wants(inputs: str | None, sensor: str) -> bool:
    """Whether ``inputs`` (None: whatever is there) asks for ``sensor``."""
    if inputs is not None and inputs not in INPUTS:
        raise InputError(f"inputs must be one of {', '.join(INPUTS)}, got {inputs!r}")
    return inputs is None or sensor in inputs


def _absent(names: list[str], present: set[str], what: str, where: str) -> None:
    missing = [n for n in names if n not in present]
    if missing:
        raise InputError(f"{what} names {len(missing)} patch(es) that {where} lacks, e.g. {missing[0]}")


class _Loader:
    """Reading shared by both versions; a patch is a dict from ``list_patches``."""

    layout = V1_LAYOUT

    def list_patches(self, split: str, inputs: str | None = None) -> list[dict]:
        raise NotImplementedError

    def labels(self, patch: dict) -> np.ndarray:
        raise NotImplementedError

    def load_patch(self, patch: dict, inputs: str = "s2", s2_bands: Sequence[str] = S2_BANDS,
                   s1_bands: Sequence[str] = S1_BANDS) -> tuple[np.ndarray, np.ndarray]:
        """(image float32 [120, 120, C], labels uint8 [19]); S1 channels first when both."""
        channels(inputs, s2_bands, s1_bands)
        parts = []
        for sensor, read, bands in (("s1", read_s1, s1_bands), ("s2", read_s2, s2_bands)):
            if sensor not in inputs:
                continue
            if not patch.get(f"{sensor}_dir"):
                raise InputError(f"patch {patch['name']} has no {sensor.upper()} folder: give the {sensor.upper()} "
                                 f"root and list patches with inputs={inputs!r}")
            parts.append(read(patch[f"{sensor}_dir"], patch[f"{sensor}_name"], bands, self.layout))
        return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)), self.labels(patch)

    def iter_split(self, split: str, inputs: str = "s2", s2_bands: Sequence[str] = S2_BANDS,
                   s1_bands: Sequence[str] = S1_BANDS, limit: int | None = None
                   ) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
        """(patch, image, labels) one patch at a time, so a split never sits whole in memory."""
        for patch in self.list_patches(split, inputs)[:limit]:
            yield (patch, *self.load_patch(patch, inputs, s2_bands, s1_bands))

    def load_arrays(self, patches: Sequence[dict], inputs: str = "s2", s2_bands: Sequence[str] = S2_BANDS,
                    s1_bands: Sequence[str] = S1_BANDS) -> tuple[np.ndarray, np.ndarray]:
        """Stacked (images float32 [N, 120, 120, C], labels uint8 [N, 19]) of the given patches."""
        x = np.empty((len(patches), PATCH, PATCH, len(channels(inputs, s2_bands, s1_bands))), np.float32)
        y = np.empty((len(patches), NUM_CLASSES), np.uint8)
        for i, p in enumerate(patches):
            x[i], y[i] = self.load_patch(p, inputs, s2_bands, s1_bands)
        return x, y

    def load_split_arrays(self, split: str, inputs: str = "s2", s2_bands: Sequence[str] = S2_BANDS,
                          s1_bands: Sequence[str] = S1_BANDS, limit: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(images, labels, patch names) of the first ``limit`` patches of a split (all when None:
        mind memory, a full train split is hundreds of GB as float32)."""
        patches = self.list_patches(split, inputs)[:limit]
        return (*self.load_arrays(patches, inputs, s2_bands, s1_bands), [p["name"] for p in patches])


def _folder(path: str | None, what: str, layout: str) -> str | None:
    if path is not None and not os.path.isdir(path):
        raise InputError(f"{what} {path} is not a folder ({layout})")
    return path


class BigEarthNetV1(_Loader):
    """BigEarthNet v1.0 folders; S2 names key the patches, S1 ones come from the split's second
    column or, failing that, from every S1 patch's ``corresponding_s2_patch`` (read once)."""

    def __init__(self, root_s2: str | None, root_s1: str | None = None, *, splits_dir: str,
                 exclude_lists: Sequence[str] | None = None):
        if root_s2 is None and root_s1 is None:
            raise InputError("give the BigEarthNet-S2 root, the BigEarthNet-S1 root, or both")
        self.root_s2 = _folder(root_s2, "BigEarthNet-S2 root", V1_LAYOUT)
        self.root_s1 = _folder(root_s1, "BigEarthNet-S1 root", V1_LAYOUT)
        self.splits_dir = _folder(splits_dir, "splits folder", V1_LAYOUT)
        if exclude_lists is None:  # the two official lists, where they sit beside the split files
            exclude_lists = [p for f in EXCLUDE_FILES if os.path.isfile(p := os.path.join(splits_dir, f))]
        self.excluded = set().union(*(self._names(p, 0) for p in exclude_lists))
        self._s1_of: dict[str, str] | None = None
        self._listing: dict[str, set[str]] = {}

    @staticmethod
    def _rows(path: str) -> list[list[str]]:
        if not os.path.isfile(path):
            raise InputError(f"{path} is missing ({V1_LAYOUT})")
        with open(path, newline="") as f:
            rows = [[c.strip() for c in r] for r in csv.reader(f) if r and r[0].strip()]
        return rows[1:] if rows and not _S2_NAME.match(rows[0][0]) else rows  # a header row, if any

    def _names(self, path: str, col: int) -> set[str]:
        return {r[col] for r in self._rows(path) if len(r) > col}

    def _present(self, root: str) -> set[str]:
        if root not in self._listing:
            self._listing[root] = set(os.listdir(root))
        return self._listing[root]

    def s1_of_s2(self) -> dict[str, str]:
        """S2 name -> S1 name from the S1 patches' metadata (one small JSON per patch; cached)."""
        if self._s1_of is None:
            self._s1_of = {}
            for s1 in sorted(self._present(self.root_s1)):
                meta = self._json(self.root_s1, s1)
                if "corresponding_s2_patch" not in meta:
                    raise InputError(f"{self.root_s1}/{s1}: its labels_metadata.json has no corresponding_s2_patch")
                self._s1_of[meta["corresponding_s2_patch"]] = s1
        return self._s1_of

    def list_patches(self, split: str, inputs: str | None = None) -> list[dict]:
        """The split's patches, cloudy and snowy ones left out: [{"name", "split", "s2_dir",
        "s2_name", "s1_dir", "s1_name"}]; InputError naming patches absent from a root."""
        split = split_name(split)
        path = os.path.join(self.splits_dir, f"{split}.csv")
        rows = [r for r in self._rows(path) if r[0] not in self.excluded]
        s2 = [r[0] for r in rows]
        want_s2 = self.root_s2 is not None and _wants(inputs, "s2")
        want_s1 = self.root_s1 is not None and _wants(inputs, "s1")
        if want_s2:
            _absent(s2, self._present(self.root_s2), path, self.root_s2)
        s1 = [r[1] if len(r) > 1 else None for r in rows]
        if want_s1 and None in s1:
            s1 = [b or self.s1_of_s2().get(a, f"<no S1 patch pairs with {a}>") for a, b in zip(s2, s1)]
        if want_s1:
            _absent(s1, self._present(self.root_s1), path, self.root_s1)
        return [{"name": a, "split": split, "s2_name": a, "s2_dir": os.path.join(self.root_s2, a) if want_s2 else None,
                 "s1_name": b, "s1_dir": os.path.join(self.root_s1, b) if want_s1 else None} for a, b in zip(s2, s1)]

    @staticmethod
    def _json(root: str, name: str) -> dict:
        path = os.path.join(root, name, f"{name}_labels_metadata.json")
        if not os.path.isfile(path):
            raise InputError(f"{path} is missing ({V1_LAYOUT})")
        with open(path) as f:
            return json.load(f)

    def labels(self, patch: dict) -> np.ndarray:
        """The 19-class multi-hot of the patch's 43 v1 labels (S2 metadata first, else S1's)."""
        sensor = "s2" if patch.get("s2_dir") else "s1"
        root, name = os.path.dirname(patch[f"{sensor}_dir"]), patch[f"{sensor}_name"]
        meta = self._json(root, name)
        if not isinstance(meta.get("labels"), list):
            raise InputError(f"{root}/{name}/{name}_labels_metadata.json has no \"labels\" list ({V1_LAYOUT})")
        return multi_hot_from_43(meta["labels"], where=f"{root}/{name}/{name}_labels_metadata.json")


class BigEarthNetV2(_Loader):
    """BigEarthNet v2.0 (reBEN): patches, labels and splits from ``metadata.parquet``; either
    GeoTIFF tree may be absent when that sensor is not asked for."""

    layout = V2_LAYOUT
    COLUMNS = ("patch_id", "labels", "split", "s1_name")
    FLAGS = ("contains_seasonal_snow", "contains_cloud_or_shadow")

    def __init__(self, root: str, *, metadata: str | None = None):
        self.root = _folder(root, "BigEarthNet v2 root", V2_LAYOUT)
        self.metadata = metadata or os.path.join(root, "metadata.parquet")
        self.s2_root = os.path.join(root, "BigEarthNet-S2")
        self.s1_root = os.path.join(root, "BigEarthNet-S1")
        self.table = self._read_metadata()  # columnar: a few bytes a patch, not a dict each
        self._listing: dict[str, set[str]] = {}

    def _read_metadata(self):
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        if not os.path.isfile(self.metadata):
            raise InputError(f"{self.metadata} is missing ({V2_LAYOUT})")
        names = pq.read_schema(self.metadata).names
        missing = [c for c in self.COLUMNS if c not in names]
        if missing:
            raise InputError(f"{self.metadata} lacks column(s) {', '.join(missing)}; reBEN's metadata.parquet has "
                             f"{', '.join(self.COLUMNS)}, country, ...")
        extra = [c for c in ("country", *self.FLAGS) if c in names]
        table = pq.read_table(self.metadata, columns=[*self.COLUMNS, *extra])
        for flag in set(self.FLAGS) & set(extra):
            table = table.filter(pc.invert(pc.fill_null(table[flag], False)))
        return table

    @staticmethod
    def s2_folder(patch_id: str) -> str:
        """The tile folder of an S2 patch: its name less the trailing ``_<row>_<col>``."""
        return patch_id.rsplit("_", 2)[0]

    @staticmethod
    def s1_folder(s1_name: str) -> str:
        """The scene folder of an S1 patch: its name less the trailing ``_<tile>_<row>_<col>``."""
        return s1_name.rsplit("_", 3)[0]

    def _present(self, root: str, folder: str) -> set[str]:
        key = os.path.join(root, folder)
        if key not in self._listing:
            self._listing[key] = set(os.listdir(key)) if os.path.isdir(key) else set()
        return self._listing[key]

    def _check(self, root: str, names: list[str], folder_of, what: str) -> None:
        missing = [n for n in names if n not in self._present(root, folder_of(n))]
        if missing:
            raise InputError(f"{self.metadata} names {len(missing)} {what} patch(es) that {root} lacks, e.g. "
                             f"{os.path.join(root, folder_of(missing[0]), missing[0])} ({V2_LAYOUT})")

    def list_patches(self, split: str, inputs: str | None = None) -> list[dict]:
        """The split's patches: [{"name", "split", "labels", "country", "s2_dir", "s2_name",
        "s1_dir", "s1_name"}]; a sensor's tree is checked when it exists or is asked for."""
        import pyarrow as pa
        import pyarrow.compute as pc

        split = split_name(split)
        spelled = pa.array(["val", "validation"] if split == "val" else [split])
        rows = self.table.filter(pc.is_in(self.table["split"], value_set=spelled)).to_pylist()
        trees = {"s2": (self.s2_root, "patch_id", self.s2_folder), "s1": (self.s1_root, "s1_name", self.s1_folder)}
        use = {s: _wants(inputs, s) and (inputs is not None or os.path.isdir(t[0])) for s, t in trees.items()}
        if not any(use.values()):
            raise InputError(f"{self.root} has neither BigEarthNet-S2/ nor BigEarthNet-S1/ ({V2_LAYOUT})")
        for s, (root, col, folder_of) in trees.items():
            if use[s]:
                self._check(root, [r[col] for r in rows], folder_of, s.upper())
        return [{"name": r["patch_id"], "split": split, "labels": list(r["labels"]), "country": r.get("country"),
                 "s2_name": r["patch_id"], "s2_dir": self._dir("s2", r["patch_id"]) if use["s2"] else None,
                 "s1_name": r["s1_name"], "s1_dir": self._dir("s1", r["s1_name"]) if use["s1"] else None}
                for r in rows]

    def _dir(self, sensor: str, name: str) -> str:
        if sensor == "s2":
            return os.path.join(self.s2_root, self.s2_folder(name), name)
        return os.path.join(self.s1_root, self.s1_folder(name), name)

    def labels(self, patch: dict) -> np.ndarray:
        return multi_hot_19(patch["labels"], where=f"{self.metadata} patch {patch['name']}")
