"""``senclr export plan|run|status|cancel``: Earth Engine exports from region and date arguments.

Arguments are validated before any request, so bad input exits 2 having started nothing. ``ee``
and Beam load only inside the commands.
"""

from __future__ import annotations

import json

import click

from senclr import storage

_COMMON = [
    click.option("--region", required=True, help="W,S,E,N in degrees, or a GeoJSON file (Polygon, MultiPolygon, Feature, FeatureCollection)."),
    click.option("--start", required=True, help="First day (ISO date, e.g. 2021-06-01)."),
    click.option("--end", required=True, help="Day after the last one (exclusive, as Earth Engine's filterDate)."),
    click.option("--out", required=True, help="Output prefix: gs://BUCKET/PATH (batch mode needs gs://) or a folder."),
    click.option("--max-dt", "max_dt_days", default=3.0, show_default=True, type=float, help="Largest S1-S2 gap in days."),
    click.option("--s2-collection", "s2_level", default="l1c", show_default=True, type=click.Choice(["l1c", "l2a"], case_sensitive=False),
                 help="Sentinel-2 L1C (COPERNICUS/S2_HARMONIZED, 13 bands) or L2A (COPERNICUS/S2_SR_HARMONIZED, 12)."),
    click.option("--s2-max-cloud", default=30.0, show_default=True, type=float, help="Largest scene CLOUDY_PIXEL_PERCENTAGE."),
    click.option("--min-clear", default=0.8, show_default=True, type=float, help="Smallest share of Cloud Score+ clear pixels a patch should have (recorded for preprocessing)."),
    click.option("--cs-threshold", default=0.6, show_default=True, type=float, help="cs_cdf at or above which a pixel is clear."),
    click.option("--patch-size", default=128, show_default=True, type=int, help="Patch side in pixels (even, 16-964 for L1C, 16-992 for L2A; 520 with every label and --embedding)."),
    click.option("--scale", default=10.0, show_default=True, type=float, help="Pixel size in metres on the S2 tile's UTM grid."),
    click.option("--patches", default=1000, show_default=True, type=int, help="How many patch pairs to plan."),
    click.option("--seed", default=0, show_default=True, type=int, help="Seed of the patch locations (same seed, same plan)."),
    click.option("--max-concurrent", default=20, show_default=True, type=int, help="Most requests (high-volume) or tasks (batch) at once; high-volume at most 40 without --force."),
    click.option("--force", is_flag=True, help="Allow a region beyond the size limit or more than 40 concurrent requests."),
    click.option("--workload-tag", default="senclr-export", show_default=True,
                 help="Earth Engine workload tag on every request and task: the cost shows under it in the Cloud console."),
    click.option("--labels", multiple=True, metavar="NAMES",
                 help="Class maps to add on each patch grid: worldcover (ESA WorldCover v200), dynamicworld (Dynamic "
                      "World, mode over the pair's dates); comma-separated or repeated."),
    click.option("--embedding", is_flag=True,
                 help="Add the AlphaEarth annual Satellite Embedding of the S2 year (64 bands, stored as int8)."),
]
_EE = [
    click.option("--project", default=None, help="Cloud project registered for Earth Engine."),
    click.option("--ee-api-url", default=None, help="Earth Engine endpoint: standard, https://earthengine-highvolume.googleapis.com, or a local fake server."),
    click.option("--ee-credentials", default="default", show_default=True, help="'default' (earthengine authenticate / gcloud ADC), 'none' (local fake only) or a service-account KEY.json."),
]


def _apply(options, fn):
    for option in reversed(options):
        fn = option(fn)
    return fn


def common(fn):
    return _apply(_COMMON + _EE, fn)


def _params(mode: str, **kwargs):
    from .params import build_params

    return build_params(mode=mode, **kwargs)


_EECU_PER_PAIR = click.option(
    "--eecu-per-pair", default=None, type=click.FloatRange(min=0, min_open=True),
    help="Measured EECU-seconds a pair (from a small run's `status`, same patch size and bands) for the cost "
         "estimate, instead of senclr's assumed model.")


@click.command()
@common
@click.option("--mode", default="highvolume", show_default=True, type=click.Choice(["batch", "highvolume"]), help="Which run the plan is for.")
@_EECU_PER_PAIR
def plan(mode, eecu_per_pair, **kwargs):
    """Dry run: scenes, pairs, Δt distribution, requests or tasks, bytes, EECU-hours; writes OUT/plan.json and OUT/plan.html. Starts nothing."""
    params = _params(mode, **kwargs)
    from .cost import warning
    from .plan import make_plan, summary
    from .plan_map import write_map
    from .run import connect

    connect(params)
    result, s2, s1, pairings = make_plan(params, eecu_per_pair)
    storage.write_text(storage.join(params.out, "plan.json"), json.dumps(result, indent=1, sort_keys=True))
    write_map(storage.join(params.out, "plan.html"), params.region, pairings, s2, s1)
    click.echo(summary(result))
    click.echo(f"plan: {storage.join(params.out, 'plan.json')}  map: {storage.join(params.out, 'plan.html')}")
    if warning(result["cost"]):
        click.echo(warning(result["cost"]), err=True)


