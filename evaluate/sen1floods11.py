"""Sen1Floods11 (Bonafilia et al. 2020), hand-labelled part: download it, and read it as published.

Layout of the public bucket ``gs://sen1floods11`` (v1.1), which a local copy keeps as it is:

```
v1.1/data/flood_events/HandLabeled/S1Hand/<EVENT>_<CHIP>_S1Hand.tif      VV, VH (dB)
v1.1/data/flood_events/HandLabeled/S2Hand/<EVENT>_<CHIP>_S2Hand.tif      13 L1C bands
v1.1/data/flood_events/HandLabeled/LabelHand/<EVENT>_<CHIP>_LabelHand.tif  -1 no data, 0, 1 water
v1.1/splits/flood_handlabeled/flood_{train,valid,test,bolivia}_data.csv  rows "<S1 file>,<label file>"
Sen1Floods11_Metadata.geojson                                             the events (bucket root)
```

The download takes these files and nothing else, with anonymous credentials, in parallel, and
is resumable: a local file whose size and CRC32C (MD5 where the object has none) match the
object is kept, anything else is fetched again into ``<file>.partial`` and renamed once it
checks out. Bolivia is the geographic hold-out, absent from the other three splits.
"""

from __future__ import annotations

import base64
import concurrent.futures
import csv
import hashlib
import io
import os

from senclr import storage
from senclr.errors import InputError

BUCKET = "sen1floods11"
HAND = "v1.1/data/flood_events/HandLabeled"
FOLDERS = {"s1": "S1Hand", "s2": "S2Hand", "label": "LabelHand"}
SPLITS_DIR = "v1.1/splits/flood_handlabeled"
SPLITS = {"train": "flood_train_data.csv", "valid": "flood_valid_data.csv", "test": "flood_test_data.csv",
          "bolivia": "flood_bolivia_data.csv"}
METADATA = "Sen1Floods11_Metadata.geojson"
_CHUNK = 1 << 20


def wanted(names: list[str]) -> list[str]:
    """The hand-labelled layout's object names among ``names`` (a bucket listing)."""
    splits = {f"{SPLITS_DIR}/{f}" for f in SPLITS.values()}
    folders = tuple(f"{HAND}/{d}/" for d in FOLDERS.values())
    return sorted(n for n in names if n in splits or n == METADATA
                  or (n.startswith(folders) and n.endswith(".tif") and "/" not in n.split("/", 5)[-1]))


def check_listing(names: list[str], where: str) -> None:
    """InputError naming what the v1.1 hand-labelled layout needs and ``where`` lacks."""
    missing = [f"{SPLITS_DIR}/{f}" for f in SPLITS.values() if f"{SPLITS_DIR}/{f}" not in names]
    missing += [f"{HAND}/{d}/*.tif" for d in FOLDERS.values() if not any(n.startswith(f"{HAND}/{d}/") for n in names)]
    if METADATA not in names:
        missing.append(METADATA)
    if missing:
        raise InputError(f"{where} is not in the Sen1Floods11 v1.1 layout: missing {', '.join(missing)} "
                         "(see docs/evaluate.md for the layout)")


def _digest_b64(path: str, hasher) -> str:
    """base64 of a file's digest, as Cloud Storage reports crc32c and md5Hash."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            hasher.update(chunk)
    return base64.b64encode(hasher.digest()).decode()


def is_complete(path: str, blob) -> bool:
    """The local file holds exactly the object: same size and checksum."""
    if not os.path.isfile(path) or os.path.getsize(path) != blob.size:
        return False
    if blob.crc32c:
        import google_crc32c

        return _digest_b64(path, google_crc32c.Checksum()) == blob.crc32c
    return bool(blob.md5_hash) and _digest_b64(path, hashlib.md5()) == blob.md5_hash


def _fetch(blob, path: str) -> int:
    """Download into path.partial, check it, then rename: a file at ``path`` is always whole."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".partial"
    blob.download_to_filename(partial)
    if not is_complete(partial, blob):
        os.remove(partial)
        raise OSError(f"gs://{blob.bucket.name}/{blob.name}: the downloaded bytes do not match the object's checksum")
    os.replace(partial, path)
    return blob.size


