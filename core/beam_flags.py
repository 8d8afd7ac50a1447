"""Beam pipeline flags passed through a senclr command after ``--``, checked before anything runs.

Beam itself only logs flags it does not know and drops them, so a typo would silently run
something else (e.g. locally instead of on Dataflow). Beam is imported when a check runs.
"""

from __future__ import annotations

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
