"""Where a dataset is built and how it replaces the old one, atomically for readers, local or gs://.

Layout::

    DATASET/manifest.json                  the switch: lists every shard of the current build
    DATASET/build-<NNNN>/...               that build's shards and rejects.jsonl
    DATASET/build-<NNNN>/.scratch/         the run's working files (spilled pairs, shard slices),
                                           removed before the switch

A run builds into a new ``build-*`` folder (prefix on gs://) beside the current one, with an
``owner.json`` saying which process is building it. Nothing a reader follows changes until the
build is complete; then the root manifest, whose paths point into the new build, is written in one
step (a rename locally, one object upload on gs://). A reader therefore sees the old dataset or
the new one, never a mix and never nothing. Only then are the old build's files removed.

A run killed before its switch leaves its build folder behind. The next run on the same output
removes such leftovers and says so, when their owner is gone: a finished build superseded by a
later switch (no ``owner.json``), or a build whose process on this machine no longer runs, or
one from another machine untouched for ``STALE_HOURS``. Nothing else in the folder is touched.
One run at a time per output: two runs started together would pick the same build number.
"""

from __future__ import annotations

import json
import os
import socket
import time

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.errors import InputError

BUILD_PREFIX = "build-"
OWNER = "owner.json"
SCRATCH = ".scratch"
STALE_HOURS = 48.0


def _norm(uri: str) -> str:
    return uri.rstrip("/") if storage.is_gcs(uri) else os.path.abspath(uri)


def _top_entries(output: str) -> dict[str, list[str]]:
    """{first path component under ``output``: its files}."""
    root = _norm(output)
    found: dict[str, list[str]] = {}
    for uri in storage.list_files(output):
        found.setdefault(uri[len(root) + 1:].split("/", 1)[0], []).append(uri)
    return found


def current(output: str) -> dict | None:
    """The dataset manifest at ``output``, or None when there is none (or it is not a dataset's)."""
    uri = storage.join(output, manifest_lib.FILENAME)
    if not storage.exists(uri):
        return None
    try:
        return manifest_lib.read(output, kind="dataset")
    except manifest_lib.ManifestError:
        return None


def _referenced(m: dict | None) -> set[str]:
    """The top-level entries the manifest's files live in."""
    if not m:
        return set()
    paths = [s["path"] for s in m.get("shards", [])] + ([m["rejects_file"]] if m.get("rejects_file") else [])
    return {p.split("/", 1)[0] for p in paths}


def _owner_gone(output: str, build: str) -> str | None:
    """Why ``build``'s owner is gone (a sentence), or None while it may still be running."""
    uri = storage.join(output, build, OWNER)
    if not storage.exists(uri):
        return "superseded by a later build"
    try:
        owner = json.loads(storage.read_text(uri))
        host, pid, started = owner["host"], int(owner["pid"]), float(owner["started"])
    except (ValueError, KeyError, TypeError, OSError):
        return "its owner.json is unreadable"
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"process {pid} on this machine is gone"
        except PermissionError:
            return None  # someone else's live process
        return None
    hours = (time.time() - started) / 3600
    return f"started {hours:.0f} h ago on {host}" if hours > STALE_HOURS else None


def prepare(output: str, roots: list[str], overwrite: bool, say=print) -> dict | None:
    """Check ``output`` and clear what a new build may clear; returns the manifest it will replace.

    InputError when ``output`` overlaps an input, is a file, or holds a dataset (or anything else)
    and ``overwrite`` was not given. Leftover builds of killed runs are removed (and named).
    """
    o = _norm(output)
    for i in map(_norm, roots):
        if i == o or i.startswith(o + "/") or o.startswith(i + "/"):
            raise InputError(f"--input {i} and --output {output} overlap: write the dataset to a separate folder")
    storage.refuse_file(output, "--output")
    old = current(output)
    entries = _top_entries(output) if storage.is_dir(output) else {}
    keep = _referenced(old) | ({manifest_lib.FILENAME} if old else set())
    builds = [e for e in entries if e.startswith(BUILD_PREFIX) and e not in keep]
    other = [e for e in entries if e not in keep and e not in builds]
    if (old or other) and not overwrite:
        what = "a dataset" if old else f"{len(other)} other file(s) or folder(s)"
        raise InputError(f"output {output} already holds {what}: choose a new folder or pass --overwrite")
    if other and not old:  # not a dataset: nothing a reader could be reading
        for name in other:
            for uri in entries[name]:
                storage.remove(uri)
    for build in builds:
        why = _owner_gone(output, build)
        if why:
            storage.remove_tree(storage.join(output, build))
            say(f"senclr preprocess: removed {storage.join(output, build)}, a leftover build ({why})")
    return old


def _number(name: str) -> int:
    tail = name[len(BUILD_PREFIX):]
    return int(tail) if name.startswith(BUILD_PREFIX) and tail.isdigit() else 0


def start(output: str) -> str:
    """A new build folder under ``output`` with its owner.json; returns the build's name. Builds
    are numbered, one more than any there, so the same input gives the same bytes in a new folder."""
    taken = _top_entries(output) if storage.is_dir(output) else {}
    name = f"{BUILD_PREFIX}{max(map(_number, taken), default=0) + 1:04d}"
    stage = storage.join(output, name)
    storage.makedirs(stage)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    storage.write_text(storage.join(stage, OWNER), json.dumps(owner) + "\n")
    return name


def switch(output: str, build: str, old: dict | None) -> dict:
    """Make ``build`` the dataset: its manifest, paths prefixed, written at the root in one step;
    then the old build's files go. Returns the new manifest."""
    stage = storage.join(output, build)
    m = manifest_lib.read(stage, kind="dataset")
    for s in m["shards"]:
        s["path"] = f"{build}/{s['path']}"
    if m.get("rejects_file"):
        m["rejects_file"] = f"{build}/{m['rejects_file']}"
    storage.remove(storage.join(stage, manifest_lib.FILENAME))
    storage.remove(storage.join(stage, OWNER))
    manifest_lib.write(output, m)  # the switch
    for name in _referenced(old) - {build}:
        uri = storage.join(output, name)
        if name.startswith(BUILD_PREFIX):
            storage.remove_tree(uri)
        else:  # a dataset from before builds: its shards and rejects at the root
            storage.remove(uri)
    return m
