"""What ``--input`` points at, and the units of work it holds.

``--input`` may be a folder or gs:// prefix, an export's ``manifest.json``, one file, or a glob
(``gs://b/x/*/pairs/*.json``, ``data/**/*Hand.tif``). Every file found is sorted into one of three
formats by where it sits, and each format has a root folder:

    raw archive      ROOT/pairs/<id>.json (+ .npy)       one pair per unit
    batch export     ROOT/tasks/*.tfrecord.gz            one TFRecord shard per unit; metadata in
                                                         ROOT/ledger/plan.json
    GeoTIFF chips    <stem>_S1Hand.tif, _S2Hand.tif,     one chip per unit, cut into --patch-size
                     optional _LabelHand.tif             patches

A unit expands to 0..n PatchPairs when read (``read_unit``). A folder must hold a finished
archive (its manifest.json); a glob may select pairs of an unfinished one. Every source must agree
on the S2 bands and the patch size, or nothing is started.
"""

from __future__ import annotations

import os
import posixpath
import json
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from senclr import manifest as manifest_lib
from senclr import raw_archive, raw_chips, raw_ee_table, storage
from senclr.casualty import Casualty, ReadError
from senclr.errors import InputError
from senclr.pair import PatchPair
from senclr.schema import LABELS

ARCHIVE, BATCH, CHIPS = "raw-archive", "batch-export", "geotiff-chips"
_SAMPLE_TRIES = 10  # readable files tried when the band layout must come from the data itself


@dataclass(frozen=True)
class Unit:
    """One file's worth of work: a pair's .json, a TFRecord shard, or a chip triple."""

    kind: str  # ARCHIVE, BATCH or CHIPS
    uri: str  # the file that names the unit in rejects
    plan: str = ""  # batch: the export's ledger/plan.json
    chip: raw_chips.Chip | None = None


def unit_to_json(unit: Unit) -> str:
    d = {"kind": unit.kind, "uri": unit.uri, "plan": unit.plan}
    if unit.chip is not None:
        d["chip"] = asdict(unit.chip)
    return json.dumps(d, sort_keys=True)


def unit_from_json(line: str) -> Unit:
    d = json.loads(line)
    chip = raw_chips.Chip(**d["chip"]) if "chip" in d else None
    return Unit(d["kind"], d["uri"], d.get("plan", ""), chip)


PAIRS_PER_CHUNK = 64  # units travel in chunks of about this many pairs: Beam's per-element cost is per chunk
CHUNKS_PER_WORKER = 8  # but never so few chunks that a worker would wait


