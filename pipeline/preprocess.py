"""``senclr preprocess``: raw pairs -> filtered, split, sharded TFRecord dataset + manifest.

Raw pairs come from any format ``sources`` detects (raw archive, batch export, GeoTIFF chips).
The pipeline is plain Apache Beam: DirectRunner by default, any runner (Dataflow included) through
the usual Beam flags passed after ``--``. Every format takes ``shardfirst``: pairs are reduced to
small keys (raw archives by their metadata files, batch-export shards and chips by spilling their
checked pairs into the build folder), grouped into shards, and each shard read in one step, so
peak memory does not grow with the input.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict

import apache_beam as beam

from senclr import manifest as manifest_lib
from senclr import storage
from senclr.bands import S1_BANDS, S2_BANDS
from senclr.beam_flags import check_beam_flags, pipeline as beam_pipeline, worker_processes, worker_requirements
from senclr.beam_lists import listed
from senclr.errors import InputError
from senclr.pipeline import filters, publish, shardfirst, slices, sources, transforms
from senclr.pipeline.split import parse_fractions
from senclr.schema import SCHEMA_VERSION, SPLITS

DEFAULT_MIN_CLEAR, DEFAULT_CS_THRESHOLD = 0.8, 0.6
MULTIPROCESS_FROM_PAIRS = 5000
# Units embedded in the job graph (in chunks) before they go through a file instead: Beam pickles
# and bz2-compresses the graph twice before a worker starts, ~65 us of serial start-up a unit
# (0.65 s at 10k), while the file costs nothing measurable at 1000 (docs/performance.md).
CREATE_LIMIT = 1_000
UNITS_FILE = ".units.jsonl"
NORMALISATION = ("clip to [p1, p99] per band, then (x - mean) / std in float32 (std 0 counts as 1); an S2 value 0 "
                 "(no data) becomes 0.0; statistics over all kept patches, S2 zeros excluded")
WORKER_NEEDS = ("rasterio",)  # beyond senclr's core and Beam: GeoTIFF raw archives (batch export)
# The general path groups whole pairs (ReadUnits -> FilterPairs -> WriteDataset): memory grows with
# the input. Same bytes as the shard-first path; kept as the reference that path is tested against.
GENERAL_PATH = False

# Bytes per pixel of a stored record: S1 2 x float16, cs_cdf float16, S2 uint16 each, then labels.
_FIXED_BYTES_PER_PIXEL = 2 * 2 + 2
_LABEL_BYTES_PER_PIXEL = {"embedding": 64}  # 64 int8; every other label 1 byte


def shards_per_split(n_pairs: int, fractions: tuple, patch_size: int, n_s2: int, shard_mb: float,
                     labels: tuple = ("water", "landcover")) -> dict:
    """Shard counts that put about ``shard_mb`` MB in each file, estimated from the input size."""
    per_pixel = _FIXED_BYTES_PER_PIXEL + 2 * n_s2 + sum(_LABEL_BYTES_PER_PIXEL.get(n, 1) for n in labels)
    record_bytes = patch_size * patch_size * per_pixel + 200
    per_shard = max(1, int(shard_mb * 1e6 // record_bytes))
    return {name: max(1, math.ceil(n_pairs * f / per_shard)) for name, f in zip(SPLITS, fractions)}


def runner_args(beam_args: list[str], pairs: int) -> list[str]:
    """Beam flags to run with: the user's, or for a large input and no flags, the DirectRunner on
    one process per core (measured faster than in-process from about 5000 pairs on 2 cores, slower
    below: docs/performance.md)."""
    cores = os.cpu_count() or 1
    if beam_args or pairs < MULTIPROCESS_FROM_PAIRS or cores < 2:
        return beam_args
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"]


def _first_rejects(stage: str, n: int = 5) -> str:
    """A few lines of the rejects file, for the error that says nothing was usable (the staged
    dataset, rejects file included, is removed with it)."""
    lines = storage.read_text(storage.join(stage, transforms.REJECTS_FILE)).splitlines()
    more = f"\n  ... and {len(lines) - n} more" if len(lines) > n else ""
    return "\n".join(f"  {line}" for line in lines[:n]) + more


def _recorded(inputs: sources.Inputs, key: str, default: float) -> float:
    value = inputs.recorded(key)  # the Cloud Score+ policy an export recorded, if any
    return default if value is None else value


def _level(s2_bands: list[str]) -> str:
    return next((lvl for lvl, names in S2_BANDS.items() if list(names) == s2_bands), "l1c")


def preprocess(
    input: str,
    output: str,
    min_clear: float | None = None,
    cs_threshold: float | None = None,
    max_nodata: float = 0.05,
    split: str = "0.8,0.1,0.1",
    cell_deg: float = 0.25,
    shard_mb: float = 100.0,
    seed: int = 0,
    overwrite: bool = False,
    beam_args: list[str] | None = None,
    patch_size: int | None = None,
) -> dict:
    """Run the pipeline to completion and return the dataset manifest.

    Nothing is left behind on failure. The dataset is built in a new build folder under ``output``
    and becomes the dataset when the root manifest is written (``publish``): an ``--overwrite``
    rerun that fails or is killed leaves the old dataset whole and readable, local or gs://.
    """
    beam_args = list(beam_args or [])
    check_beam_flags(beam_args)
    for name, value in (("--min-clear", min_clear), ("--cs-threshold", cs_threshold), ("--max-nodata", max_nodata)):
        if value is not None and not 0 <= value <= 1:
            raise InputError(f"{name} must be between 0 and 1, got {value}")
    if cell_deg <= 0 or shard_mb <= 0:
        raise InputError("--cell-deg and --shard-mb must be positive")
    try:
        fractions = parse_fractions(split)
    except ValueError as e:
        raise InputError(str(e)) from None
    inputs = sources.resolve(input, patch_size)
    min_clear = min_clear if min_clear is not None else _recorded(inputs, "min_clear", DEFAULT_MIN_CLEAR)
    cs_threshold = cs_threshold if cs_threshold is not None else _recorded(inputs, "cs_threshold", DEFAULT_CS_THRESHOLD)
    old = publish.prepare(output, inputs.roots, overwrite)
    fresh = not storage.is_dir(output)

    s1_bands, s2_bands = list(S1_BANDS), list(inputs.s2_bands)
    patch_size = inputs.patch_size
    cfg = filters.FilterConfig(tuple(s2_bands), patch_size, min_clear, cs_threshold, max_nodata)
    num_shards = shards_per_split(inputs.expected_pairs, fractions, patch_size or 64, len(s2_bands), shard_mb,
                                  inputs.labels)
    params = dict(input=input, output=output, split=split, cell_deg=cell_deg, shard_mb=shard_mb, seed=seed, beam_args=beam_args, **asdict(cfg))
    params["s2_bands"] = list(params["s2_bands"])
    base = manifest_lib.new(
        "dataset", "preprocess", params,
        record_schema_version=SCHEMA_VERSION, seed=seed, sources=[input], inputs=inputs.summary(), patch_size=patch_size,
        bands={"s1": s1_bands, "s2": s2_bands, "s2_level": _level(s2_bands)}, labels=list(inputs.labels),
        filters={"min_clear": min_clear, "cs_threshold": cs_threshold, "max_nodata": max_nodata},
        split_policy={"cell_deg": cell_deg, "fractions": dict(zip(SPLITS, fractions)), "seed": seed},
        normalisation=NORMALISATION,
        counts={"read": 0, "kept": 0, "rejected": {}},
    )
    build = publish.start(output)
    stage = storage.join(output, build)
    run_args = runner_args(beam_args, inputs.expected_pairs)
    processes = worker_processes(run_args)  # None: Dataflow left to autoscale
    workers = processes or 1
    k = slices.per_shard(workers, num_shards, fractions)
    try:
        with (worker_requirements(run_args, WORKER_NEEDS) as run_args,
              beam_pipeline(run_args) as p):
            chunks = sources.chunks(inputs.units, inputs.expected_pairs, workers)
            limit = CREATE_LIMIT // len(chunks[0])  # chunks, not units, travel
            units = (p | "ListUnits" >> listed(chunks, storage.join(stage, UNITS_FILE), limit,
                                               sources.chunk_to_json, sources.chunk_from_json, processes)
                     | "Units" >> beam.FlatMap(lambda chunk: chunk))
            placing = (cell_deg, fractions, seed, num_shards)
            if not GENERAL_PATH:  # no array crosses a GroupByKey
                shards, stats, rejected, read = units | "ShardFirst" >> shardfirst.ShardFirst(
                    stage, cfg, s1_bands, s2_bands, placing, patch_size, inputs.labels, k)
            else:  # group whole pairs (dedupe) and records (shards)
                pairs, unreadable = units | "Read" >> transforms.ReadUnits(patch_size, inputs.labels)
                read = transforms.count_read(pairs, unreadable)
                kept, dropped = pairs | "Filter" >> transforms.FilterPairs(cfg)
                rejected = (unreadable, dropped) | "Rejected" >> beam.Flatten()
                stats = transforms.band_stats(kept, s1_bands, s2_bands)
                shards = kept | "Write" >> transforms.WriteDataset(stage, *placing)
            _ = (shards, stats, rejected, read) | "Finish" >> transforms.WriteManifest(stage, base)
        m = manifest_lib.read(stage, kind="dataset")
        if m["counts"]["kept"] == 0:
            raise InputError(f"all {m['counts']['read']} pairs were rejected ({m['counts']['rejected']}); loosen "
                             f"--min-clear or check the input. First casualties:\n{_first_rejects(stage)}")
    except BaseException:
        storage.remove_tree(output if fresh else stage)  # a new output folder goes with its build
        raise
    storage.remove(storage.join(stage, UNITS_FILE))
    storage.remove_tree(storage.join(stage, publish.SCRATCH))
    return publish.switch(output, build, old)
