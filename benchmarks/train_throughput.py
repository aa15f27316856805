"""Training and evaluation throughput of one real dgsamp run (images/s), CPU or GPU.

    python benchmarks/train_throughput.py --data_dir ../shared/data/pacs128 \
        --backbone tf_efficientnet_lite0 --algorithm DANN --test_envs 3 --epochs 1

Runs ``dgsamp train`` in-process with the given flags (any train flag passes through) and
prints one JSON object: decoded images, steps, images per second in the training phase
(3 domains x batch per step) and in evaluation (every split), and the wall time.
Not run by the tests; figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time

import torch

from dgsamp.backbones.weights import find_weights
from dgsamp.cli import build_parser
from dgsamp.config import resolve_run_config
from dgsamp.training.build import build_run
from dgsamp.training.run_dir import open_run_dir
from dgsamp.training.trainer import Trainer


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as output_dir:
        args = build_parser().parse_args(["train", "--protocol", "dgsamp", "--dataset", "PACS", "--output_dir", output_dir,
                                          "--progress", "lines", *argv])
        config = resolve_run_config(args)
        start = time.perf_counter()
        weights = find_weights(config.model.backbone, config.model.pretrained, config.model.pretrained_file)
        trainer = Trainer(build_run(config, open_run_dir(output_dir, config.job_id, no_resume=True), weights))
        setup_seconds = time.perf_counter() - start
        summary = trainer.run()
    records = trainer.records
    batch = int(config.hparams["batch_size"]) * trainer.num_domains
    backprop = [r for r in records if r["epoch_kind"] == "backprop"]
    train_images = len(backprop) * trainer.steps_per_epoch * batch
    eval_images = len(records) * sum(len(split) for split in trainer.data.eval_splits.values())
    print(json.dumps({
        "command": " ".join(["dgsamp", "train", *argv]),
        "device": str(trainer.device),
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "backbone": config.backbone,
        "resolution": trainer.backbone.resolution,
        "steps_per_epoch": trainer.steps_per_epoch,
        "images_per_step": batch,
        "setup_seconds (decode once)": round(setup_seconds, 1),
        "train_images_per_second": round(train_images / sum(r["train_seconds"] for r in backprop), 1),
        "eval_images_per_second": round(eval_images / sum(r["eval_seconds"] for r in records), 1),
        "final_ood_acc": round(summary["final_ood_acc"], 4),
        "train_flops_per_epoch": backprop[-1]["train_flops"],
    }, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