def chunks(units: list[Unit], expected_pairs: int, workers: int = 1) -> list[list[Unit]]:
    """Units in consecutive chunks: many light units (archive pairs) share one, a heavy one (a
    batch-export shard of 1000 pairs) is alone; at least CHUNKS_PER_WORKER per worker."""
    per_unit = max(1.0, expected_pairs / max(1, len(units)))
    size = max(1, min(int(PAIRS_PER_CHUNK // per_unit), len(units) // (CHUNKS_PER_WORKER * max(1, workers))))
    return [units[i : i + size] for i in range(0, len(units), size)]


def chunk_to_json(chunk: list[Unit]) -> str:
    return "[" + ",".join(unit_to_json(u) for u in chunk) + "]"


def chunk_from_json(line: str) -> list[Unit]:
    return [unit_from_json(json.dumps(d)) for d in json.loads(line)]


@dataclass
class Source:
    """One archive, export or chip collection, with the band layout it declares or shows."""

    kind: str
    root: str
    units: list[Unit]
    s2_bands: tuple[str, ...]
    patch_size: int | None
    labels: tuple[str, ...] = ()
    filters: dict = field(default_factory=dict)  # the Cloud Score+ policy it recorded
    expected_pairs: int = 0


@dataclass
class Inputs:
    sources: list[Source]
    s2_bands: tuple[str, ...]
    patch_size: int | None
    labels: tuple[str, ...]

    @property
    def units(self) -> list[Unit]:
        return [u for s in self.sources for u in s.units]

    @property
    def expected_pairs(self) -> int:
        return sum(s.expected_pairs for s in self.sources)

    @property
    def roots(self) -> list[str]:
        return [s.root for s in self.sources]

    def recorded(self, key: str) -> float | None:
        """The filter value the sources recorded (InputError when they disagree)."""
        values = sorted({s.filters[key] for s in self.sources if key in s.filters})
        if len(values) > 1:
            flag = "--" + key.replace("_", "-")
            raise InputError(f"the inputs were exported with different {flag} values {values}: pass {flag} explicitly")
        return values[0] if values else None

    def summary(self) -> list[dict]:
        return [{"kind": s.kind, "root": s.root, "units": len(s.units)} for s in self.sources]


def _parent(uri: str) -> tuple[str, str]:
    """(folder, name of that folder) of a file."""
    folder = posixpath.dirname(uri)
    return folder, posixpath.basename(folder)


def _group(files: list[str]) -> tuple[dict, dict, list[str]]:
    """Files -> ({archive root: pair .json URIs}, {export root: shard URIs}, chip files)."""
    archives: dict[str, set] = {}
    exports: dict[str, list] = {}
    chip_files = []
    for f in files:
        folder, folder_name = _parent(f)
        if folder_name == raw_archive.PAIRS_DIR and f.endswith((".json", ".npy")):
            archives.setdefault(posixpath.dirname(folder), set()).add(f.rsplit(".", 1)[0] + ".json")
        elif folder_name == raw_ee_table.TASKS_DIR and raw_ee_table.is_shard(f):
            exports.setdefault(posixpath.dirname(folder), []).append(f)
        elif raw_chips.role_of(f) or posixpath.basename(f) == raw_chips.EVENT_METADATA:
            chip_files.append(f)
    return {r: sorted(u) for r, u in archives.items()}, exports, chip_files


def _manifest(root: str) -> dict | None:
    return manifest_lib.read(root, kind="raw") if storage.exists(manifest_lib.path(root)) else None


def _archive(root: str, uris: list[str], need_manifest: bool) -> Source:
    m = _manifest(root)
    if m is not None:
        return Source(ARCHIVE, root, [Unit(ARCHIVE, u) for u in uris], tuple(m["bands"]["s2"]),
                      int(m.get("patch_size") or 0) or None, tuple(m.get("labels", [])), dict(m.get("filters", {})), len(uris))
    if need_manifest:
        raise InputError(f"{root} holds pairs but no manifest.json: the export is unfinished. Finish it, or select "
                         f"its pairs explicitly with a glob such as {storage.join(root, raw_archive.PAIRS_DIR, '*.json')}")
    for uri in uris[:_SAMPLE_TRIES]:  # no manifest: learn the layout from the first readable pair
        try:
            p = raw_archive.read_pair(uri)
        except Exception:  # noqa: BLE001 - a broken pair is counted when the pipeline reads it
            continue
        return Source(ARCHIVE, root, [Unit(ARCHIVE, u) for u in uris], tuple(p.s2_bands), p.shape[0], tuple(p.labels), {}, len(uris))
    raise InputError(f"none of the first {min(len(uris), _SAMPLE_TRIES)} pairs under {root} can be read, and it has no manifest")


def _batch_export(root: str, shards: list[str]) -> Source:
    plan_uri = raw_ee_table.plan_uri(root)
    if not storage.exists(plan_uri):
        raise InputError(f"{root}/tasks holds TFRecords but {plan_uri} is missing: the pairs' metadata is in the "
                         "export's ledger; point --input at the whole export folder")
    try:
        plan = raw_ee_table.read_plan(plan_uri)
    except ReadError as e:
        raise InputError(str(e)) from None
    units = [Unit(BATCH, s, plan=plan_uri) for s in sorted(shards)]
    return Source(BATCH, root, units, plan.s2_bands, plan.patch_size, (), plan.filters, len(plan.entries))


def _common_folder(uris: list[str]) -> str:
    """The deepest folder holding every URI (segment-wise, so gs:// survives)."""
    parts = [u.split("/")[:-1] for u in uris]
    common = []
    for segment in zip(*parts):
        if len(set(segment)) > 1:
            break
        common.append(segment[0])
    return "/".join(common)


def _chips(files: list[str], patch_size: int | None) -> Source | None:
    chips = raw_chips.find_chips(files)
    if not chips:
        return None
    root = _common_folder([c.uri for c in chips])
    for chip in chips[:_SAMPLE_TRIES]:
        try:
            s2_bands, h, w = raw_chips.layout(chip)
            break
        except Exception:  # noqa: BLE001 - a broken chip is counted when the pipeline reads it
            continue
    else:
        raise InputError(f"none of the first {min(len(chips), _SAMPLE_TRIES)} GeoTIFF chips under {root} can be read")
    labelled = all(c.label for c in chips)
    size = patch_size or min(h, w)
    per_chip = (h // size) * (w // size) if patch_size else 1
    units = [Unit(CHIPS, c.uri, chip=c) for c in chips]
    return Source(CHIPS, root, units, s2_bands, size, ("water",) if labelled else (), {}, per_chip * len(chips))


def _sources(files: list[str], patch_size: int | None, folder: bool) -> list[Source]:
    archives, exports, chip_files = _group(files)
    found = [_archive(r, u, need_manifest=folder) for r, u in sorted(archives.items())]
    found += [_batch_export(r, s) for r, s in sorted(exports.items())]
    chips = _chips(chip_files, patch_size)
    return found + ([chips] if chips else [])


def _folder(root: str, patch_size: int | None) -> list[Source]:
    if not storage.is_gcs(root) and not storage.is_dir(root):
        raise InputError(f"input {root} does not exist: point --input at a raw archive, a batch export, "
                         "a folder of GeoTIFF chips or a glob")
    m = _manifest(root)  # a manifest that is there must be valid, whatever else the folder holds
    found = _sources(list(storage.list_files(root)), patch_size, folder=True)
    if not found and m is not None:
        raise InputError(f"input {root} holds no pairs: its manifest is there, but nothing under "
                         f"{storage.join(root, raw_archive.PAIRS_DIR)} or {storage.join(root, raw_ee_table.TASKS_DIR)}")
    if not found:
        raise InputError(f"input {root} holds nothing senclr reads: no manifest.json with pairs/*.json, no "
                         "tasks/*.tfrecord.gz with ledger/plan.json, no *_S1Hand.tif / *_S2Hand.tif chips")
    return found


def _selected(pattern: str, patch_size: int | None) -> list[Source]:
    """Sources of the files a glob (or one file name) selects; manifests select their folders."""
    files = storage.glob(pattern)
    if not files:
        raise InputError(f"--input {pattern} matches no files")
    folders = [posixpath.dirname(f) + "/" for f in files if posixpath.basename(f) == manifest_lib.FILENAME]
    found = [s for folder in folders for s in _folder(folder[:-1], patch_size)]
    rest = [f for f in files if not any(f.startswith(folder) for folder in folders)]  # read with their folder
    found += _sources(rest, patch_size, folder=False)
    if not found:
        raise InputError(f"--input {pattern} matches {len(files)} files, none of them pairs, TFRecord shards of an "
                         f"export or GeoTIFF chips (e.g. {files[0]})")
    return found


def _is_file(uri: str) -> bool:
    if storage.is_gcs(uri):
        name = storage.split_gcs(uri)[1]
        return bool(name) and not name.endswith("/") and storage.exists(uri)
    return os.path.isfile(uri)


def _merge(found: list[Source], patch_size: int | None) -> Inputs:
    """One band layout for all sources, or InputError naming the ones that differ."""
    bands = {s.s2_bands for s in found}
    if len(bands) > 1:
        raise InputError("the inputs hold different Sentinel-2 bands: " + "; ".join(f"{s.root}: {list(s.s2_bands)}" for s in found))
    other = [s for s in found if s.patch_size and patch_size and s.patch_size != patch_size]
    if other:
        raise InputError(f"--patch-size {patch_size} cuts GeoTIFF chips, but {other[0].root} holds {other[0].patch_size} px patches")
    sizes = {s.patch_size for s in found if s.patch_size}
    if len(sizes) > 1:
        raise InputError("the inputs hold different patch sizes: " + "; ".join(f"{s.root}: {s.patch_size}" for s in found))
    labels = tuple(n for n in LABELS if all(n in s.labels for s in found))
    return Inputs(sorted(found, key=lambda s: (s.root, s.kind)), bands.pop(), sizes.pop() if sizes else None, labels)


def resolve(input_: str, patch_size: int | None = None) -> Inputs:
    """Detect the input's format(s) and list its units; InputError when nothing can be read."""
    input_ = str(input_)
    if patch_size is not None and not 8 <= patch_size <= 4096:
        raise InputError(f"--patch-size must be between 8 and 4096 pixels, got {patch_size}")
    if posixpath.basename(input_) == manifest_lib.FILENAME and not storage.is_glob(input_):
        found = _folder(posixpath.dirname(input_) or ".", patch_size)
    elif storage.is_glob(input_) or _is_file(input_):
        found = _selected(input_, patch_size)
    else:
        found = _folder(input_, patch_size)
    inputs = _merge(found, patch_size)
    if not inputs.units:
        raise InputError(f"input {input_} holds no pairs: nothing under {', '.join(inputs.roots)} to read")
    return inputs


def read_unit(unit: Unit, patch_size: int | None, plan: Callable[[str], raw_ee_table.ExportPlan]) -> Iterator[PatchPair | Casualty]:
    """The pairs (and per-pair casualties) of one unit; raises when the file itself is lost."""
    if unit.kind == ARCHIVE:
        yield raw_archive.read_pair(unit.uri)
    elif unit.kind == BATCH:
        yield from raw_ee_table.read_shard(unit.uri, plan(unit.plan))
    elif unit.kind == CHIPS:
        yield from raw_chips.read_chip(unit.chip, patch_size)
    else:
        raise ValueError(f"unknown unit kind {unit.kind!r}")
