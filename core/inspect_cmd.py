"""``senclr inspect``: what a dataset or raw archive holds, using only the core readers (no TF)."""

from __future__ import annotations

import itertools

import click
import numpy as np

from senclr import manifest as manifest_lib
from senclr import raw_archive, raw_ee_table, storage
from senclr.dataset import iter_records
from senclr.pair import PatchPair
from senclr.schema import SPLITS


def _summary(m: dict) -> list[str]:
    c = m["counts"]
    lines = [
        f"kind: {m['kind']} (schema {m['schema_version']}, senclr {m.get('senclr_version')}, command: {m.get('command')})",
        f"bands: S1 {m['bands']['s1']}; S2 ({m['bands'].get('s2_level', '?')}) {m['bands']['s2']}; labels {m.get('labels', [])}",
        f"counts: read {c['read']}, kept {c['kept']}, rejected {c['rejected'] or 'none'}",
    ]
    if m["kind"] == "dataset":
        splits = ", ".join(f"{name} {m['splits'].get(name, 0)}" for name in SPLITS)
        lines.append(f"splits: {splits} in {len(m['shards'])} shards")
        lines.append("statistics:  band      mean       std        p1       p99")
        for band in [*m["bands"]["s1"], *m["bands"]["s2"]]:
            s = m["statistics"][band]
            lines.append(f"             {band:<5} {s['mean']:>9.3f} {s['std']:>9.3f} {s['p1']:>9.3f} {s['p99']:>9.3f}")
    return lines


def _dataset_rows(path: str, n: int) -> list[str]:
    rows = ["pair_id           split  lon       lat      dt_h    VV_mean  water%  clear%"]
    for r in itertools.islice(iter_records(path), n):
        water = f"{np.mean(r['water'] == 1):6.1%}" if "water" in r else "     -"
        rows.append(
            f"{r['pair_id']}  {r['split']:<5}  {r['lon']:8.3f}  {r['lat']:7.3f}  {r['dt_hours']:6.1f}  "
            f"{r['s1'][..., 0].astype(np.float32).mean():7.2f}  {water}  {np.mean(r['cloud'] >= 0.6):6.1%}"
        )
    return rows


def _raw_pairs(path: str):
    """The archive's pairs: its pairs/ folder, or a batch export's table TFRecords."""
    for uri in raw_archive.list_pairs(path):
        yield raw_archive.read_pair(uri)
    if storage.exists(raw_ee_table.plan_uri(path)):
        plan = raw_ee_table.read_plan(raw_ee_table.plan_uri(path))
        for shard in raw_ee_table.list_shards(path):
            yield from (p for p in raw_ee_table.read_shard(shard, plan) if isinstance(p, PatchPair))


def _raw_rows(path: str, n: int) -> list[str]:
    rows = ["pair_id           lon       lat      dt_h    s1_orbit    shape"]
    for p in itertools.islice(_raw_pairs(path), n):
        rows.append(f"{p.pair_id}  {p.meta.lon:8.3f}  {p.meta.lat:7.3f}  {p.meta.dt_hours:6.1f}  {p.meta.s1_orbit:<10}  {p.shape}")
    return rows


@click.command()
@click.argument("path")
@click.option("--records", "-n", type=click.IntRange(min=0), default=5, show_default=True, help="How many records to show.")
def inspect(path, records):
    """Print the manifest summary of PATH (dataset or raw archive) and its first records."""
    m = manifest_lib.read(path)
    lines = _summary(m)
    if records:
        lines += [""] + (_dataset_rows(path, records) if m["kind"] == "dataset" else _raw_rows(path, records))
    click.echo("\n".join(lines))
