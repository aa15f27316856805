"""EMA: evaluate an exponential moving average of the weights (timm's ModelEma; the flags
are timm's ``--model-ema``, ``--model-ema-decay``, ``--model-ema-warmup``: ``--ema`` is
Fishr's hyperparameter).

After every optimizer step t (1-based, the trainer's global step)::

    w_ema <- d_t * w_ema + (1 - d_t) * w_t        every floating-point entry of the state
    d_t = d                                        (default)
    d_t = min(d, 1 - t^(-2/3))                     (--model_ema_warmup; timm ModelEmaV3, gamma 1, power 2/3)

starting from w_ema = w_0 (the initial weights); BatchNorm buffers are averaged like the
weights and not recomputed (as timm does). Without warm-up, after k steps

    w_ema = d^k w_0 + (1 - d) sum_{i=1..k} d^(k-i) w_i.

The evaluated model is w_ema from the first epoch on. A GradSamp epoch makes no optimizer
step, so it adds no term: its sampled jump reaches the average through the steps after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dgsamp.modes.averaging.weights import averaged_copy, lerp_state_
from dgsamp.modes.base import EpochPlan, Option, TrainingMode
from dgsamp.registry import register_mode
from dgsamp.tracking.schema import EVALUATED_MODEL

WARMUP_POWER = 2.0 / 3.0


def decay_at(step: int, decay: float, warmup: bool) -> float:
    """d_t of step ``step`` (1-based): ``decay``, or timm's warm-up capped at ``decay``
    (0 at step 1, so the average starts as a copy of the weights after the first step)."""
    if not warmup:
        return decay
    return min(decay, 1.0 - max(step, 1) ** -WARMUP_POWER)


def _check_decay(value: float) -> str | None:
    return None if 0.0 < value < 1.0 else f"must be in (0, 1), got {value}"


@register_mode("model_ema")
class EMAMode(TrainingMode):
    """EMA: evaluate an exponential moving average of the weights, updated every step."""

    CHOOSES_EVALUATED_MODEL = True
    OPTIONS = {
        "model_ema": Option(False, "evaluate an exponential moving average of the weights (timm's ModelEma)"),
        "model_ema_decay": Option(0.999, "the decay d: w_ema <- d w_ema + (1 - d) w after every optimizer step",
                                  check=_check_decay, applies=lambda o: o["model_ema"], requires="--model_ema"),
        "model_ema_warmup": Option(False, "timm's decay warm-up: d_t = min(d, 1 - t^(-2/3))",
                                   applies=lambda o: o["model_ema"], requires="--model_ema"),
    }

    @classmethod
    def variant_label(cls, fields: Mapping[str, Any]) -> str:
        inner = [str(fields.get("model_ema_decay", cls.OPTIONS["model_ema_decay"].default))]
        if fields.get("model_ema_warmup"):
            inner.append("warm-up")
        return f"EMA({', '.join(inner)})"

    def setup(self, algorithm: nn.Module, device: torch.device) -> None:
        self.average = averaged_copy(algorithm)

    def after_step(self, algorithm: nn.Module, step: int) -> None:
        decay = decay_at(step, self.options["model_ema_decay"], self.options["model_ema_warmup"])
        lerp_state_(self.average, algorithm, 1.0 - decay)

    def evaluation_model(self, model: nn.Module) -> nn.Module:
        return self.average

    def record_fields(self, plan: EpochPlan) -> dict[str, Any]:
        return {EVALUATED_MODEL: "ema"}

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.load_state_dict(state["average"])
