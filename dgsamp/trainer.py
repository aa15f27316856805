"""The common trainer: one loop for every algorithm, dataset, backbone and energy mode.

    for epoch in 1..E:
        kind = gradsamp_schedule.kind(epoch)           # "backprop" | "gradsamp"
        with meter.phase("train"):
            backprop: S steps of algorithm.update(minibatches, unlabeled)
            gradsamp: sampler.step()                   # no data, no forward, no backward
        sampler.record()                               # snapshot theta(epoch)
        with meter.phase("eval"): accuracy of every domain's in and out split
        results.jsonl <- record;  W&B <- record;  checkpoint <- state

The trainer knows nothing about a specific algorithm, dataset or backbone: all of them
come through the registry.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dgsamp import __version__
from dgsamp.atomic import (
    atomic_write,
    atomic_write_json,
    atomic_write_jsonl,
    remove_stale_temp_files,
)
from dgsamp.augment import make_batch_transform
from dgsamp.backbones import create_backbone
from dgsamp.checkpoint import (
    global_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_global_rng_state,
)
from dgsamp.config import RunConfig
from dgsamp.crashpoints import pause_here
from dgsamp.energy import EnergyMeter
from dgsamp.errors import UserError
from dgsamp.evaluation import evaluate
from dgsamp.flops import count_flops
from dgsamp.gradsamp import GradSampler
from dgsamp.gradsamp_schedule import GradSampSchedule
from dgsamp.progress import Progress
from dgsamp.registry import create_algorithm, create_dataset
from dgsamp.seeding import seed_hash
from dgsamp.ssprop import enable_ssprop
from dgsamp.ssprop_schedule import SSPropSchedule
from dgsamp.training_data import DomainBatches, load_training_data
from dgsamp.wandb_sink import WandbSink


class NonFiniteLoss(UserError):
    """Training produced NaN or inf; the last good checkpoint is kept."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for, but no CUDA GPU is visible; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_run_dir(config: RunConfig) -> Path:
    """Create the run directory; with ``--no_resume`` move an old one aside (never delete)."""
    run_dir = Path(config.output_dir)
    if config.no_resume and run_dir.exists() and any(run_dir.iterdir()):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
        counter = 1
        while aside.exists():  # never move into (or over) an earlier aside
            aside, counter = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{counter}"), counter + 1
        shutil.move(str(run_dir), aside)
        print(f"moved the previous run aside to {aside}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"output dir {run_dir} is not writable: {error.strerror}") from None
    return run_dir


class Trainer:
    """Builds the run from a RunConfig and trains it; ``run()`` returns the summary."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.run_dir = prepare_run_dir(config)
        self.device = resolve_device(config.device)
        seed_everything(config.seed)

        dataset = create_dataset(config.dataset, config.data_dir)
        backbone = create_backbone(
            config.backbone, dataset.input_shape, config.pretrained, config.pretrained_file,
            config.resolution, config.freeze_bn,
        )
        self.backbone = backbone
        data_device = self.device if config.data_cache == "gpu" else torch.device("cpu")
        self.data = load_training_data(
            dataset, config.test_envs, config.holdout_fraction, config.trial_seed, config.task,
            backbone.resolution, data_device, config.num_workers or 1,
        )
        self.num_domains = len(self.data.train)
        with self.device:  # parameters and optimizers are born on the device (fused Adam on CUDA)
            self.algorithm = create_algorithm(
                config.algorithm, backbone.featurizer.to(self.device), dataset.num_classes,
                self.num_domains, dict(config.hparams),
            )
        self.channels_last = self.device.type == "cuda" and dataset.IS_IMAGE
        if self.channels_last:
            self.algorithm.to(memory_format=torch.channels_last)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        augment = bool(config.hparams["data_augmentation"])
        self.train_transform = make_batch_transform(
            dataset.IS_IMAGE, backbone.mean, backbone.std, augment, backbone.resolution, memory_format
        )
        self.eval_transform = make_batch_transform(
            dataset.IS_IMAGE, backbone.mean, backbone.std, False, backbone.resolution, memory_format
        )

        batch_size = int(config.hparams["batch_size"])
        self.steps_per_epoch = config.steps_per_epoch or self.data.steps_per_epoch(batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        batch_generator = torch.Generator().manual_seed(seed_hash(config.seed, "batches"))
        self.train_batches = [DomainBatches(d, batch_size, batch_generator) for d in self.data.train]
        # Algorithms that ignore target data (ADAPTS_TO_UNLABELED unset) are not fed any.
        adapts = getattr(self.algorithm, "ADAPTS_TO_UNLABELED", False)
        self.unlabeled_batches = [
            DomainBatches(d, batch_size, batch_generator) for d in self.data.unlabeled if adapts
        ]
        self.generators = {
            "batches": batch_generator,
            "augment": torch.Generator(data_device).manual_seed(seed_hash(config.seed, "augment")),
            "gradsamp": torch.Generator(self.device).manual_seed(seed_hash(config.seed, "gradsamp")),
        }

        self.gradsamp_schedule = GradSampSchedule(
            config.gradsamp, config.gradsamp_period, config.gradsamp_prob, config.gradsamp_warmup,
            config.gradsamp_allow_consecutive, config.seed,
        )
        trainable = [p for p in self.algorithm.parameters() if p.requires_grad]
        self.sampler = (
            GradSampler(trainable, config.gradsamp_dist, config.gradsamp_scale)
            if config.gradsamp != "off" else None
        )
        self.ssprop_schedule = SSPropSchedule(
            config.ssprop, config.ssprop_keep, config.ssprop_keep_min, config.ssprop_warmup,
            config.ssprop_interleave, config.epochs,
        )
        self.ssprop = enable_ssprop(self.algorithm.featurizer) if config.ssprop != "off" else None
        self.meter = EnergyMeter(config.energy, [self.device])
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if config.precision == "bf16" and self.device.type == "cuda"
            else nullcontext()
        )
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
                self.wandb.log_epoch(record)
                save_checkpoint(self.run_dir, self.checkpoint_state())
                progress.epoch_done(record)
        finally:
            progress.close()
            self.meter.close()
        summary = self.summary()
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
        return self.make_record(epoch, kind, keep, losses, flops, accuracies, train_reading,
                                eval_reading, time.perf_counter() - start)

    def train_epoch(self, progress: Progress) -> tuple[dict[str, float], int]:
        """``steps_per_epoch`` updates; losses are summed on the device, synced once at the end."""
        self.algorithm.train()
        sums: dict[str, torch.Tensor] = {}
        cycle = max(1, int(getattr(self.algorithm, "flops_cycle", 1)))
        counted_flops = 0
        for index in range(self.steps_per_epoch):
            self.apply_lr_schedule()
            if index < cycle:
                losses, flops = count_flops(self.update_once)
                counted_flops += flops
            else:
                losses = self.update_once()
            for name, value in losses.items():
                sums[name] = sums[name] + value.detach().float() if name in sums else value.detach().float()
            self.step += 1
            progress.step()
            if index == 0:
                pause_here("train", self.epoch + 1, self.run_dir)
        counted_steps = min(cycle, self.steps_per_epoch)
        flops = round(counted_flops * self.steps_per_epoch / counted_steps)
        means = {name: float(total) / self.steps_per_epoch for name, total in sums.items()}
        return means, flops

    def check_finite(self, epoch: int, losses: dict[str, float]) -> None:
        """Stop the run if a mean loss or any parameter is NaN/inf (one host sync per epoch)."""
        bad = [name for name, value in losses.items() if not math.isfinite(value)]
        if bad:
            self.record_failure(f"non-finite training loss '{bad[0]}' in epoch {epoch}")
        parameters = [p.detach() for p in self.algorithm.parameters()]
        if parameters and not bool(torch.stack([p.isfinite().all() for p in parameters]).all()):
            self.record_failure(f"non-finite parameters after epoch {epoch}")

    def update_once(self) -> dict[str, torch.Tensor]:
        minibatches = []
        for batches in self.train_batches:
            x, y = batches.next()
            minibatches.append((self.to_input(self.train_transform(x, self.generators["augment"])), y.to(self.device)))
        unlabeled = None
        if self.unlabeled_batches:
            unlabeled = [
                self.to_input(self.train_transform(b.next()[0], self.generators["augment"]))
                for b in self.unlabeled_batches
            ]
        with self.autocast:
            return self.algorithm.update(minibatches, unlabeled)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True)

    def apply_lr_schedule(self) -> None:
        """Cosine decay multiplies every optimizer's initial LR by (1 + cos(pi * step / T)) / 2."""
        if self.config.hparams["lr_schedule"] != "cosine":
            return
        factor = 0.5 * (1.0 + math.cos(math.pi * min(self.step, self.total_steps) / self.total_steps))
        for optimizer in self.algorithm.optimizers():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor

    # ----------------------------------------------------------------------------- records
    def make_record(self, epoch, kind, keep, losses, flops, accuracies, train_reading, eval_reading,
                    seconds) -> dict[str, Any]:
        previous = self.records[-1] if self.records else {}
        test_envs = self.config.test_envs
        cum_energy = previous.get("cum_train_energy_J", 0.0) if self.records else 0.0
        if train_reading.joules is None or cum_energy is None:
            cum_energy = None
        else:
            cum_energy += train_reading.joules
        record = {
            "args": dict(self.config.args),
            "hparams": dict(self.config.hparams),
            "epoch": epoch,
            "step": self.step,
            **accuracies,
            "ood_acc": sum(accuracies[f"env{i}_in_acc"] for i in test_envs) / len(test_envs),
            **losses,
            "epoch_kind": kind,
            "ssprop_keep": keep if kind == "backprop" else None,
            "train_energy_J": train_reading.joules,
            "eval_energy_J": eval_reading.joules,
            "energy_source": self.meter.source,
            "train_flops": flops,
            "train_seconds": train_reading.seconds,
            "eval_seconds": eval_reading.seconds,
            "epoch_seconds": seconds,
            "cum_train_energy_J": cum_energy,
            "cum_train_flops": previous.get("cum_train_flops", 0) + flops,
            "backprop_epochs": previous.get("backprop_epochs", 0) + (kind == "backprop"),
            "gradsamp_epochs": previous.get("gradsamp_epochs", 0) + (kind == "gradsamp"),
        }
        return record

    def summary(self) -> dict[str, Any]:
        last = self.records[-1]
        eval_energy = [r["eval_energy_J"] for r in self.records]
        return {
            "job_id": self.config.job_id,
            "epochs": last["epoch"],
            "final_ood_acc": last["ood_acc"],
            "selected_ood_acc": selected_ood_acc(self.records, self.config.test_envs),
            "total_train_energy_J": last["cum_train_energy_J"],
            "total_eval_energy_J": None if None in eval_energy else sum(eval_energy),
            "energy_source": last["energy_source"],
            "total_train_flops": last["cum_train_flops"],
            "backprop_epochs": last["backprop_epochs"],
            "gradsamp_epochs": last["gradsamp_epochs"],
            "train_seconds": sum(r["train_seconds"] for r in self.records),
            "wall_seconds": sum(r["epoch_seconds"] for r in self.records),
        }

    # ----------------------------------------------------------------------------- state
    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "job_id": self.config.job_id,
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
        self.algorithm.load_state_dict(state["algorithm"])
        optimizers = self.algorithm.optimizers()
        if len(optimizers) != len(state["optimizers"]):
            raise RuntimeError(f"checkpoint has {len(state['optimizers'])} optimizer states, the algorithm "
                               f"{len(optimizers)}")
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

    def record_failure(self, reason: str) -> None:
        atomic_write_json(self.run_dir / "failed.json", {"reason": reason, "epoch": self.epoch + 1})
        raise NonFiniteLoss(f"{reason}; the last good checkpoint (epoch {self.epoch}) is kept in {self.run_dir}")


def selected_ood_acc(records: list[dict[str, Any]], test_envs: list[int]) -> float:
    """OOD accuracy at the epoch with the best training-domain validation accuracy."""
    num_envs = sum(1 for key in records[0] if key.endswith("_out_acc"))
    train_envs = [i for i in range(num_envs) if i not in test_envs]

    def validation(record: dict[str, Any]) -> float:
        return sum(record[f"env{i}_out_acc"] for i in train_envs) / len(train_envs)

    return max(records, key=validation)["ood_acc"]


def format_accuracies(record: dict[str, Any]) -> str:
    keys = sorted(k for k in record if k.startswith("env") and k.endswith("_acc"))
    return json.dumps({k: round(record[k], 4) for k in keys})
