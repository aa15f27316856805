"""The ``dgsamp`` command: train, list, leaderboard, sweep, ensemble.

Every mistake a user can make ends as one line on stderr and exit code 2; bugs stay
tracebacks. ``--plugin FILE.py`` (repeatable, any subcommand) is imported before the full
parser is built, so a plugin's algorithms and their hparam flags are known to it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dgsamp import __version__
from dgsamp.errors import UserError
from dgsamp.registry import load_plugin_file

SUBCOMMANDS = ("train", "list", "leaderboard", "sweep", "ensemble", "data")


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UserError (one line) instead of printing usage and exiting."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see --help)")


def load_plugins(argv: Sequence[str]) -> None:
    """Import every ``--plugin FILE`` before the full parser is built (a malformed ``--plugin``
    is left for the full parser to report)."""
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    try:
        known, _ = pre.parse_known_args(list(argv))
    except UserError:
        return
    for path in known.plugin:
        load_plugin_file(path)


def build_parser() -> ArgumentParser:
    import importlib

    parser = ArgumentParser(prog="dgsamp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dgsamp {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"dgsamp.commands.{name}")
        module.register(subparsers)
    return parser


def build_train_parser() -> ArgumentParser:
    """The parser of ``dgsamp train`` alone (sweeps check job argv against it)."""
    from dgsamp.training.flags import add_train_arguments

    parser = ArgumentParser(prog="dgsamp train")
    add_train_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins(argv)
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as error:
        one_line = " ".join(str(error).split("\n"))
        print(f"dgsamp: error: {one_line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dgsamp: interrupted; the last complete epoch is checkpointed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
