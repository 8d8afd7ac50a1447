"""The ``senclr`` command: the one module that knows every stage.

Each stage's commands are imported only when invoked, so ``senclr --help`` stays fast and
TensorFlow, Beam and Earth Engine load only for the stage that needs them; a stage whose install
extra is missing says which extra to install (exit 2).
"""

from __future__ import annotations

import importlib

import click

from senclr import __version__, tf_defaults
from senclr.errors import InputError
from senclr.extras import missing_extra, require_extra

# command name -> (module, attribute, one-line help shown by `senclr --help`)
COMMANDS = {
    "export": ("senclr.export.cli", "export", "Export S1/S2 patch pairs (synthetic source; Earth Engine later)."),
    "preprocess": ("senclr.pipeline.cli", "preprocess", "Beam pipeline: raw archive -> filtered, split TFRecord dataset."),
    "train": ("senclr.models.cli", "train", "Pre-train the S1/S2 dual encoder with cross-modal NT-Xent."),
    "evaluate": ("senclr.evaluate.cli", "evaluate", "Score encoders: Sen1Floods11, BigEarthNet, water probe; one report."),
    "data": ("senclr.evaluate.data_cli", "data", "Download benchmark datasets (Sen1Floods11) for evaluation."),
    "inspect": ("senclr.inspect_cmd", "inspect", "Summarise a dataset or raw archive and show a few records."),
    "demo": ("senclr.evaluate.demo", "demo", "Run the whole chain on synthetic data and report the numbers."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        ctx.meta["senclr.command"] = name  # for the missing-extra message of invoke
        module, attr, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx, args):
        if args and args[0] in COMMANDS and "--help" not in args:  # help needs no extra
            require_extra(args[0])
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as e:
            click.echo(f"senclr: error: {e}", err=True)
            ctx.exit(2)
        except ModuleNotFoundError as e:  # a stage's library, absent because its extra is not installed
            fix = missing_extra(ctx.meta.get("senclr.command", "?"), e)
            if fix is None:
                raise
            click.echo(f"senclr: error: {fix}", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="senclr")
def cli():
    """senclr: paired Sentinel-1 / Sentinel-2 data and multimodal contrastive encoders."""


def main(argv: list[str] | None = None) -> None:
    tf_defaults.apply()  # before any stage loads TensorFlow
    cli.main(args=argv, prog_name="senclr")
