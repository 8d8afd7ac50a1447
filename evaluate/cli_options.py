"""What the benchmark commands of ``senclr evaluate`` share: their flags, their parsing, the report at the end."""

from __future__ import annotations

import click

from senclr.errors import InputError
from senclr.evaluate.protocol import Budget


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({float(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise InputError(f"--fractions {text!r}: give comma-separated numbers in (0, 1], e.g. 0.01,0.1,1") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise InputError(f"--fractions {text!r}: every label fraction must lie in (0, 1], e.g. 0.01,0.1,1")
    return values


def parse_modes(text: str, allowed) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in modes if m not in allowed]
    if bad or not modes:
        raise InputError(f"--modes {text!r}: use one or more of {', '.join(allowed)}, comma-separated")
    return modes


def protocol_options(default_input: str = "s1"):
    """Decorator adding the flags every benchmark protocol shares (docs/evaluate.md)."""
    b = Budget()
    options = [
        click.option("--model", "models", multiple=True, required=True,
                     help="NAME=MODEL_DIR of a model to score (repeatable: e.g. multimodal=runs/mm simclr=runs/simclr). "
                          "The random-init and from-scratch baselines take the first model's architecture."),
        click.option("--out", required=True, help="Folder (or gs:// prefix) for runs/, report.md, results.json and plots."),
        click.option("--input", "inputs", type=click.Choice(["s1", "s2", "s1s2"]), default=default_input, show_default=True,
                     help="Bands the encoders read: S1, S2 or both (a multimodal model fuses its two encoders)."),
        click.option("--fractions", default="0.01,0.1,1", show_default=True,
                     help="Label fractions: seeded subsets of the training items, each in (0, 1]."),
        click.option("--seeds", default=3, show_default=True, type=int, help="Seeds per setting (0..N-1)."),
        click.option("--epochs", default=b.epochs, show_default=True, type=click.IntRange(min=1),
                     help="Budget: passes' worth of steps over the whole train split, whatever the fraction."),
        click.option("--batch-size", default=b.batch_size, show_default=True, type=click.IntRange(min=1)),
        click.option("--learning-rate", default=b.learning_rate, show_default=True,
                     type=click.FloatRange(min=0, min_open=True), help="Peak AdamW learning rate (cosine decay)."),
        click.option("--cache-dir", default=None,
                     help="Local folder for normalised chips and frozen features (kept and reused); default: a "
                          "temporary folder removed at the end."),
    ]

    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply


def write_report_of(out: str) -> None:
    """report.md and the rest from every run recorded under ``out``; InputError when there is none."""
    from senclr.evaluate import runs
    from senclr.evaluate.benchmark_report import write_benchmark_report

    records = runs.collect(out)
    if not records:
        raise InputError(f"{out} holds no run records under runs/: run `senclr evaluate flood` (or bigearthnet) first")
    paths = write_benchmark_report(out, records)
    click.echo(f"{len(records)} runs -> {paths['report.md']}")
