"""``dgsamp train``: one run, resumable, results in ``--output_dir``."""

from __future__ import annotations

import argparse

from dgsamp.errors import UserError
from dgsamp.training.config import RunConfig
from dgsamp.training.flags import add_train_arguments, hparam_flag_names
from dgsamp.training.run_dir import finished_job_id


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
    from dgsamp.training.trainer import Trainer

    config = config_from_args(args)
    finished = finished_job_id(config.output_dir)
    if finished is not None and not config.no_resume:
        if finished != config.job_id:
            raise UserError(
                f"{config.output_dir} holds a checkpoint of a different run (finished); pick another "
                "--output_dir or pass --no_resume to move it aside"
            )
        print(f"already done: {config.output_dir} (pass --no_resume to train it again)")
        return 0
    summary = Trainer(config).run()
    print(
        f"done: final ood_acc {summary['final_ood_acc']:.4f}, selected (training-domain validation) "
        f"{summary['selected_ood_acc']:.4f}; results in {config.output_dir}/results.jsonl"
    )
    return 0
