"""The command line: one module per command family, each command thin (parse, one library
call, print), loaded only when it runs. `main` is the `hybrid` console script."""

from hybrid.cli.base import main

__all__ = ["main"]
