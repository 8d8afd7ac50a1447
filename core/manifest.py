"""The manifest: a JSON file beside every raw archive and dataset that says what is in it.

Written last, so its presence marks a finished output. ``validate`` names every problem with the
path of the offending field, e.g. ``counts.read: 10 != kept 7 + rejected 2``.
"""

from __future__ import annotations

import json
import re

from senclr import __version__, storage
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.errors import InputError

FILENAME = "manifest.json"
SCHEMA_VERSION = 1
KINDS = ("raw", "dataset")
_SECRET = re.compile(r"(credential|token|secret|passw|private|api_?key|key_?file|access_?key|connection_?string)", re.I)


class ManifestError(InputError):
    """A manifest is missing, unreadable or inconsistent."""


def _scrub_flags(flags: list) -> list:
    """['--k', 'v', '--k2=v2'] without any flag whose name looks like it holds a secret."""
    out, skip = [], False
    for i, f in enumerate(flags):
        if skip:
            skip = False
            continue
        name = str(f).split("=", 1)[0]
        if str(f).startswith("-") and _SECRET.search(name):
            nxt = flags[i + 1] if i + 1 < len(flags) else None
            skip = "=" not in str(f) and nxt is not None and not str(nxt).startswith("-")
            continue
        out.append(f)
    return out


def scrub(params: dict) -> dict:
    """Command parameters fit to store: anything that could hold a secret is left out, including
    secret-looking flags inside pass-through flag lists (e.g. Beam's)."""
    return {
        k: _scrub_flags(v) if isinstance(v, list) else v
        for k, v in params.items()
        if not _SECRET.search(k)
    }


def new(kind: str, command: str, parameters: dict, **fields) -> dict:
    m = {
        "schema_version": SCHEMA_VERSION,
        "senclr_version": __version__,
        "kind": kind,
        "command": command,
        "parameters": scrub(parameters),
    }
    m.update(fields)
    return m


def path(folder: str) -> str:
    return storage.join(folder, FILENAME)


def write(folder: str, manifest: dict) -> None:
    problems = problems_of(manifest)
    if problems:
        raise ManifestError("refusing to write an invalid manifest: " + "; ".join(problems))
    storage.write_text(path(folder), json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read(folder: str, kind: str | None = None) -> dict:
    """Load and validate a manifest, or raise ManifestError saying what is wrong."""
    uri = path(folder)
    if not storage.exists(uri):
        raise ManifestError(f"{uri} not found: {folder} is not a finished senclr output (it has no manifest)")
    try:
        manifest = json.loads(storage.read_text(uri))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{uri} is not valid JSON ({e}); rerun the command that wrote it") from None
    except OSError as e:
        raise ManifestError(f"{uri} cannot be read ({e.strerror or e}); rerun the command that wrote it") from None
    problems = problems_of(manifest, kind)
    if problems:
        raise ManifestError(f"{uri} is invalid: " + "; ".join(problems))
    return manifest


def _typed(m: dict, key: str, typ, problems: list, where: str = "") -> object:
    name = f"{where}{key}"
    if key not in m:
        problems.append(f"{name}: missing")
        return None
    if not isinstance(m[key], typ) or isinstance(m[key], bool) and typ is not bool:
        problems.append(f"{name}: expected {getattr(typ, '__name__', typ)}, got {type(m[key]).__name__}")
        return None
    return m[key]


def problems_of(m, kind: str | None = None) -> list[str]:
    """Every inconsistency in a manifest, as 'field: what is wrong'. Empty when valid."""
    if not isinstance(m, dict):
        return [f"top level: expected a JSON object, got {type(m).__name__}"]
    p: list[str] = []
    version = _typed(m, "schema_version", int, p)
    if version is not None and version != SCHEMA_VERSION:
        p.append(f"schema_version: {version} is not supported (this senclr reads {SCHEMA_VERSION})")
    k = _typed(m, "kind", str, p)
    if k is not None and k not in KINDS:
        p.append(f"kind: {k!r} is not one of {KINDS}")
    if kind and k and k != kind:
        p.append(f"kind: expected a {kind!r} manifest, got {k!r}")
    _typed(m, "parameters", dict, p)
    bands = _typed(m, "bands", dict, p)
    if bands is not None:
        level = bands.get("s2_level", "l1c")
        if level not in S2_BANDS:
            p.append(f"bands.s2_level: {level!r} is not one of {sorted(S2_BANDS)}")
        known = {"s1": S1_BANDS, "s2": S2_BANDS.get(level, ())}
        for sensor in ("s1", "s2"):
            b = _typed(bands, sensor, list, p, "bands.")
            if b is not None and not b:
                p.append(f"bands.{sensor}: empty")
            elif b is not None and not set(b) <= set(known[sensor]):
                p.append(f"bands.{sensor}: {sorted(set(b) - set(known[sensor]))} are not {sensor.upper()} bands (level {level})")
    counts = _typed(m, "counts", dict, p)
    if counts is not None:
        read_n = _typed(counts, "read", int, p, "counts.")
        kept = _typed(counts, "kept", int, p, "counts.")
        rejected = _typed(counts, "rejected", dict, p, "counts.")
        if None not in (read_n, kept, rejected):
            bad = [r for r, n in rejected.items() if not isinstance(n, int) or n < 0]
            if bad:
                p.append(f"counts.rejected: non-count values for {bad}")
            elif read_n != kept + sum(rejected.values()):
                p.append(f"counts.read: {read_n} != kept {kept} + rejected {sum(rejected.values())}")
    if k == "dataset":
        p += _dataset_problems(m, counts.get("kept") if isinstance(counts, dict) else None)
    return p


def _dataset_problems(m: dict, kept) -> list[str]:
    p: list[str] = []
    stats = _typed(m, "statistics", dict, p)
    if stats is not None and isinstance(m.get("bands"), dict):
        for b in [*m["bands"].get("s1", []), *m["bands"].get("s2", [])]:
            s = stats.get(b)
            if not isinstance(s, dict) or not all(isinstance(s.get(x), (int, float)) for x in ("mean", "std", "p1", "p99")):
                p.append(f"statistics.{b}: missing or without mean/std/p1/p99")
    splits = _typed(m, "splits", dict, p)
    shards = _typed(m, "shards", list, p)
    if shards is not None:
        for i, s in enumerate(shards):
            if not isinstance(s, dict) or not all(x in s for x in ("path", "split", "records", "sha256")):
                p.append(f"shards[{i}]: needs path, split, records and sha256")
        if not p and splits is not None:
            for split, n in splits.items():
                in_shards = sum(s["records"] for s in shards if s["split"] == split)
                if in_shards != n:
                    p.append(f"splits.{split}: {n} records, but its shards hold {in_shards}")
            if isinstance(kept, int) and sum(splits.values()) != kept:
                p.append(f"splits: {sum(splits.values())} records in all, but counts.kept is {kept}")
    return p
