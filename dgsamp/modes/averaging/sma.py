"""SMA: evaluate the simple moving average of the weights from a start step on (SWA as
Arpit et al. 2022 use it for DG, "Ensemble of Averages"; default start: step 100).

After every optimizer step t >= s (``--sma_start_step``; t counts the updates from 1, as
EoA's ``sma_start_iter``; the results' ``step`` of update t is t - 1)::

    n <- n + 1;   w_sma <- w_sma + (w_t - w_sma) / n      every floating-point state entry

so after step t, w_sma = mean(w_s, ..., w_t) over the snapshots taken. BatchNorm buffers
are averaged like the weights and not recomputed (as EoA's code does). Until the first
snapshot the evaluated model is the online one (``evaluated_model: "online"``), then the
average (``"sma"``). A GradSamp epoch makes no optimizer step and adds no snapshot (its
step numbers pass unaveraged); its sampled jump enters through the steps after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dgsamp.errors import UserError
from dgsamp.modes.averaging.weights import averaged_copy, lerp_state_
from dgsamp.modes.base import EpochPlan, Option, RunShape, TrainingMode
from dgsamp.registry import register_mode
from dgsamp.tracking.schema import EVALUATED_MODEL, ONLINE


def _check_start(value: int) -> str | None:
    return None if int(value) == value and value >= 1 else f"must be an integer >= 1, got {value}"


@register_mode("sma")
class SMAMode(TrainingMode):
    """SMA: evaluate the simple moving average of the weights from a start step on."""

    CHOOSES_EVALUATED_MODEL = True
    OPTIONS = {
        "sma": Option(False, "evaluate the simple moving average of the weights (SWA/SMA, Arpit et al. 2022)"),
        "sma_start_step": Option(100, "first update (counted from 1, as EoA's sma_start_iter) whose "
                                 "weights enter the average",
                                 check=_check_start, applies=lambda o: o["sma"], requires="--sma"),
    }

    @classmethod
    def validate(cls, options: Mapping[str, Any], run: RunShape) -> None:
        start = options["sma_start_step"]
        if run.total_steps is not None and start > run.total_steps:
            raise UserError(f"--sma_start_step {start} is beyond this run's {run.total_steps} updates, so nothing "
                            "would be averaged; lower --sma_start_step or train longer")

    @classmethod
    def variant_label(cls, fields: Mapping[str, Any]) -> str:
        return f"SMA(from {fields.get('sma_start_step', cls.OPTIONS['sma_start_step'].default)})"

    def setup(self, algorithm: nn.Module, device: torch.device) -> None:
        self.average = averaged_copy(algorithm)
        self.count = 0

    def after_step(self, algorithm: nn.Module, step: int) -> None:
        if step < self.options["sma_start_step"]:
            return
        self.count += 1
        lerp_state_(self.average, algorithm, 1.0 / self.count)

    def evaluation_model(self, model: nn.Module) -> nn.Module:
        return self.average if self.count else model

    def record_fields(self, plan: EpochPlan) -> dict[str, Any]:
        return {EVALUATED_MODEL: "sma" if self.count else ONLINE}

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average.state_dict(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.load_state_dict(state["average"])
        self.count = int(state["count"])
