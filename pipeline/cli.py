"""``senclr preprocess`` command."""

from __future__ import annotations

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--input", "input_", required=True, help="Raw archive, batch export, folder of GeoTIFF chips, an export's manifest.json, or a glob; local or gs://.")
@click.option("--output", required=True, help="Dataset folder or gs:// prefix to create.")
@click.option("--min-clear", type=float, default=None, help="Smallest share of clear S2 pixels a patch may have. Default: the policy the export recorded, else 0.8.")
@click.option("--cs-threshold", type=float, default=None, help="Cloud Score+ cs_cdf at or above which a pixel is clear. Default: as recorded by the export, else 0.6.")
@click.option("--max-nodata", type=float, default=0.05, show_default=True, help="Largest share of S2 no-data pixels a patch may have.")
@click.option("--split", default="0.8,0.1,0.1", show_default=True, help="train,val,test fractions (by place).")
@click.option("--cell-deg", type=float, default=0.25, show_default=True, help="Size in degrees of the cells that decide splits.")
@click.option("--shard-mb", type=float, default=100.0, show_default=True, help="Target size of one TFRecord shard.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the split assignment.")
@click.option("--patch-size", type=int, default=None, help="Cut GeoTIFF chips into squares of this many pixels (default: whole chips). Other inputs keep their exported size.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def preprocess(input_, output, beam_args, **kwargs):
    """Filter, split and shard raw pairs into a training dataset with Apache Beam.

    Beam flags go after `--`, e.g. `-- --runner DataflowRunner --project P --region R
    --temp_location gs://B/tmp` or `-- --direct_running_mode multi_processing --direct_num_workers 2`.
    """
    from senclr.pipeline.preprocess import preprocess as run

    m = run(input_, output, beam_args=list(beam_args), **kwargs)
    c = m["counts"]
    click.echo(f"read {c['read']}, kept {c['kept']}, rejected {sum(c['rejected'].values())} {c['rejected']}")
    click.echo(f"splits {m['splits']}; {len(m['shards'])} shards; manifest {output}/manifest.json")
