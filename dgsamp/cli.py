"""The ``dgsamp`` command: train, list, leaderboard, sweep, ensemble.

Every mistake a user can make ends as one line on stderr and exit code 2; bugs stay
tracebacks. ``--plugin FILE.py`` (repeatable, any subcommand) is imported before the full
parser is built, so a plugin's algorithms and their hparam flags are known to it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dgsamp import __version__
from dgsamp.config.parser import ArgumentParser, load_plugins
from dgsamp.errors import UserError

SUBCOMMANDS = ("train", "list", "leaderboard", "sweep", "ensemble", "adapt", "data")


def build_parser(argv: Sequence[str] = ()) -> ArgumentParser:
    import importlib

    parser = ArgumentParser(prog="dgsamp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dgsamp {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"dgsamp.commands.{name}")
        module.register(subparsers, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins(argv)
        args = build_parser(argv).parse_args(argv)
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
