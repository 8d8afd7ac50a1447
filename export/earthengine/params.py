"""The common flags of ``senclr export plan|run``, checked once before anything talks to Earth Engine.

Every user-fixable problem is an InputError naming the flag and the fix, so bad input exits 2 and
starts no work. The credentials path is checked to exist, never opened here, and never recorded.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, fields
from datetime import date
from urllib.parse import urlparse

import shapely

from senclr import manifest as manifest_lib
from senclr.errors import InputError
from senclr.label_bands import CLASS_MAPS, EE_FIELDS, EMBEDDING

from .limits import check_patch_size
from .region import check_size, parse_region

S1_GRD_START = date(2014, 10, 3)  # first Sentinel-1 GRD scenes in COPERNICUS/S1_GRD
MAX_DT_DAYS = 30  # beyond this the two views show different seasons (SSL4EO-S12's weakness)
HIGHVOLUME_MAX_CONCURRENT = 40  # Earth Engine's documented concurrent-request quota
BATCH_MAX_QUEUED = 3000  # Earth Engine's limit on queued export tasks per user
S2_LEVELS = ("l1c", "l2a")
MIN_SCALE_M, MAX_SCALE_M = 1.0, 1000.0  # finer than S2's 10 m only oversamples; coarser loses the scene
# What defines the plan: a rerun with these equal resumes; execution settings (concurrency,
# endpoint, project, credentials, --force) may change between runs.
PLAN_FIELDS = ("region", "start", "end", "max_dt_days", "s2_level", "s2_max_cloud", "patch_size", "scale",
               "patches", "seed", "mode")
MODES = ("batch", "highvolume")


@dataclass(frozen=True)
class ExportParams:
    """Validated arguments of an export; ``region`` is a lon/lat shapely geometry."""

    region: object
    region_text: str
    region_km2: float
    start: date
    end: date  # exclusive, as ee.ImageCollection.filterDate reads it
    out: str
    max_dt_days: float = 3.0
    s2_level: str = "l1c"
    s2_max_cloud: float = 30.0
    min_clear: float = 0.8
    cs_threshold: float = 0.6
    patch_size: int = 128
    scale: float = 10.0
    patches: int = 1000
    seed: int = 0
    project: str | None = None
    max_concurrent: int = 20
    mode: str = "batch"
    ee_api_url: str | None = None
    ee_credentials: str = "default"
    force: bool = False
    workload_tag: str = "senclr-export"
    labels: tuple[str, ...] = ()  # label and feature fields added to each pair (senclr.label_bands)

    @property
    def max_dt_hours(self) -> float:
        return self.max_dt_days * 24.0

    def to_json(self) -> dict:
        """JSON-safe parameters for plans, ledgers and manifests: never the credentials."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["region"] = json.loads(shapely.to_geojson(self.region))
        d["region_bounds"] = list(self.region.bounds)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        d["labels"] = list(self.labels)
        return manifest_lib.scrub(d)  # drops ee_credentials (a key path says where a secret lives)

    def plan_identity(self) -> dict:
        """The arguments that decide which pairs are planned (see PLAN_FIELDS)."""
        d = self.to_json()
        # labels only when asked for, so ledgers written before they existed still resume
        return {k: d[k] for k in PLAN_FIELDS} | ({"labels": d["labels"]} if self.labels else {})


def _number(name: str, value, kind=float):
    if isinstance(value, bool) or value is None:
        raise InputError(f"--{name} must be a number, got {value!r}")
    try:
        num = kind(value)
    except (TypeError, ValueError):
        raise InputError(f"--{name} must be {'a whole number' if kind is int else 'a number'}, got {value!r}") from None
    if kind is int and isinstance(value, float) and value != num:
        raise InputError(f"--{name} must be a whole number, got {value!r}")
    if not math.isfinite(num):
        raise InputError(f"--{name} must be a finite number, got {value!r}")
    return num


