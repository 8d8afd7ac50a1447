"""``senclr export``: commands that produce a raw archive of S1/S2 patch pairs.

Loaded lazily by the front door (``senclr.cli``), so nothing here may import Earth Engine at module
level: ``senclr export synthetic`` must work without it.
"""

from __future__ import annotations

import time

import click

from senclr.bands import S2_BANDS


@click.group()
def export():
    """Export S1/S2 patch pairs into a raw archive (pairs/*.npy + *.json, manifest.json last).

    `synthetic` needs no account: a procedural world rendered as radar, optical and Cloud Score+.
    """


@export.command()
@click.option("--out", required=True, help="Folder or gs:// prefix for the raw archive (new or empty).")
@click.option("--pairs", default=256, show_default=True, type=int, help="Number of pairs to write.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Same seed, byte-identical archive.")
@click.option("--patch-size", default=32, show_default=True, type=int, help="Patch side in 10 m pixels (even, 8-1024).")
@click.option("--s2-level", default="l1c", show_default=True, type=click.Choice(list(S2_BANDS), case_sensitive=False),
              help="l1c: 13 TOA bands incl. B10; l2a: 12 surface-reflectance bands.")
@click.option("--overwrite", is_flag=True, help="Replace the pairs/ and manifest.json already in --out.")
def synthetic(out, pairs, seed, patch_size, s2_level, overwrite):
    """Write synthetic S1/S2 pairs with water and land-cover labels (no Earth Engine needed)."""
    from senclr.export.synthetic.source import generate

    t0 = time.perf_counter()
    m = generate(out, pairs, seed, patch_size=patch_size, s2_level=s2_level, progress=True, overwrite=overwrite)
    s = m["summary"]
    click.echo(
        f"wrote {pairs} synthetic pairs ({patch_size}x{patch_size} px, S2 {m['bands']['s2_level'].upper()}, "
        f"seed {seed}) to {out} in {time.perf_counter() - t0:.1f} s: {s['pairs_with_water']} with water, "
        f"{s['pairs_clear_80']} at least 80% clear"
    )


# Earth Engine commands import `ee` and Beam inside their bodies, so `senclr export synthetic`
# and `senclr export --help` never load them.
from senclr.export.earthengine.commands import COMMANDS  # noqa: E402

for _command in COMMANDS:
    export.add_command(_command)
