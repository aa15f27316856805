"""``dgsamp ensemble RUN_DIR... --method eoa|diwa_uniform|diwa_greedy --output_dir OUT``.

Builds an ensemble of finished runs of one dataset/test-domain split (EoA: mean logits of
the runs' averaged models; DiWA: their weights averaged, uniformly or greedily on
training-domain validation), evaluates it on every split like a run and writes a run
directory that ``dgsamp leaderboard`` shows as its own row (see docs/ensembles.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dgsamp.metering.energy import ENERGY_SOURCES
from dgsamp.tracking.ensemble_naming import LABELS


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser(
        "ensemble", help="EoA or DiWA ensemble of finished runs, written as a leaderboard run",
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dirs", nargs="+", metavar="RUN_DIR",
                        help="finished run directories, or folders searched for them")
    parser.add_argument("--method", required=True, choices=list(LABELS),
                        help="eoa: mean logits of the runs' evaluated (averaged) models; diwa_uniform: "
                             "mean of all runs' weights; diwa_greedy: DiWA's greedy selection")
    parser.add_argument("--output_dir", required=True, metavar="OUT", help="where the ensemble's run goes")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="keep only runs whose args[KEY] equals VALUE (JSON or text; repeatable), "
                             "e.g. --where algorithm=ERM --where model_ema=true --where test_envs=0")
    parser.add_argument("--data_dir", default=None, help="the data's folder, if not the runs' own --data_dir")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    parser.add_argument("--eval_batch_size", type=int, default=None,
                        help="evaluation batch size (default: the runs' own)")
    parser.add_argument("--energy", default="auto", choices=ENERGY_SOURCES,
                        help="meter of the ensemble's evaluation energy (default auto)")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers the runs' algorithms or datasets first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dgsamp.ensembles.build import build_ensemble
    from dgsamp.ensembles.members import parse_where
    from dgsamp.errors import UserError
    from dgsamp.tracking import schema

    if args.eval_batch_size is not None and args.eval_batch_size < 1:
        raise UserError(f"--eval_batch_size must be at least 1, got {args.eval_batch_size}")
    summary = build_ensemble(args.dirs, args.method, args.output_dir, parse_where(args.where), args.device,
                             args.data_dir, args.eval_batch_size, args.energy)
    print(f"done: {LABELS[args.method]} ood_acc {summary[schema.FINAL_OOD_ACC]:.4f}; "
          f"results in {args.output_dir}/results.jsonl")
    return 0
