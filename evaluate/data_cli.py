"""``senclr data``: fetch the public benchmark datasets evaluation reads."""

from __future__ import annotations

import click

from senclr.evaluate import sen1floods11


@click.group()
def data():
    """Download benchmark datasets (Sen1Floods11)."""


@data.command()
@click.argument("dataset", type=click.Choice(["sen1floods11"]))
@click.option("--dest", required=True, help="Local folder for the copy (kept in the bucket's v1.1 layout).")
@click.option("--bucket", default=sen1floods11.BUCKET, show_default=True, help="Bucket to copy from (a mirror, or a test bucket).")
@click.option("--workers", default=8, show_default=True, type=int, help="Parallel downloads.")
def download(dataset, dest, bucket, workers):
    """Copy a dataset's labelled part with anonymous credentials; a rerun fetches only what is
    missing, partial or corrupt (size and CRC32C checked), and says what it did."""
    s = sen1floods11.download(dest, bucket=bucket, workers=workers)
    mb = s["fetched_bytes"] / 1e6
    click.echo(f"{dataset}: {s['files']} files in {dest}: {s['fetched']} fetched ({mb:.1f} MB), "
               f"{s['already_complete']} already complete, {len(s['failed'])} failed")
    for name, why in sorted(s["failed"].items()):
        click.echo(f"  failed: {name}: {why}", err=True)
    if s["failed"]:
        raise SystemExit(1)
