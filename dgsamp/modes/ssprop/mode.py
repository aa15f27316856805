"""ssProp as a training mode: backprop epochs compute gradients for a scheduled fraction
of every convolution's output channels (arXiv 2408.12561).

Each backprop epoch gets a keep rate from the schedule (``schedule.py``); the featurizer's
convolutions keep the top-k output channels by mean |dL/dy| and backpropagate only
those (``sparse_conv.py``, ``function.py``). Keep 1.0 is exactly dense.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dgsamp.errors import UserError
from dgsamp.modes.base import BACKPROP, EpochPlan, Option, RunShape, TrainingMode
from dgsamp.modes.ssprop.schedule import SSPROP_KINDS, SSPropSchedule
from dgsamp.modes.ssprop.sparse_conv import SSPropController, enable_ssprop
from dgsamp.registry import register_mode


def _on(options: Mapping[str, Any]) -> bool:
    return options["ssprop"] != "off"


def _fraction(value: Any) -> str | None:
    return None if 0.0 < value <= 1.0 else f"must be in (0, 1] (got {value})"


@register_mode("ssprop")
class SSPropMode(TrainingMode):
    """Scheduled sparse backpropagation of the featurizer's convolutions."""

    OPTIONS = {
        "ssprop": Option("off", "schedule of the fraction of conv output channels that get gradients "
                         "(ssProp, arXiv 2408.12561)", choices=SSPROP_KINDS),
        "ssprop_keep": Option(0.2, "keep rate (start of the schedule)", check=_fraction,
                              applies=_on, requires="--ssprop constant|linear|cosine|bar"),
        "ssprop_keep_min": Option(0.2, "keep rate at the end of the schedule", check=_fraction,
                                  applies=lambda o: _on(o) and o["ssprop"] != "constant",
                                  requires="--ssprop linear|cosine|bar"),
        "ssprop_warmup": Option(
            0, "first epochs dense",
            check=lambda v: None if int(v) == v and v >= 0 else f"must be an integer >= 0 (got {v})",
            applies=_on, requires="--ssprop constant|linear|cosine|bar"),
        "ssprop_interleave": Option(False, "alternate dense and sparse epochs", applies=_on,
                                    requires="--ssprop constant|linear|cosine|bar"),
    }

    @classmethod
    def schedule(cls, options: Mapping[str, Any], epochs: int) -> SSPropSchedule:
        return SSPropSchedule(options["ssprop"], options["ssprop_keep"], options["ssprop_keep_min"],
                              options["ssprop_warmup"], options["ssprop_interleave"], epochs)

    @classmethod
    def validate(cls, options: Mapping[str, Any], run: RunShape) -> None:
        schedule = cls.schedule(options, run.epochs)  # checks keep_min <= keep
        if all(schedule.keep(epoch) == 1.0 for epoch in range(1, run.epochs + 1)):
            raise UserError(
                f"--ssprop {options['ssprop']} keeps every epoch of this {run.epochs}-epoch run dense "
                f"(warm-up {options['ssprop_warmup']}, keep {options['ssprop_keep']}); raise --epochs, "
                "lower --ssprop_warmup or --ssprop_keep"
            )

    @classmethod
    def inactive_record_fields(cls, plan: EpochPlan) -> dict[str, Any]:
        return {"ssprop_keep": 1.0 if plan.kind == BACKPROP else None}

    @classmethod
    def variant_label(cls, fields: Mapping[str, Any]) -> str:
        keep = _num(fields["ssprop_keep"])
        if fields.get("ssprop_keep_min") is not None:
            keep = f"{keep}→{_num(fields['ssprop_keep_min'])}"
        inner = [str(fields["ssprop"]), f"keep={keep}"]
        if fields.get("ssprop_warmup"):
            inner.append(f"warmup={fields['ssprop_warmup']}")
        if fields.get("ssprop_interleave"):
            inner.append("interleave")
        return f"ssProp({', '.join(inner)})"

    def __init__(self, options: Mapping[str, Any], run: RunShape) -> None:
        super().__init__(options, run)
        self.keeps = self.schedule(options, run.epochs)
        self.controller: SSPropController | None = None

    def setup(self, algorithm: nn.Module, device: torch.device) -> None:
        self.controller = enable_ssprop(algorithm.featurizer)

    def plan_epoch(self, plan: EpochPlan) -> None:
        assert self.controller is not None
        keep = self.keeps.keep(plan.epoch)
        plan.settings["ssprop_keep"] = keep
        self.controller.set_keep(keep)

    def record_fields(self, plan: EpochPlan) -> dict[str, Any]:
        return {"ssprop_keep": plan.settings["ssprop_keep"] if plan.kind == BACKPROP else None}


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
