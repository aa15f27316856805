"""``dgsamp train``: one run, resumable, results in ``--output_dir``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dgsamp.config import RunConfig
from dgsamp.train_args import add_train_arguments, hparam_flag_names


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train one algorithm on one dataset split",
        description="Train with the DomainBed protocol; per-epoch results go to OUTPUT_DIR/results.jsonl.",
    )
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return RunConfig.from_namespace(args, hparam_flag_names())


def run(args: argparse.Namespace) -> int:
    from dgsamp.trainer import Trainer

    config = config_from_args(args)
    done = Path(config.output_dir) / "done"
    if done.exists() and not config.no_resume:
        print(f"already done: {config.output_dir} (pass --no_resume to train it again)")
        return 0
    summary = Trainer(config).run()
    print(
        f"done: final ood_acc {summary['final_ood_acc']:.4f}, selected (training-domain validation) "
        f"{summary['selected_ood_acc']:.4f}; results in {config.output_dir}/results.jsonl"
    )
    return 0