def download(dest: str, bucket: str = BUCKET, workers: int = 8, progress: bool = True) -> dict:
    """Copy the hand-labelled part of ``bucket`` into ``dest``; returns counts (and failures)."""
    from google.cloud import storage as gcs
    from tqdm import tqdm

    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    storage.refuse_file(dest, "--dest")
    client = gcs.Client.create_anonymous_client()
    blobs = {b.name: b for b in client.list_blobs(bucket, prefix="v1.1/")}
    root = client.bucket(bucket).get_blob(METADATA)
    if root is not None:
        blobs[METADATA] = root
    check_listing(list(blobs), f"gs://{bucket}")
    todo, kept = [], []
    for name in wanted(list(blobs)):
        (kept if is_complete(os.path.join(dest, name), blobs[name]) else todo).append(blobs[name])
    failed = {}
    bar = tqdm(total=sum(b.size for b in todo), unit="B", unit_scale=True, desc="sen1floods11", disable=not progress)
    with bar, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = {pool.submit(_fetch, b, os.path.join(dest, b.name)): b for b in todo}
        for job in concurrent.futures.as_completed(jobs):
            blob = jobs[job]
            try:
                bar.update(job.result())
            except Exception as e:  # one failed file must not stop the others; it is named below
                failed[blob.name] = f"{type(e).__name__}: {e}"
    return {"dest": dest, "files": len(todo) + len(kept), "fetched": len(todo) - len(failed),
            "fetched_bytes": sum(b.size for b in todo if b.name not in failed),
            "already_complete": len(kept), "failed": failed}


def read_split(root: str, split: str) -> list[dict]:
    """The chips of an official split: [{"stem", "s1", "s2", "label"}] with full paths;
    InputError naming the split file or chips that are absent."""
    if split not in SPLITS:
        raise InputError(f"unknown Sen1Floods11 split {split!r}: use one of {', '.join(SPLITS)}")
    uri = storage.join(root, SPLITS_DIR, SPLITS[split])
    if not storage.exists(uri):
        raise InputError(f"{root} is not in the Sen1Floods11 v1.1 layout: {uri} is missing "
                         "(download it with `senclr data download sen1floods11 --dest DIR`)")
    chips = []
    for row in csv.reader(io.StringIO(storage.read_text(uri))):
        if not row or not row[0].strip():
            continue
        s1 = row[0].strip()
        stem = s1.removesuffix("_S1Hand.tif")
        names = {"s1": s1, "s2": f"{stem}_S2Hand.tif", "label": row[1].strip() if len(row) > 1 else f"{stem}_LabelHand.tif"}
        chips.append({"stem": stem, **{k: storage.join(root, HAND, FOLDERS[k], n) for k, n in names.items()}})
    absent = [c[k] for c in chips for k in FOLDERS if not storage.exists(c[k])]
    if absent:
        raise InputError(f"{uri} names {len(absent)} file(s) that {root} lacks, e.g. {absent[0]}; "
                         "rerun the download to complete the copy")
    return chips


def load_chip(root: str, chip: dict):
    """One chip as a PatchPair (S1, S2 and the water label on one grid; -1 is no data);
    InputError when its files are not one grid or not the bands Sen1Floods11 has."""
    from senclr.casualty import ReadError
    from senclr.raw_geotiff import read_geotiff_pair

    metadata = storage.join(root, METADATA)
    try:
        return read_geotiff_pair(chip["s1"], chip["s2"], chip["label"], metadata if storage.exists(metadata) else None)
    except ReadError as e:
        raise InputError(f"Sen1Floods11 chip {chip['stem']}: {e}") from None
