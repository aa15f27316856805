"""The common trainer: one loop for every algorithm, dataset, backbone and training mode.

    for epoch in 1..E:                                  # epoch = the span between two evaluations
        plan = modes' plan of the epoch                 # kind "backprop" | "gradsamp" | ...
        with meter.phase("train"):
            backprop: S_e steps of algorithm.update(minibatches, unlabeled); modes' after_step
                      (S_e from the schedule: --epochs, or --steps as DomainBed evaluates them)
            other:    the planning mode's run_epoch      # no data (GradSamp's draw)
        modes' after_epoch
        with meter.phase("eval"): accuracy of every split, of the model the modes evaluate
        modes' after_evaluation                          # SWAD reads the validation loss
        last epoch: modes' final_model, evaluated again if it differs (SWAD's average)
        results.jsonl <- record;  checkpoint <- state map;  W&B <- record

The trainer knows nothing about a specific algorithm, dataset, backbone or mode: all of
them come through the registry. Inside the step loop nothing waits for the device: losses
are summed on it and read once per epoch.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any

import torch

from dgsamp.errors import UserError
from dgsamp.metering.flops import count_flops
from dgsamp.modes.base import BACKPROP, EpochPlan
from dgsamp.registry import MODES
from dgsamp.tracking import schema
from dgsamp.tracking.records import make_record, summarize
from dgsamp.tracking.schema import EVALUATED_MODEL
from dgsamp.training import state as trainer_state
from dgsamp.training.adaptation_scores import adaptation_scores
from dgsamp.training.build import BuiltRun
from dgsamp.training.checkpoint import CHECKPOINT_NAME, save_checkpoint
from dgsamp.training.crashpoints import pause_here
from dgsamp.training.evaluation import Evaluation, evaluate
from dgsamp.training.progress import Progress
from dgsamp.training.selected_model import keep_if_selected
from dgsamp.utils.atomic import (
    atomic_write,
    atomic_write_json,
    atomic_write_jsonl,
    remove_stale_temp_files,
)
from dgsamp.utils.seeding import seed_hash


class NonFiniteLoss(UserError):
    """Training produced NaN or inf; the last good checkpoint is kept."""


class Trainer:
    """Trains a built run (``dgsamp.training.build``); ``run()`` returns the summary."""

    def __init__(self, run: BuiltRun) -> None:
        self.config = config = run.config
        self.existing, self.device, self.meter, self.run_dir = run.existing, run.device, run.meter, run.run_dir
        self.backbone, self.data, self.algorithm, self.modes = run.backbone, run.data, run.algorithm, run.modes
        self.train_transform, self.eval_transform = run.transforms.train, run.transforms.eval
        self.schedule = run.schedule  # updates per epoch
        self.steps_per_epoch = max(self.schedule.epoch_steps)  # the longest epoch
        self.total_steps = self.schedule.total_steps
        self.generators, self.train_batches, self.unlabeled_batches = (
            run.generators, run.train_batches, run.unlabeled_batches)
        self.autocast, self.wandb = run.autocast, run.wandb
        self.per_class_of = (len(run.dataset.classes)  # VisDA-2017: mean per-class accuracy too
                             if run.dataset.ACCURACY == "mean_per_class" else None)
        self.epochs = config.schedule.epochs
        self.records: list[dict[str, Any]] = []
        self.epoch = 0
        self.step = 0
        self.last_evaluated: torch.nn.Module | None = None  # the model the latest record reports

    # ----------------------------------------------------------------------------- the loop
    def run(self) -> dict[str, Any]:
        self.resume()
        progress = Progress(self.config.tracking.progress, self.schedule.epoch_steps)
        try:
            for epoch in range(self.epoch + 1, self.epochs + 1):
                record = self.run_epoch(EpochPlan(epoch), progress)
                self.records.append(record)
                self.epoch = epoch
                if self.config.tracking.keep_checkpoints == "selected":
                    keep_if_selected(self.run_dir, self.records, self.last_evaluated, self.config.job_id,
                                     self.config.data.test_envs)
                atomic_write_jsonl(self.run_dir / "results.jsonl", self.records)
                save_checkpoint(self.run_dir, self.checkpoint())
                self.wandb.log_epoch(record)
                progress.epoch_done(record)
        finally:
            progress.close()
            self.meter.close()
        summary = summarize(self.records, self.config.job_id, list(self.config.data.test_envs))
        model = {"state_dict": self.algorithm.state_dict(), **self.config.to_dict()}
        evaluated = self.evaluation_model()
        if evaluated is not self.algorithm:  # an averaging mode's model: the one the last record reports
            model |= {EVALUATED_MODEL: self.records[-1][EVALUATED_MODEL], "evaluated_state_dict": evaluated.state_dict()}
        atomic_write(self.run_dir / "model.pt", lambda handle: torch.save(model, handle))
        atomic_write_json(self.run_dir / "summary.json", summary)
        self.wandb.finish(summary)
        (self.run_dir / "failed.json").unlink(missing_ok=True)  # an earlier attempt's failure
        (self.run_dir / "done").touch()
        return summary

    def run_epoch(self, plan: EpochPlan, progress: Progress) -> dict[str, Any]:
        for mode in self.modes:
            mode.plan_epoch(plan)
        start = time.perf_counter()
        with self.meter.phase("train") as train_reading:
            if plan.kind == BACKPROP:
                losses, flops = self.train_epoch(progress)
            else:
                next(m for m in self.modes if plan.owner == m.NAME).run_epoch(self.algorithm, plan)
                self.step += self.schedule.steps_of(plan.epoch)  # the LR schedule advances as if it ran
                losses, flops = {}, 0
        self.check_finite(plan.epoch, losses)
        for mode in self.modes:
            mode.after_epoch(self.algorithm, plan)
        with self.meter.phase("eval") as eval_reading:
            pause_here("eval", plan.epoch, self.run_dir)
            evaluation = self.evaluate_model(self.evaluation_model())
        for mode in self.modes:
            mode.after_evaluation(plan, evaluation)
        trains, evals = [train_reading], [eval_reading]
        if plan.epoch == self.epochs:
            evaluation = self.final_evaluation(evaluation, trains, evals)
        return make_record(
            base={"args": self.config.args, "hparams": dict(self.config.hparams), "weights": self.backbone.weights},
            previous=self.records[-1] if self.records else None, epoch=plan.epoch,
            step=self.step - 1,  # DomainBed's step: the index of the last update (schedule.py)
            test_envs=list(self.config.data.test_envs), kind=plan.kind, epoch_kinds=self.epoch_kinds(),
            mode_fields=self.mode_fields(plan), losses=losses, flops=flops, accuracies=evaluation.accuracies,
            scores=evaluation.scores,
            train_joules=_joules(trains), eval_joules=_joules(evals), energy_source=self.meter.source,
            train_seconds=sum(r.seconds for r in trains), eval_seconds=sum(r.seconds for r in evals),
            epoch_seconds=time.perf_counter() - start,
        )

    def evaluate_model(self, model: torch.nn.Module) -> Evaluation:
        self.last_evaluated = model
        evaluation = evaluate(model, self.data.eval_splits, self.eval_transform, self.config.system.eval_batch_size,
                              self.autocast, self.config.data.test_envs, self.augmented_eval_transforms(),
                              self.per_class_of)
        if self.config.data.task == schema.DOMAIN_ADAPTATION:
            evaluation = replace(evaluation, scores=self.adaptation_scores(model, evaluation))
        return evaluation

    def adaptation_scores(self, model: torch.nn.Module, evaluation: Evaluation) -> dict[str, float | None]:
        """Label-free validation scores of a DA run (``adaptation_scores``), subsets seeded by the epoch."""
        sources, targets = schema.adaptation_domains(self.config.args, self.data.splits.num_domains)
        splits = self.data.eval_splits
        return adaptation_scores(
            model, evaluation.accuracies, [splits[f"env{s}_in"] for s in sources],
            [splits[f"env{s}_out"] for s in sources], self.data.unlabeled or [splits[f"env{t}_in"] for t in targets],
            sources, self.eval_transform, self.config.system.eval_batch_size, self.autocast,
            seed_hash(self.config.seed, "adaptation_scores", self.epoch + 1))

    def augmented_eval_transforms(self) -> dict[str, Any]:
        """``--eval_augmentation train_domains`` (DomainBed's datasets): the training domains' in
        and out splits go through the training augmentation, drawn from a generator seeded by
        the epoch being evaluated (so a resumed run draws the same)."""
        if self.config.data.eval_augmentation != "train_domains":
            return {}
        seed = seed_hash(self.config.seed, "eval_augmentation", self.epoch + 1)
        augment = partial(self.train_transform, generator=torch.Generator(self.device).manual_seed(seed))
        return {f"env{env}_{part}": augment for env in self.data.splits.train_envs for part in ("in", "out")}

    def final_evaluation(self, evaluation: Evaluation, trains: list, evals: list) -> Evaluation:
        """After the last epoch's evaluation: the modes' final model (SWAD's window average with
        BatchNorm re-estimated; metered as training, appended to ``trains``) and, when it is
        another model than the one just evaluated, its evaluation, which the last record reports."""
        evaluated = model = self.evaluation_model()
        with self.meter.phase("train") as reading, self.autocast:
            for mode in self.modes:
                model = mode.final_model(model, self.training_inputs())
        if model is evaluated:
            return evaluation
        trains.append(reading)
        with self.meter.phase("eval") as reading:
            evaluation = self.evaluate_model(model)
        evals.append(reading)
        return evaluation

    def training_inputs(self) -> Iterator[torch.Tensor]:
        """Endless augmented training inputs for the modes: one minibatch per training domain, concatenated."""
        while True:
            yield torch.cat([self.augment(batches.next()[0]) for batches in self.train_batches])

    def train_epoch(self, progress: Progress) -> tuple[dict[str, float], int]:
        """The epoch's updates (``schedule``); losses are summed on the device, synced once at the end.

        FLOPs are counted (forward + backward of ``algorithm.update``) on the first
        ``flops_cycle`` steps, the span after which an algorithm's op pattern repeats
        (DANN alternates discriminator and generator steps), and scaled to the epoch.
        """
        self.algorithm.train()
        sums: dict[str, torch.Tensor] = {}
        steps = self.schedule.steps_of(self.epoch + 1)
        cycle = min(steps, max(1, int(self.algorithm.flops_cycle)))
        counted_flops = 0
        for index in range(steps):
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
            for mode in self.modes:
                mode.after_step(self.algorithm, self.step)
            progress.step()
            if index == 0:
                pause_here("train", self.epoch + 1, self.run_dir)
        means = {name: float(total) / steps for name, total in sums.items()}
        return means, round(counted_flops * steps / cycle)

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
        """Multiply every optimizer group's initial LR by the schedule's factor at this step:
        cosine (1 + cos(pi * step / T)) / 2, or tllib's inverse decay (1 + gamma * step) ** -decay."""
        hparams = self.config.hparams
        if hparams["lr_schedule"] == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * min(self.step, self.total_steps) / self.total_steps))
        elif hparams["lr_schedule"] == "inverse_decay":
            factor = (1.0 + hparams["lr_gamma"] * self.step) ** (-hparams["lr_decay"])
        else:
            return
        for optimizer in self.algorithm.optimizers():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor

    def evaluation_model(self) -> torch.nn.Module:
        model: torch.nn.Module = self.algorithm
        for mode in self.modes:
            model = mode.evaluation_model(model)
        return model

    def epoch_kinds(self) -> tuple[str, ...]:
        """Every epoch kind a registered mode can plan (each gets a ``<kind>_epochs`` count)."""
        return tuple(kind for name in MODES.in_registration_order() for kind in MODES.get(name).EPOCH_KINDS)

    def mode_fields(self, plan: EpochPlan) -> dict[str, Any]:
        """Each registered mode's results fields: its own when on, its 'off' values when off."""
        active = {mode.NAME: mode for mode in self.modes}
        fields: dict[str, Any] = {}
        for name in MODES.in_registration_order():
            mode = active.get(name)
            fields.update(mode.record_fields(plan) if mode else MODES.get(name).inactive_record_fields(plan))
        return fields

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
        if (self.run_dir / CHECKPOINT_NAME).exists():
            kept = f"the last good checkpoint (epoch {self.epoch}) is kept in {self.run_dir}"
        else:
            kept = f"no checkpoint was written before it (details in {self.run_dir / 'failed.json'})"
        raise NonFiniteLoss(f"{reason}; {kept}")

    # ----------------------------------------------------------------------------- state
    def state_parts(self) -> dict[str, trainer_state.Stateful]:
        """Everything a resumed run needs, by name: the checkpoint is derived from this map."""
        return {
            "loop": self,
            "algorithm": self.algorithm,
            "optimizers": trainer_state.Each("optimizers", self.algorithm.optimizers()),
            "rng": trainer_state.GlobalRNG(),
            "generators": trainer_state.Generators(self.generators),
            "train_batches": trainer_state.Each("training domains", self.train_batches),
            "unlabeled_batches": trainer_state.Each("target domains", self.unlabeled_batches),
            **{f"mode:{mode.NAME}": mode for mode in self.modes},
        }

    def state_dict(self) -> dict[str, Any]:
        """The loop's own counters and the records so far."""
        return {"epoch": self.epoch, "step": self.step, "records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.step, self.records = state["epoch"], state["step"], state["records"]

    def checkpoint(self) -> dict[str, Any]:
        return {"format": trainer_state.FORMAT, "job_id": self.config.job_id, "device_type": self.device.type,
                "epoch": self.epoch, "parts": trainer_state.save_parts(self.state_parts())}

    def resume(self) -> None:
        """Continue from the last complete epoch if this run directory holds a checkpoint."""
        remove_stale_temp_files(self.run_dir)  # half-written files of a killed process
        if self.existing.checkpoint is None:
            return
        checkpoint = trainer_state.upgrade(self.existing.checkpoint, self.config.active_modes)
        if checkpoint.get("device_type") not in (None, self.device.type):
            raise UserError(
                f"{self.run_dir} was checkpointed on {checkpoint['device_type']}; resume it on the same kind of "
                "device (--device) or pass --no_resume to start over"
            )
        trainer_state.load_parts(self.state_parts(), checkpoint["parts"], str(self.run_dir))
        atomic_write_jsonl(self.run_dir / "results.jsonl", self.records)
        print(f"resuming {self.run_dir} after epoch {self.epoch}", file=sys.stderr)


def _joules(readings: list) -> float | None:
    """Energy of several phase readings (J); None when any is unmeasured."""
    values = [reading.joules for reading in readings]
    return None if None in values else sum(values)