def _in_range(name: str, value, lo, hi, kind=float, lo_open: bool = False):
    num = _number(name, value, kind)
    if (num <= lo if lo_open else num < lo) or (hi is not None and num > hi):
        low = f"> {lo}" if lo_open else f">= {lo}"
        raise InputError(f"--{name} must be {low}{f' and <= {hi}' if hi is not None else ''}, got {value!r}")
    return num


def _date(name: str, value) -> date:
    if isinstance(value, date):
        return value if type(value) is date else value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"--{name} {value!r} is not an ISO date: write YYYY-MM-DD, e.g. 2021-06-01") from None


def check_dates(start, end, today: date | None = None) -> tuple[date, date]:
    """(start, end) inside the Sentinel-1 GRD record and not in the future."""
    start, end = _date("start", start), _date("end", end)
    today = today or date.today()
    if end <= start:
        raise InputError(f"--end {end} is not after --start {start}: the end date is exclusive, "
                         "so give at least one day, e.g. --start 2021-06-01 --end 2021-07-01")
    if start < S1_GRD_START:
        raise InputError(f"--start {start} is before Sentinel-1 GRD data exists (from {S1_GRD_START}): "
                         f"start on or after {S1_GRD_START}")
    if end > today:
        raise InputError(f"--end {end} is in the future (today is {today}): end on or before {today}")
    return start, end


def _choice(name: str, value, options) -> str:
    text = str(value).strip().lower()
    if text not in options:
        raise InputError(f"--{name} must be one of {', '.join(options)}, got {value!r}")
    return text


def _patch_size(value) -> int:
    size = _in_range("patch-size", value, 16, 1024, int)
    if size % 2:
        raise InputError(f"--patch-size must be an even number of pixels (16..1024, e.g. 128), got {value!r}")
    return size


def _labels(labels, embedding) -> tuple[str, ...]:
    """--labels (names, comma-separated or repeated) and --embedding as fields in a fixed order."""
    asked = {t.strip().lower() for item in (labels or ()) for t in str(item).split(",") if t.strip()}
    unknown = sorted(asked - set(CLASS_MAPS))
    if unknown:
        raise InputError(f"--labels {', '.join(unknown)}: not a label senclr exports; choose from "
                         f"{', '.join(CLASS_MAPS)} (e.g. --labels worldcover,dynamicworld)")
    return tuple(n for n in EE_FIELDS if n in asked or (n == EMBEDDING and embedding))


def _out(out, mode: str) -> str:
    if out is None or not str(out).strip():
        raise InputError("--out is required: a gs://bucket/prefix (batch or highvolume) or a local folder "
                         "(highvolume only)")
    out = str(out).strip()
    if mode == "batch" and not out.startswith("gs://"):
        raise InputError(f"--out {out!r} is not gs://...: batch mode writes with Earth Engine export tasks, "
                         "which can only write to Cloud Storage; give gs://bucket/prefix or use --mode highvolume")
    if out.startswith("gs://") and not out[len("gs://"):].split("/")[0]:
        raise InputError(f"--out {out!r} names no bucket: write gs://bucket/prefix")
    return out


def _max_concurrent(value, mode: str, force: bool) -> int:
    n = _in_range("max-concurrent", value, 1, None, int)
    if mode == "highvolume" and n > HIGHVOLUME_MAX_CONCURRENT and not force:
        raise InputError(f"--max-concurrent {n} exceeds the {HIGHVOLUME_MAX_CONCURRENT} concurrent requests "
                         "Earth Engine documents for high-volume use: lower it, or pass --force if your "
                         "project's quota was raised")
    if mode == "batch" and n > BATCH_MAX_QUEUED:
        raise InputError(f"--max-concurrent {n} exceeds the {BATCH_MAX_QUEUED} export tasks Earth Engine "
                         "lets one account queue: lower it")
    return n


