"""``python -m senclr``: the same as the ``senclr`` command."""

from senclr.cli import main

main()
