"""SWAD: dense weight averaging over the overfit-aware loss valley (Cha et al., NeurIPS 2021).

Each backprop epoch is one segment: its weights are averaged after every optimizer step
(dense), and at its evaluation the online model's training-domain validation loss
(mean cross-entropy on the training domains' out-splits, SWAD's ``tr_outloss``) decides,
through :class:`~dgsamp.modes.averaging.valley.LossValley` (published defaults
n_converge 3, n_tolerance 6, tolerance_ratio 0.3), which segments form the window. After
the last epoch the final model is the uniform average of the window's steps, its
BatchNorm statistics re-estimated from ``--swad_bn_steps`` training batches (500, as the
reference code; skipped for frozen BatchNorm), and the last results line reports it
(``evaluated_model: "swad"``); the lines before report the online model, as SWAD's own
logs do. Training runs to its configured length (the reference stops once the valley
closes; here runs stay comparable at equal budgets).

Parameters are averaged, buffers come from the online model before BatchNorm is
re-estimated. A GradSamp epoch makes no optimizer step, so it ends no segment and its
loss is not fed to the valley.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from dgsamp.errors import UserError
from dgsamp.modes.averaging.batchnorm import recompute_batchnorm
from dgsamp.modes.averaging.valley import LossValley
from dgsamp.modes.averaging.weights import (
    averaged_copy,
    load_parameters_,
    parameters_of,
    running_mean_,
)
from dgsamp.modes.base import EpochPlan, Evaluation, Option, RunShape, TrainingMode
from dgsamp.registry import register_mode
from dgsamp.tracking.schema import EVALUATED_MODEL, ONLINE

DEFAULTS = {"swad_n_converge": 3, "swad_n_tolerance": 6, "swad_tolerance_ratio": 0.3, "swad_bn_steps": 500}


def _integer_at_least(minimum: int):
    def check(value: Any) -> str | None:
        return None if int(value) == value and value >= minimum else f"must be an integer >= {minimum}, got {value}"

    return check


def _on(options: Mapping[str, Any]) -> bool:
    return bool(options["swad"])


@register_mode("swad")
class SWADMode(TrainingMode):
    """SWAD: evaluate the dense weight average over the validation-loss valley."""

    CHOOSES_EVALUATED_MODEL = True
    OPTIONS = {
        "swad": Option(False, "evaluate SWAD's dense weight average over the loss valley at the end "
                       "(Cha et al. 2021)"),
        "swad_n_converge": Option(DEFAULTS["swad_n_converge"], "epochs the validation loss must stop "
                                  "falling for the window to start", check=_integer_at_least(1),
                                  applies=_on, requires="--swad"),
        "swad_n_tolerance": Option(DEFAULTS["swad_n_tolerance"], "look-ahead epochs that decide whether "
                                   "an epoch stays in the window", check=_integer_at_least(1),
                                   applies=_on, requires="--swad"),
        "swad_tolerance_ratio": Option(DEFAULTS["swad_tolerance_ratio"], "the window closes once the loss "
                                       "exceeds (1 + ratio) x its mean at the start",
                                       check=lambda v: None if v >= 0 else f"must be >= 0, got {v}",
                                       applies=_on, requires="--swad"),
        "swad_bn_steps": Option(DEFAULTS["swad_bn_steps"], "training batches that re-estimate BatchNorm "
                                "statistics of the final average (0: keep the online model's)",
                                check=_integer_at_least(0), applies=_on, requires="--swad"),
    }

    @classmethod
    def validate(cls, options: Mapping[str, Any], run: RunShape) -> None:
        if run.epochs < options["swad_n_converge"]:
            raise UserError(f"--swad needs at least {options['swad_n_converge']} epochs (--swad_n_converge) to "
                            f"find a loss valley; this run has {run.epochs}: raise --epochs")

    @classmethod
    def variant_label(cls, fields: Mapping[str, Any]) -> str:
        changed = [f"{name.removeprefix('swad_')}={fields[name]}" for name, default in DEFAULTS.items()
                   if name in fields and fields[name] != default]
        return f"SWAD({', '.join(changed)})" if changed else "SWAD"

    def setup(self, algorithm: nn.Module, device: torch.device) -> None:
        self.algorithm = algorithm
        self.valley = LossValley(self.options["swad_n_converge"], self.options["swad_n_tolerance"],
                                 self.options["swad_tolerance_ratio"])
        self.segment = [torch.zeros_like(p) for p in parameters_of(algorithm)]  # running mean, on the device
        self.segment_size = 0
        self.segment_steps: list[int] = []  # [first, last] step of the open segment
        self.stored: dict[int, dict[str, Any]] = {}  # undecided segments: {"weights" (CPU), "steps"}
        self.window: list[Tensor] | None = None  # running mean of the joined segments (CPU)
        self.window_size = 0
        self.window_steps: list[int] = []
        self.fed_loss: float | None = None  # the loss fed to the valley this epoch
        self.final: nn.Module | None = None

    def after_step(self, algorithm: nn.Module, step: int) -> None:
        if self.valley.dead:
            return  # the window is closed: nothing more can join it
        self.segment_size += 1
        self.segment_steps = [self.segment_steps[0] if self.segment_steps else step, step]
        running_mean_(self.segment, parameters_of(algorithm), self.segment_size)

    def after_evaluation(self, plan: EpochPlan, evaluation: Evaluation) -> None:
        self.fed_loss = None
        if not self.segment_size:
            return  # no optimizer step since the last evaluation (a GradSamp epoch), or closed
        index = len(self.valley.losses)
        self.stored[index] = {"weights": [t.to("cpu", copy=True) for t in self.segment], "steps": self.segment_steps}
        self.segment_size, self.segment_steps = 0, []
        self.fed_loss = evaluation.validation_loss
        self.join(self.valley.add(self.fed_loss))

    def join(self, indices: list[int]) -> None:
        """Fold the segments that joined the window into its mean; drop the decided ones."""
        for index in indices:
            segment = self.stored[index]
            self.window_size += 1
            if self.window is None:
                self.window = [torch.empty_like(t) for t in segment["weights"]]
            running_mean_(self.window, segment["weights"], self.window_size)
            self.window_steps = [self.window_steps[0] if self.window_steps else segment["steps"][0],
                                 segment["steps"][1]]
        keep = self.valley.undecided
        self.stored = {index: segment for index, segment in self.stored.items() if index in keep}

    def final_model(self, model: nn.Module, training_inputs: Iterator[Tensor]) -> nn.Module:
        last = self.stored.get(len(self.valley.losses) - 1)
        self.join(self.valley.finish())
        weights = self.window
        if not self.valley.converged:
            if last is None:
                return model
            print(f"SWAD: the validation loss found no valley in {len(self.valley.losses)} epochs; "
                  "evaluating the average of the last epoch's steps", file=sys.stderr)
            weights, self.window_steps = last["weights"], last["steps"]
        assert weights is not None
        final = averaged_copy(self.algorithm)
        load_parameters_(final, weights)
        recompute_batchnorm(final, training_inputs, self.options["swad_bn_steps"])
        self.final, self.window, self.stored = final.eval(), None, {}
        return self.final

    def evaluation_model(self, model: nn.Module) -> nn.Module:
        return self.final if self.final is not None else model

    def record_fields(self, plan: EpochPlan) -> dict[str, Any]:
        """The window so far in the results' ``step`` numbering (index of the update, from 0)."""
        first, last = (step - 1 for step in self.window_steps) if self.window_steps else (None, None)
        return {EVALUATED_MODEL: "swad" if self.final is not None else ONLINE, "swad_val_loss": self.fed_loss,
                "swad_start_step": first, "swad_end_step": last}

    def state_dict(self) -> dict[str, Any]:
        return {"segment": self.segment, "segment_size": self.segment_size, "segment_steps": self.segment_steps,
                "stored": self.stored,
                "window": self.window, "window_size": self.window_size, "window_steps": self.window_steps,
                "valley": self.valley.state_dict(), "fed_loss": self.fed_loss,
                "final": None if self.final is None else self.final.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch._foreach_copy_(self.segment, list(state["segment"]))
        self.segment_size, self.segment_steps = int(state["segment_size"]), list(state["segment_steps"])
        self.stored = dict(state["stored"])
        self.window, self.window_size = state["window"], int(state["window_size"])
        self.window_steps, self.fed_loss = list(state["window_steps"]), state["fed_loss"]
        self.valley.load_state_dict(state["valley"])
        self.final = None
        if state["final"] is not None:
            self.final = averaged_copy(self.algorithm)
            self.final.load_state_dict(state["final"])