def _url(value) -> str | None:
    if value is None or not str(value).strip():
        return None
    parsed = urlparse(str(value).strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--ee-api-url {value!r} is not an http(s) URL: e.g. "
                         "https://earthengine-highvolume.googleapis.com or http://127.0.0.1:8080")
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        # the URL is recorded in plans and manifests: it must not carry a password or a token
        raise InputError("--ee-api-url must be a plain endpoint without user:password@, ?query or #fragment; "
                         "pass credentials with --ee-credentials")
    return str(value).strip().rstrip("/")


def _credentials(value) -> str:
    text = "default" if value is None else str(value).strip()
    if text.lower() in ("default", "none"):
        return text.lower()
    if not os.path.exists(text):
        raise InputError(f"--ee-credentials {text!r}: no such file. Give a service-account key file, 'default' "
                         "(after `earthengine authenticate` or `gcloud auth application-default login`), or "
                         "'none' (only for a local fake server)")
    if not os.path.isfile(text):
        raise InputError(f"--ee-credentials {text!r} is not a file: give the path of a service-account JSON key")
    return text


WORKLOAD_TAG = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


def _workload_tag(value) -> str:
    text = "senclr-export" if value is None else str(value).strip()
    if not WORKLOAD_TAG.fullmatch(text):
        raise InputError(f"--workload-tag {value!r}: 1-63 characters, letters and digits at both ends, "
                         "letters, digits, '-', '_' or '.' between (e.g. senclr-po-valley)")
    return text


def _project(value) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if any(c.isspace() for c in text) or "/" in text:
        raise InputError(f"--project {value!r} is not a Google Cloud project id (e.g. my-ee-project): "
                         "no spaces or slashes")
    return text


def build_params(*, region, start, end, out, today: date | None = None, max_dt_days=3, s2_level="l1c",
                 s2_max_cloud=30, min_clear=0.8, cs_threshold=0.6, patch_size=128, scale=10, patches=1000,
                 seed=0, project=None, max_concurrent=20, mode="batch", ee_api_url=None,
                 ee_credentials="default", force=False, workload_tag="senclr-export", labels=(),
                 embedding=False) -> ExportParams:
    """ExportParams from raw flag values, or the first InputError. ``today`` is injectable for tests."""
    force = bool(force)
    mode = _choice("mode", mode, MODES)
    s, e = check_dates(start, end, today)
    geom = parse_region(region)
    level, size = _choice("s2-collection", s2_level, S2_LEVELS), _patch_size(patch_size)
    fields_ = _labels(labels, embedding)
    check_patch_size(size, level, fields_)  # Earth Engine would refuse every request (HTTP 400, not retried)
    return ExportParams(
        region=geom, region_text=str(region).strip(), region_km2=round(check_size(geom, force), 3),
        start=s, end=e, out=_out(out, mode),
        max_dt_days=_in_range("max-dt", max_dt_days, 0, MAX_DT_DAYS, lo_open=True),
        s2_level=level,
        s2_max_cloud=_in_range("s2-max-cloud", s2_max_cloud, 0, 100),
        min_clear=_in_range("min-clear", min_clear, 0, 1), cs_threshold=_in_range("cs-threshold", cs_threshold, 0, 1),
        patch_size=size, scale=_in_range("scale", scale, MIN_SCALE_M, MAX_SCALE_M),
        patches=_in_range("patches", patches, 1, None, int), seed=_in_range("seed", seed, 0, None, int),
        project=_project(project), max_concurrent=_max_concurrent(max_concurrent, mode, force), mode=mode,
        ee_api_url=_url(ee_api_url), ee_credentials=_credentials(ee_credentials), force=force,
        workload_tag=_workload_tag(workload_tag), labels=fields_,
    )


def connection_params(project=None, ee_api_url=None, ee_credentials="default") -> dict:
    """Checked ``session.connect`` arguments for commands that only talk to Earth Engine."""
    return {"project": _project(project), "credentials": _credentials(ee_credentials), "api_url": _url(ee_api_url)}
