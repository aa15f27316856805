"""The common trainer: one loop for every algorithm, dataset, backbone and energy mode.

    for epoch in 1..E:
        kind = gradsamp_schedule.kind(epoch)           # "backprop" | "gradsamp"
        with meter.phase("train"):
            backprop: S steps of algorithm.update(minibatches, unlabeled)
            gradsamp: sampler.step()                   # no data, no forward, no backward
        sampler.record()                               # snapshot theta(epoch)
        with meter.phase("eval"): accuracy of every domain's in and out split
        results.jsonl <- record;  checkpoint <- state;  W&B <- record

The trainer knows nothing about a specific algorithm, dataset or backbone: all of them
come through the registry. Inside the step loop nothing waits for the device: losses are
summed on it and read once per epoch.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch

from dgsamp import __version__
from dgsamp.backbones.factory import create_backbone
from dgsamp.data.augment import make_batch_transform
from dgsamp.data.training_data import DomainBatches, load_training_data
from dgsamp.errors import UserError
from dgsamp.metering.energy import EnergyMeter
from dgsamp.metering.flops import count_flops
from dgsamp.modes.gradsamp.sampler import GradSampler
from dgsamp.modes.gradsamp.schedule import GradSampSchedule
from dgsamp.modes.ssprop.schedule import SSPropSchedule
from dgsamp.modes.ssprop.sparse_conv import enable_ssprop
from dgsamp.registry import create_algorithm, create_dataset
from dgsamp.tracking.records import make_record, summarize
from dgsamp.tracking.wandb_sink import WandbSink
from dgsamp.training.checkpoint import (
    global_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_global_rng_state,
)
from dgsamp.training.config import RunConfig
from dgsamp.training.crashpoints import pause_here
from dgsamp.training.device import configure_backends, resolve_device
from dgsamp.training.evaluation import evaluate
from dgsamp.training.progress import Progress
from dgsamp.training.run_dir import prepare_run_dir
from dgsamp.utils.atomic import (
    atomic_write,
    atomic_write_json,
    atomic_write_jsonl,
    remove_stale_temp_files,
)
from dgsamp.utils.seeding import seed_everything, seed_hash


class NonFiniteLoss(UserError):
    """Training produced NaN or inf; the last good checkpoint is kept."""


class Trainer:
    """Builds the run from a RunConfig and trains it; ``run()`` returns the summary."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        # Everything that can refuse the flags runs before the run directory is touched.
        self.device = resolve_device(config.device)
        if config.precision == "bf16" and self.device.type != "cuda":
            raise UserError("--precision bf16 needs a CUDA device; use --precision fp32 on the CPU")
        configure_backends(self.device, config.deterministic)
        self.gradsamp_schedule = GradSampSchedule(
            config.gradsamp, config.gradsamp_period, config.gradsamp_prob, config.gradsamp_warmup,
            config.gradsamp_allow_consecutive, config.seed,
        )
        self.ssprop_schedule = SSPropSchedule(
            config.ssprop, config.ssprop_keep, config.ssprop_keep_min, config.ssprop_warmup,
            config.ssprop_interleave, config.epochs,
        )
        self.meter = EnergyMeter(config.energy, [self.device])
        self.run_dir = prepare_run_dir(config.output_dir, config.no_resume)
        seed_everything(config.seed)

        dataset = create_dataset(config.dataset, config.data_dir)
        self.backbone = create_backbone(
            config.backbone, dataset.input_shape, config.pretrained, config.pretrained_file,
            config.resolution, config.freeze_bn,
        )
        on_gpu = config.data_cache == "gpu" or (config.data_cache == "auto" and self.device.type == "cuda")
        data_device = self.device if on_gpu else torch.device("cpu")
        self.data = load_training_data(
            dataset, config.test_envs, config.holdout_fraction, config.trial_seed, config.task,
            self.backbone.resolution if dataset.IS_IMAGE else None, data_device, config.num_workers or 1,
        )
        self.num_domains = len(self.data.train)
        with self.device:  # parameters and optimizers are born on the device (fused Adam on CUDA)
            self.algorithm = create_algorithm(
                config.algorithm, self.backbone.featurizer.to(self.device), dataset.num_classes,
                self.num_domains, dict(config.hparams),
            )
        memory_format = torch.contiguous_format
        if self.device.type == "cuda" and dataset.IS_IMAGE:
            memory_format = torch.channels_last
            self.algorithm.to(memory_format=memory_format)
        if config.compile:
            self.algorithm.featurizer.compile()
        self.ssprop = enable_ssprop(self.algorithm.featurizer) if config.ssprop != "off" else None
        trainable = [p for p in self.algorithm.parameters() if p.requires_grad]
        self.sampler = (
            GradSampler(trainable, config.gradsamp_dist, config.gradsamp_scale)
            if config.gradsamp != "off" else None
        )
        augment = bool(config.hparams["data_augmentation"])
        mean, std, side = self.backbone.mean, self.backbone.std, self.backbone.resolution
        self.train_transform = make_batch_transform(dataset.IS_IMAGE, mean, std, augment, side, memory_format)
        self.eval_transform = make_batch_transform(dataset.IS_IMAGE, mean, std, False, side, memory_format)

        batch_size = int(config.hparams["batch_size"])
        self.steps_per_epoch = config.steps_per_epoch or self.data.steps_per_epoch(batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        # Batches are drawn where the data lives; augmentation and GradSamp run on the device.
        self.generators = {
            "batches": torch.Generator(data_device).manual_seed(seed_hash(config.seed, "batches")),
            "augment": torch.Generator(self.device).manual_seed(seed_hash(config.seed, "augment")),
            "gradsamp": torch.Generator(self.device).manual_seed(seed_hash(config.seed, "gradsamp")),
        }
        self.train_batches = [DomainBatches(d, batch_size, self.generators["batches"]) for d in self.data.train]
        # Algorithms that ignore target data (ADAPTS_TO_UNLABELED unset) are not fed any.
        adapts = getattr(self.algorithm, "ADAPTS_TO_UNLABELED", False)
        self.unlabeled_batches = [
            DomainBatches(d, batch_size, self.generators["batches"]) for d in self.data.unlabeled if adapts
        ]
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if config.precision == "bf16" else nullcontext()
        self.records: list[dict[str, Any]] = []
        self.epoch = 0
        self.step = 0
        self.wandb = WandbSink(
            config.wandb, config.wandb_project, config.wandb_entity, config.wandb_group,
            list(config.wandb_tags), self.wandb_config(), self.run_dir, config.job_id,
        )

    def wandb_config(self) -> dict[str, Any]:
        return {**self.config.to_dict(), "dgsamp_version": __version__, "job_id": self.config.job_id,
                "weights": self.backbone.weights}

    # ----------------------------------------------------------------------------- the loop
    def run(self) -> dict[str, Any]:
        self.resume()
        progress = Progress(self.config.progress, self.config.epochs, self.steps_per_epoch)
        try:
            for epoch in range(self.epoch + 1, self.config.epochs + 1):
                record = self.run_epoch(epoch, progress)
                self.records.append(record)
                self.epoch = epoch
                atomic_write_jsonl(self.run_dir / "results.jsonl", self.records)
                save_checkpoint(self.run_dir, self.checkpoint_state())
                self.wandb.log_epoch(record)
                progress.epoch_done(record)
        finally:
            progress.close()
            self.meter.close()
        summary = summarize(self.records, self.config.job_id, self.config.test_envs)
        model = {"state_dict": self.algorithm.state_dict(), **self.config.to_dict()}
        atomic_write(self.run_dir / "model.pt", lambda handle: torch.save(model, handle))
        atomic_write_json(self.run_dir / "summary.json", summary)
        self.wandb.finish(summary)
        (self.run_dir / "failed.json").unlink(missing_ok=True)  # an earlier attempt's failure
        (self.run_dir / "done").touch()
        return summary

    def run_epoch(self, epoch: int, progress: Progress) -> dict[str, Any]:
        kind = self.gradsamp_schedule.kind(epoch)
        keep = self.ssprop_schedule.keep(epoch)
        if self.ssprop is not None:
            self.ssprop.set_keep(keep)
        start = time.perf_counter()
        with self.meter.phase("train") as train_reading:
            if kind == "backprop":
                losses, flops = self.train_epoch(progress)
            else:
                assert self.sampler is not None
                self.sampler.step(self.generators["gradsamp"])
                self.step += self.steps_per_epoch  # the LR schedule advances as if the epoch ran
                losses, flops = {}, 0
        self.check_finite(epoch, losses)
        if self.sampler is not None:
            self.sampler.record()
        with self.meter.phase("eval") as eval_reading:
            pause_here("eval", epoch, self.run_dir)
            accuracies = evaluate(self.algorithm, self.data.eval_splits, self.eval_transform,
                                  self.config.eval_batch_size, self.autocast)
        return make_record(
            base={"args": dict(self.config.args), "hparams": dict(self.config.hparams),
                  "weights": self.backbone.weights},
            previous=self.records[-1] if self.records else None, epoch=epoch, step=self.step,
            test_envs=self.config.test_envs, kind=kind, keep=keep, losses=losses, flops=flops,
            accuracies=accuracies, train_joules=train_reading.joules, eval_joules=eval_reading.joules,
            energy_source=self.meter.source, train_seconds=train_reading.seconds,
            eval_seconds=eval_reading.seconds, epoch_seconds=time.perf_counter() - start,
        )

    def train_epoch(self, progress: Progress) -> tuple[dict[str, float], int]:
        """``steps_per_epoch`` updates; losses are summed on the device, synced once at the end.

        FLOPs are counted (forward + backward of ``algorithm.update``) on the first
        ``flops_cycle`` steps, the span after which an algorithm's op pattern repeats
        (DANN alternates discriminator and generator steps), and scaled to the epoch.
        """
        self.algorithm.train()
        sums: dict[str, torch.Tensor] = {}
        cycle = min(self.steps_per_epoch, max(1, int(getattr(self.algorithm, "flops_cycle", 1))))
        counted_flops = 0
        for index in range(self.steps_per_epoch):
            self.apply_lr_schedule()
            minibatches, unlabeled = self.next_batches()
            if index < cycle:
                losses, flops = count_flops(partial(self.update, minibatches, unlabeled))
                counted_flops += flops
            else:
                losses = self.update(minibatches, unlabeled)
            for name, value in losses.items():
                value = value.detach().float()
                sums[name] = sums[name] + value if name in sums else value
            self.step += 1
            progress.step()
            if index == 0:
                pause_here("train", self.epoch + 1, self.run_dir)
        means = {name: float(total) / self.steps_per_epoch for name, total in sums.items()}
        return means, round(counted_flops * self.steps_per_epoch / cycle)

    def next_batches(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor] | None]:
        """One augmented minibatch per training domain (and per target domain in DA), on the device."""
        minibatches = []
        for batches in self.train_batches:
            x, y = batches.next()
            minibatches.append((self.augment(x), y.to(self.device, non_blocking=True)))
        if not self.unlabeled_batches:
            return minibatches, None
        return minibatches, [self.augment(batches.next()[0]) for batches in self.unlabeled_batches]

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> normalised, augmented input; moved first so the work runs on the device."""
        return self.train_transform(x.to(self.device, non_blocking=True), self.generators["augment"])

    def update(self, minibatches, unlabeled) -> dict[str, torch.Tensor]:
        with self.autocast:
            return self.algorithm.update(minibatches, unlabeled)

    def apply_lr_schedule(self) -> None:
        """Cosine decay multiplies every optimizer's initial LR by (1 + cos(pi * step / T)) / 2."""
        if self.config.hparams["lr_schedule"] != "cosine":
            return
        factor = 0.5 * (1.0 + math.cos(math.pi * min(self.step, self.total_steps) / self.total_steps))
        for optimizer in self.algorithm.optimizers():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor

    def check_finite(self, epoch: int, losses: dict[str, float]) -> None:
        """Stop the run if a mean loss or any parameter is NaN/inf (one host sync per epoch)."""
        bad = [name for name, value in losses.items() if not math.isfinite(value)]
        if bad:
            self.record_failure(f"non-finite training loss '{bad[0]}' in epoch {epoch}")
        parameters = [p.detach() for p in self.algorithm.parameters()]
        if parameters and not bool(torch.stack([p.isfinite().all() for p in parameters]).all()):
            self.record_failure(f"non-finite parameters after epoch {epoch}")

    def record_failure(self, reason: str) -> None:
        atomic_write_json(self.run_dir / "failed.json", {"reason": reason, "epoch": self.epoch + 1})
        raise NonFiniteLoss(f"{reason}; the last good checkpoint (epoch {self.epoch}) is kept in {self.run_dir}")

    # ----------------------------------------------------------------------------- state
    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "job_id": self.config.job_id,
            "device_type": self.device.type,
            "epoch": self.epoch,
            "step": self.step,
            "records": self.records,
            "algorithm": self.algorithm.state_dict(),
            "optimizers": [optimizer.state_dict() for optimizer in self.algorithm.optimizers()],
            "rng": global_rng_state(),
            "generators": {name: g.get_state() for name, g in self.generators.items()},
            "train_batches": [b.state_dict() for b in self.train_batches],
            "unlabeled_batches": [b.state_dict() for b in self.unlabeled_batches],
            "gradsamp": None if self.sampler is None else self.sampler.state_dict(),
        }

    def resume(self) -> None:
        """Continue from the last complete epoch if this run directory holds a checkpoint."""
        remove_stale_temp_files(self.run_dir)  # half-written files of a killed process
        state = load_checkpoint(self.run_dir)
        if state is None:
            return
        if state["job_id"] != self.config.job_id:
            raise UserError(
                f"{self.run_dir} holds a checkpoint of a different run; pick another --output_dir "
                "or pass --no_resume to move it aside"
            )
        if state.get("device_type", self.device.type) != self.device.type:
            raise UserError(
                f"{self.run_dir} was checkpointed on {state['device_type']}; resume it on the same kind of "
                "device (--device) or pass --no_resume to start over"
            )
        optimizers = self.algorithm.optimizers()
        if len(optimizers) != len(state["optimizers"]):
            raise UserError(f"{self.run_dir}: the checkpoint's optimizers do not fit {self.config.algorithm}; "
                            "pass --no_resume to start over")
        self.algorithm.load_state_dict(state["algorithm"])
        for optimizer, optimizer_state in zip(optimizers, state["optimizers"]):
            optimizer.load_state_dict(optimizer_state)  # param groups too: initial_lr and lr
        set_global_rng_state(state["rng"])
        for name, generator in self.generators.items():
            generator.set_state(state["generators"][name])
        for batches, batches_state in zip(self.train_batches, state["train_batches"]):
            batches.load_state_dict(batches_state)
        for batches, batches_state in zip(self.unlabeled_batches, state["unlabeled_batches"]):
            batches.load_state_dict(batches_state)
        if self.sampler is not None:
            self.sampler.load_state_dict(state["gradsamp"])
        self.epoch, self.step, self.records = state["epoch"], state["step"], state["records"]
        atomic_write_jsonl(self.run_dir / "results.jsonl", self.records)
        print(f"resuming {self.run_dir} after epoch {self.epoch}", file=sys.stderr)
