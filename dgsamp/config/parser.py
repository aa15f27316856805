"""The ``dgsamp train`` parser: argparse that answers in one line, plugins loaded first.

Two flags are read before the full parser exists: every ``--plugin FILE.py`` (imported
first, so its algorithms and hparam flags are known) and ``--algorithm`` (its
hyperparameters, with its own defaults, make up the hparam section of ``--help``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dgsamp.errors import UserError
from dgsamp.registry import load_plugin_file


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UserError (one line) instead of printing usage and exiting."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see --help)")


def _preparse(argv: Sequence[str]) -> argparse.Namespace | None:
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    pre.add_argument("--algorithm", default=None)
    try:
        known, _ = pre.parse_known_args(list(argv))
    except UserError:
        return None  # a malformed flag is left for the full parser to report
    return known


def load_plugins(argv: Sequence[str]) -> None:
    """Import every ``--plugin FILE`` before the full parser is built."""
    known = _preparse(argv)
    for path in known.plugin if known else []:
        load_plugin_file(path)


def chosen_algorithm(argv: Sequence[str]) -> str | None:
    """The ``--algorithm`` given in ``argv``, or None."""
    known = _preparse(argv)
    return known.algorithm if known else None


def build_train_parser(argv: Sequence[str] = ()) -> ArgumentParser:
    """The parser of ``dgsamp train`` alone (sweeps check job argv against it)."""
    from dgsamp.config.flags import add_train_arguments

    parser = ArgumentParser(prog="dgsamp train")
    add_train_arguments(parser, chosen_algorithm(argv))
    return parser
