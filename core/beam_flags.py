"""Beam pipeline flags passed through a senclr command after ``--``, checked before anything runs.

Beam itself only logs flags it does not know and drops them, so a typo would silently run
something else (e.g. locally instead of on Dataflow). Beam is imported when a check runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from senclr.errors import InputError


def unknown_beam_flags(flags: list[str]) -> list[str]:
    """Flags no Beam PipelineOptions class knows (Beam itself would only log and drop them)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parsers = []
    PipelineOptions(flags).get_all_options(add_extra_args_fn=parsers.append)
    _, unknown = parsers[0].parse_known_args(flags)
    return unknown


def check_beam_flags(flags: list[str]) -> None:
    unknown = unknown_beam_flags(flags)
    if unknown:
        raise InputError(
            f"Beam does not know the pipeline flags {unknown}; known ones are those of "
            "apache_beam.options.pipeline_options, e.g. --runner, --project, --region, --temp_location, --direct_num_workers"
        )
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.runners.runner import create_runner

    runner = PipelineOptions(flags).view_as(StandardOptions).runner
    if runner:
        try:
            create_runner(runner)
        except ValueError as e:
            raise InputError(f"--runner {runner}: {e}") from None


DIRECT_RUNNERS = ("DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner", "FnApiRunner")
PRISM_FIRST = ("DirectRunner", "SwitchingDirectRunner")  # names that reach Beam's Prism-first switch


def pipeline(flags: list[str]):
    """A ``beam.Pipeline`` for ``flags``; Beam's DirectRunner pinned to its FnApiRunner.

    Since Beam 2.68 the DirectRunner first tries Prism, a Go runner it downloads from GitHub as the
    pipeline starts, and falls back to the FnApiRunner only where that fails (no network, as in
    CI). The same command would then run on different runners on different machines, the tested
    and measured one only offline, after a failed download each time (~0.3 s). Beam's advice for
    pipelines that rely on the FnApiRunner is to name it (apache/beam#34612); it is built here as
    the DirectRunner builds it, so that its worker processes get the pipeline options.
    ``--runner=PrismRunner`` still picks Prism."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    options = PipelineOptions(flags)
    if (options.view_as(StandardOptions).runner or "DirectRunner") not in PRISM_FIRST:
        return beam.Pipeline(options=options)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return beam.Pipeline(runner=fn_runner.FnApiRunner(provision_info=provision), options=options)


def worker_processes(flags: list[str]) -> int | None:
    """How many worker processes run bundles at once under these flags: the DirectRunner's from
    its mode (only multi_processing has more than one) and ``--direct_num_workers`` (0: one per
    core), other runners' from ``--max_num_workers`` or ``--num_workers``; None when the flags do
    not say (Dataflow autoscaling on its defaults)."""
    import os

    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, WorkerOptions

    opts = PipelineOptions(flags)
    if (opts.view_as(StandardOptions).runner or "DirectRunner") in DIRECT_RUNNERS:
        direct = opts.view_as(DirectOptions)
        if direct.direct_running_mode != "multi_processing":
            return 1
        return direct.direct_num_workers or os.cpu_count() or 1
    workers = opts.view_as(WorkerOptions)
    return workers.max_num_workers or workers.num_workers or None


@contextlib.contextmanager
def worker_requirements(flags: list[str], needs: tuple[str, ...]) -> Iterator[list[str]]:
    """``flags``, plus ``--requirements_file`` when remote workers will install senclr's sdist.

    ``--setup_file`` gives workers senclr's core only (an sdist installs no extras), so the
    libraries a stage's workers need beyond it and Beam (``needs``: rasterio for GeoTIFF archives,
    earthengine-api for computePixels) go in a requirements file pinned to the versions installed
    here, which are those of constraints.txt; whatever Beam's own container brings (apache-beam[gcp]
    and its dependencies) is left to it. Nothing is added for a DirectRunner, without
    ``--setup_file``, or when the user already gave ``--requirements_file`` or a container image.
    The file lives until the pipeline has been submitted (the ``with`` block).
    """
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions, WorkerOptions

    opts = PipelineOptions(flags)
    setup = opts.view_as(SetupOptions)
    local = (opts.view_as(StandardOptions).runner or "DirectRunner") in DIRECT_RUNNERS
    if local or not setup.setup_file or setup.requirements_file or opts.view_as(WorkerOptions).sdk_container_image:
        yield list(flags)
        return
    from senclr.extras import closure, pins

    lines = pins(needs, exclude=tuple(closure(["apache-beam"], ("gcp",))))
    with tempfile.TemporaryDirectory(prefix="senclr-workers-") as folder:
        path = os.path.join(folder, "requirements.txt")
        with open(path, "w") as f:
            f.write("# what senclr's Dataflow workers need beyond its sdist and Beam's container\n")
            f.write("".join(f"{line}\n" for line in lines))
        yield [*flags, "--requirements_file", path]
