"""``dgsamp train``: one run, resumable, results in ``--output_dir``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dgsamp.config.flags import add_train_arguments
from dgsamp.config.parser import chosen_algorithm
from dgsamp.config.resolve import resolve_run_config
from dgsamp.tracking import schema
from dgsamp.training.run_dir import open_run_dir
from dgsamp.training.run_lock import hold_run_dir


def register(subparsers, argv: Sequence[str] = ()) -> None:
    parser = subparsers.add_parser(
        "train", help="train one algorithm on one dataset split",
        description="Train with the DomainBed protocol; per-epoch results go to OUTPUT_DIR/results.jsonl.",
    )
    add_train_arguments(parser, chosen_algorithm(argv))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dgsamp.backbones.weights import find_weights
    from dgsamp.training.build import build_run
    from dgsamp.training.describe import announce, describe_run
    from dgsamp.training.trainer import Trainer

    config = resolve_run_config(args)
    output_dir = config.tracking.output_dir
    with hold_run_dir(output_dir):
        existing = open_run_dir(output_dir, config.job_id, config.tracking.no_resume)
        if existing.done:
            print(f"already done: {output_dir} (pass --no_resume to train it again)")
            return 0
        model = config.model
        weights = find_weights(model.backbone, model.pretrained, model.pretrained_file)
        announce(describe_run(config, weights), config.tracking.progress)
        summary = Trainer(build_run(config, existing, weights)).run()
    print(
        f"done: final ood_acc {summary[schema.FINAL_OOD_ACC]:.4f}, selected (training-domain validation) "
        f"{summary[schema.SELECTED_OOD_ACC]:.4f}; results in {output_dir}/results.jsonl"
    )
    return 0
