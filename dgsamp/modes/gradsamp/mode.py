"""GradSamp as a training mode: some epochs draw the update instead of backpropagating.

On an epoch the schedule samples, no data is read: every trainable tensor moves by a
Gaussian draw fitted to its change over the two previous epochs (see ``sampler.py`` for
the math, ``schedule.py`` for which epochs). The LR schedule advances as if the epoch had
run, BatchNorm buffers and optimizer state are untouched.
``--gradsamp_dist skip`` keeps the schedule and cost but leaves the weights unchanged:
the equal-compute control of the leaderboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dgsamp.errors import UserError
from dgsamp.modes.base import EpochPlan, Option, RunShape, TrainingMode
from dgsamp.modes.gradsamp.sampler import GRADSAMP_DISTS, GradSampler
from dgsamp.modes.gradsamp.schedule import (
    DEFAULT_WARMUP,
    GRADSAMP_MODES,
    OPTION_RULES,
    GradSampSchedule,
)
from dgsamp.registry import register_mode
from dgsamp.utils.seeding import seed_hash


def _on(options: Mapping[str, Any]) -> bool:
    return options["gradsamp"] != "off"


@register_mode("gradsamp")
class GradSampMode(TrainingMode):
    """GradSamp (arXiv 2406.07332): sampled epochs replace backprop on a schedule."""

    EPOCH_KINDS = ("gradsamp",)
    OPTIONS = {
        "gradsamp": Option("off", "which epochs skip backprop and sample the update instead "
                           "(GradSamp, arXiv 2406.07332)", choices=GRADSAMP_MODES),
        "gradsamp_period": Option(
            3, "periodic: every K-th epoch is sampled",
            check=OPTION_RULES["gradsamp_period"],
            applies=lambda o: o["gradsamp"] == "periodic", requires="--gradsamp periodic"),
        "gradsamp_prob": Option(
            0.3, "random: probability an epoch is sampled",
            check=OPTION_RULES["gradsamp_prob"],
            applies=lambda o: o["gradsamp"] == "random", requires="--gradsamp random"),
        "gradsamp_warmup": Option(
            DEFAULT_WARMUP, "first W epochs always backprop (>= 2)",
            check=OPTION_RULES["gradsamp_warmup"],
            applies=_on, requires="--gradsamp periodic|random"),
        "gradsamp_dist": Option(
            "layer", "layer: N(mean, std) of the last change per tensor; element: N(delta_i, "
            "(s*|delta_i|)^2); skip: leave parameters unchanged (equal-compute control)",
            choices=GRADSAMP_DISTS, applies=_on, requires="--gradsamp periodic|random"),
        "gradsamp_scale": Option(
            1.0, "element: the s above",
            check=lambda v: None if v >= 0 else f"must be non-negative (got {v})",
            applies=lambda o: _on(o) and o["gradsamp_dist"] == "element",
            requires="--gradsamp_dist element"),
        "gradsamp_allow_consecutive": Option(
            False, "random: allow two sampled epochs in a row",
            applies=lambda o: o["gradsamp"] == "random", requires="--gradsamp random"),
    }

    @classmethod
    def schedule(cls, options: Mapping[str, Any], seed: int) -> GradSampSchedule:
        return GradSampSchedule(options["gradsamp"], options["gradsamp_period"], options["gradsamp_prob"],
                                options["gradsamp_warmup"], options["gradsamp_allow_consecutive"], seed)

    @classmethod
    def validate(cls, options: Mapping[str, Any], run: RunShape) -> None:
        sampled = cls.schedule(options, run.seed).counts(run.epochs)[1]
        if sampled == 0:
            raise UserError(
                f"--gradsamp {options['gradsamp']} samples no epoch of this {run.epochs}-epoch run "
                f"(warm-up {options['gradsamp_warmup']}); raise --epochs or lower --gradsamp_warmup"
                + (", --gradsamp_period" if options["gradsamp"] == "periodic" else ", raise --gradsamp_prob")
            )

    @classmethod
    def variant_label(cls, fields: Mapping[str, Any]) -> str:
        if fields["gradsamp"] == "periodic":
            inner = [f"K={_num(fields['gradsamp_period'])}"]
        elif fields["gradsamp"] == "random":
            inner = [f"p={_num(fields['gradsamp_prob'])}"]
        else:
            inner = [str(fields["gradsamp"])]
        inner.append(str(fields.get("gradsamp_dist", "layer")))
        if fields.get("gradsamp_scale") not in (None, 1, 1.0):
            inner.append(f"s={_num(fields['gradsamp_scale'])}")
        if fields.get("gradsamp_warmup") not in (None, DEFAULT_WARMUP):
            inner.append(f"warmup={fields['gradsamp_warmup']}")
        if fields.get("gradsamp_allow_consecutive"):
            inner.append("consecutive")
        return f"GradSamp({', '.join(inner)})"

    def __init__(self, options: Mapping[str, Any], run: RunShape) -> None:
        super().__init__(options, run)
        self.plan = self.schedule(options, run.seed)
        self.sampler: GradSampler | None = None
        self.generator: torch.Generator | None = None

    def setup(self, algorithm: nn.Module, device: torch.device) -> None:
        trainable = [p for p in algorithm.parameters() if p.requires_grad]
        self.sampler = GradSampler(trainable, self.options["gradsamp_dist"], self.options["gradsamp_scale"])
        self.generator = torch.Generator(device).manual_seed(seed_hash(self.run.seed, "gradsamp"))

    def plan_epoch(self, plan: EpochPlan) -> None:
        if self.plan.is_sampled(plan.epoch):
            plan.take_over(self.NAME, "gradsamp")

    def run_epoch(self, algorithm: nn.Module, plan: EpochPlan) -> None:
        assert self.sampler is not None and self.generator is not None
        self.sampler.step(self.generator)

    def after_epoch(self, algorithm: nn.Module, plan: EpochPlan) -> None:
        assert self.sampler is not None
        self.sampler.record()  # θ(e) becomes the newest snapshot

    def state_dict(self) -> dict[str, Any]:
        assert self.sampler is not None and self.generator is not None
        return {"sampler": self.sampler.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.sampler is not None and self.generator is not None
        self.sampler.load_state_dict(state["sampler"])
        self.generator.set_state(state["generator"])


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
