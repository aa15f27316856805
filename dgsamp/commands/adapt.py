"""``dgsamp adapt RUN_DIR... --method t3a|tent|tent_bn|shot_im|pseudo_label|bn_adapt --output_dir OUT``.

Test-time adaptation of the model each run's training-domain validation selected (the run
must be trained with ``--keep_checkpoints selected``): the method predicts every split of
the run's data as an online stream and adapts to it, metered (energy, FLOPs), and the
result is written as a run that ``dgsamp leaderboard`` shows as ``<run's label> + <METHOD>``
(see docs/adaptation.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from dgsamp.metering.energy import ENERGY_SOURCES
from dgsamp.tracking.adaptation_naming import LABELS


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser(
        "adapt", help="test-time adaptation (T3A, Tent, SHOT-IM, ...) of finished runs, written as leaderboard runs",
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dirs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    parser.add_argument("--method", required=True, choices=list(LABELS),
                        help="t3a: prototype classifier from filtered test features; tent: entropy minimisation "
                             "of BatchNorm affine parameters; tent_bn: the same on a BatchNorm before the "
                             "classifier; shot_im: information maximisation of the featurizer; pseudo_label: "
                             "cross-entropy on confident predictions; bn_adapt: test-batch BatchNorm statistics")
    parser.add_argument("--output_dir", required=True, metavar="OUT",
                        help="where the adapted run goes (several runs: one folder each inside it)")
    parser.add_argument("--adapt_hparams", default=None, metavar="JSON",
                        help='the method\'s hparams over its published defaults, e.g. \'{"filter_K": 20}\' '
                             "(t3a: filter_K; tent, tent_bn, shot_im: alpha, steps; pseudo_label: alpha, steps, beta)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="test batch size of the stream (default 32, the T3A repository's)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the order of each split's stream")
    parser.add_argument("--data_dir", default=None, help="the data's folder, if not the runs' own --data_dir")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    parser.add_argument("--energy", default="auto", choices=ENERGY_SOURCES,
                        help="meter of the adaptation's energy (default auto)")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                        help="import a file that registers the runs' algorithms or datasets first")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dgsamp.adaptation.build import DEFAULT_BATCH_SIZE, build_adaptations
    from dgsamp.errors import UserError
    from dgsamp.tracking import schema

    given = {}
    if args.adapt_hparams:
        try:
            given = json.loads(args.adapt_hparams)
        except json.JSONDecodeError as error:
            raise UserError(f"--adapt_hparams is not valid JSON ({error.msg}): {args.adapt_hparams}") from None
        if not isinstance(given, dict):
            raise UserError(f"--adapt_hparams must be a JSON object like '{{\"alpha\": 0.1}}', got {args.adapt_hparams}")
    batch_size = DEFAULT_BATCH_SIZE if args.batch_size is None else args.batch_size
    summaries = build_adaptations(args.dirs, args.method, args.output_dir, given, batch_size, args.seed,
                                  args.device, args.data_dir, args.energy)
    accuracies = ", ".join(f"{summary[schema.FINAL_OOD_ACC]:.4f}" for summary in summaries)
    print(f"done: {LABELS[args.method]} ood_acc {accuracies}; results in {args.output_dir}")
    return 0