@click.command()
@common
@click.option("--mode", default="highvolume", show_default=True, type=click.Choice(["batch", "highvolume"]),
              help="highvolume: computePixels from Beam, straight to --out; batch: Earth Engine export tasks to gs://.")
@click.option("--poll-seconds", default=15.0, show_default=True, type=click.FloatRange(min=0), help="Batch mode: seconds between task status polls.")
@_EECU_PER_PAIR
@click.argument("beam_args", nargs=-1, type=click.UNPROCESSED)
def run(mode, poll_seconds, eecu_per_pair, beam_args, **kwargs):
    """Export the planned pairs into --out (resumable: rerun the same command after any stop).

    Beam flags for high-volume mode go after `--`, e.g. `-- --runner DataflowRunner ...`.
    """
    params = _params(mode, **kwargs)
    from senclr.beam_flags import check_beam_flags

    check_beam_flags(list(beam_args))
    if params.mode == "highvolume":
        from .highvolume import worker_processes

        worker_processes(list(beam_args))  # Dataflow without --max_num_workers: refused before any request
    from .run import ExportIncomplete
    from .run import run as run_export

    try:
        counts = run_export(params, list(beam_args), poll_seconds, eecu_per_pair)
    except ExportIncomplete as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"done {counts['done']} of {counts['planned']} pairs into {params.out}")


def connection(fn):
    return _apply([click.option("--out", required=True, help="The --out of an export run."), *_EE], fn)


def _connection(project, ee_api_url, ee_credentials) -> dict:
    from .params import connection_params

    return connection_params(project, ee_api_url, ee_credentials)


@click.command()
@connection
@click.option("--offline", is_flag=True, help="Read the ledger only; do not ask Earth Engine for task states.")
def status(out, project, ee_api_url, ee_credentials, offline):
    """Planned / done / failed / pending pairs of an export (ledger + Earth Engine), with failure reasons."""
    from .run import status as read_status

    s = read_status(out, None if offline else _connection(project, ee_api_url, ee_credentials))
    c = s["counts"]
    click.echo(f"{s['mode']} export at {out}: planned {c['planned']}, done {c['done']}, failed {c['failed']}, pending {c['pending']}")
    if s["tasks"]:
        click.echo("tasks: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(s["tasks"].items())))
        click.echo(f"EECU used by the tasks, as Earth Engine reports it: {s['eecu_seconds'] / 3600:.3f} EECU-hours")
        if c["done"] and s["eecu_seconds"]:  # the calibration the cost estimate asks for
            per = s["eecu_seconds"] / c["done"]
            click.echo(f"  {per:.3g} EECU-seconds a pair done: pass --eecu-per-pair {per:.3g} to `plan`/`run` at this "
                       "patch size for a measured cost estimate")
    for reason, n in sorted(s["failure_reasons"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {n} x {reason}")
    if s["dropped_when_planning"]:
        click.echo("left out when planning: " + ", ".join(f"{n} x {r}" for r, n in sorted(s["dropped_when_planning"].items())))


@click.command()
@connection
def cancel(out, project, ee_api_url, ee_credentials):
    """Cancel the export's queued and running Earth Engine tasks (high-volume runs have none to cancel)."""
    from .run import cancel as cancel_tasks

    names = cancel_tasks(out, _connection(project, ee_api_url, ee_credentials))
    click.echo(f"cancelled {len(names)} task(s)" + (f": {', '.join(names)}" if names else ""))


@click.command()
@click.option("--project", default=None, help="Cloud project registered for Earth Engine.")
@click.option("--ee-api-url", default=None, help="Earth Engine endpoint (the one the export will use).")
@click.option("--ee-credentials", default="default", show_default=True,
              help="'default', 'none' (local fake only) or a service-account KEY.json.")
@click.option("--out", default=None, help="gs://BUCKET/PREFIX for the batch check's tiny export task (written under "
                                          "PREFIX/_senclr_doctor/ and deleted); without it that check is skipped.")
@click.option("--batch-timeout", default=900.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait for the batch check's task before cancelling it.")
@click.option("--poll-seconds", default=10.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds between the batch check's task status polls.")
def doctor(project, ee_api_url, ee_credentials, out, batch_timeout, poll_seconds):
    """Live self-check before a large export: access, the patch grid's alignment and orientation
    through computePixels and through a tiny batch task (with --out), the request size limit.
    Prints PASS/FAIL/SKIP per check; exit 1 when any fails (SKIP is not a failure)."""
    from .doctor import check_out, run_checks, table

    connection = _connection(project, ee_api_url, ee_credentials)
    checks = run_checks(connection["project"], connection["credentials"], connection["api_url"], check_out(out),
                        batch_timeout, poll_seconds, say=lambda line: click.echo(line, err=True))
    click.echo(table(checks))
    if any(c.ok is False for c in checks):
        raise SystemExit(1)


COMMANDS = (plan, run, status, cancel, doctor)
