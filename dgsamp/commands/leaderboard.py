"""``dgsamp leaderboard DIR [DIR ...]``: model selection, accuracy beside energy, plots.

Reads every run under the directories (dgsamp and DomainBed run folders, mixed), or a
W&B project with ``--wandb_project``, applies one of DomainBed's selection rules (or, to
domain adaptation runs, a validator without target labels) and prints one table per
dataset/backbone (see docs/leaderboard.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dgsamp.errors import UserError
from dgsamp.leaderboard.adaptation_selection import ADAPTATION_RULES
from dgsamp.leaderboard.render import FORMATTERS
from dgsamp.leaderboard.selection import RULES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="*", metavar="DIR",
                        help="run directories or folders of runs (searched recursively)")
    parser.add_argument("--selection", choices=[*RULES, *ADAPTATION_RULES], default="training_domain",
                        help="model selection rule. DomainBed's: training-domain validation "
                             "(default), leave-one-domain-out, test-domain oracle; for domain "
                             "adaptation runs: source_val, entropy, im, snd, dev (no target labels) "
                             "and target_oracle (uses target labels, tllib's reporting)")
    parser.add_argument("--format", choices=list(FORMATTERS), default="markdown",
                        help="output format (default: markdown)")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help="write the table to FILE (atomically) instead of stdout")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="also write PNG figures to DIR: accuracy vs energy per dataset, "
                             "and one per selected run")
    parser.add_argument("--wandb_project", default=None, metavar="P",
                        help="read runs from W&B project P (entity/project) instead of DIRs")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers training modes (their runs get their own "
                        "rows and labels) or datasets first (repeatable)")


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser(
        "leaderboard", help="tables of selected accuracy, energy and FLOPs over many runs",
        description=__doc__.splitlines()[0],
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dgsamp.leaderboard.render import render
    from dgsamp.leaderboard.rules import get_rule
    from dgsamp.leaderboard.runs import load_runs, load_wandb_runs
    from dgsamp.leaderboard.tables import build_leaderboard, selected_runs
    from dgsamp.utils.atomic import atomic_write_text

    if args.wandb_project and args.dirs:
        raise UserError("give either run directories or --wandb_project, not both")
    if args.wandb_project:
        run_set = load_wandb_runs(args.wandb_project)
    elif args.dirs:
        run_set = load_runs(args.dirs)
    else:
        raise UserError("no run directories given; usage: dgsamp leaderboard DIR [DIR ...]")
    for warning in run_set.warnings:
        print(f"dgsamp: warning: {warning}", file=sys.stderr)
    leaderboard = build_leaderboard(run_set, get_rule(args.selection))
    for warning in leaderboard.warnings[len(run_set.warnings):]:
        print(f"dgsamp: warning: {warning}", file=sys.stderr)
    text = render(leaderboard, args.format)
    if args.output:
        try:
            atomic_write_text(args.output, text)
        except OSError as error:
            raise UserError(f"cannot write {args.output}: {error.strerror}") from error
    else:
        sys.stdout.write(text)
    if args.plot:
        from dgsamp.leaderboard.plots import write_plots

        try:
            written = write_plots(leaderboard, selected_runs(leaderboard), args.plot)
        except OSError as error:
            raise UserError(f"cannot write plots to {args.plot}: {error.strerror}") from error
        print(f"dgsamp: wrote {len(written)} figures to {args.plot}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m dgsamp.commands.leaderboard`` (same as the subcommand)."""
    parser = argparse.ArgumentParser(prog="dgsamp leaderboard", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as error:
        print(f"dgsamp: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
