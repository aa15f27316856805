"""``dgsamp train``: one run, resumable, results in ``--output_dir``."""

from __future__ import annotations

import argparse

from dgsamp.tracking import schema
from dgsamp.training.config import RunConfig
from dgsamp.training.flags import add_train_arguments
from dgsamp.training.run_dir import open_run_dir


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train one algorithm on one dataset split",
        description="Train with the DomainBed protocol; per-epoch results go to OUTPUT_DIR/results.jsonl.",
    )
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dgsamp.training.trainer import Trainer

    config = RunConfig.from_flags(args)
    existing = open_run_dir(config.output_dir, config.job_id, config.no_resume)
    if existing.done:
        print(f"already done: {config.output_dir} (pass --no_resume to train it again)")
        return 0
    summary = Trainer(config, existing).run()
    print(
        f"done: final ood_acc {summary[schema.FINAL_OOD_ACC]:.4f}, selected (training-domain validation) "
        f"{summary[schema.SELECTED_OOD_ACC]:.4f}; results in {config.output_dir}/results.jsonl"
    )
    return 0
