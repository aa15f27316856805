"""Gradient reversal (Ganin & Lempitsky, ICML 2015) and its warm-start schedule.

    forward:  R_λ(x) = x
    backward: ∂L/∂x  = -λ · ∂L/∂R_λ(x)

Placed between a featurizer and a domain discriminator, one backward pass trains the
discriminator to tell domains apart and the featurizer to make them indistinguishable.

Warm start (Ganin et al., JMLR 2016, §5.2.2; tllib's ``WarmStartGradientReverseLayer``):
λ grows from ``lo`` to ``hi`` so the noisy early discriminator does not swamp the
classifier,

    λ(i) = lo + (hi - lo) · (2 / (1 + exp(-α · i / N)) - 1)

with ``i`` the number of steps taken so far and ``N`` the warm-up length (λ reaches
~``hi`` at i ≈ N for α = 10). ``N = 0`` means no warm-up: λ = hi from the first step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from dgsamp.algorithms.counter import StepCounter


class GradientReverseFunction(torch.autograd.Function):
    """Identity forward, gradient multiplied by ``-coefficient`` backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return grad_output.neg() * ctx.coefficient, None


def reverse_gradient(x: Tensor, coefficient: float = 1.0) -> Tensor:
    """R_λ(x) for any tensor shape; ``coefficient`` is a Python float (no device read)."""
    return GradientReverseFunction.apply(x, float(coefficient))


def warm_start_coefficient(
    step: int, max_iters: int, alpha: float = 10.0, lo: float = 0.0, hi: float = 1.0
) -> float:
    """λ(i) = lo + (hi - lo)(2 / (1 + exp(-α i / N)) - 1); ``hi`` when ``max_iters <= 0``."""
    if max_iters <= 0:
        return hi
    progress = step / max_iters
    return lo + (hi - lo) * (2.0 / (1.0 + math.exp(-alpha * progress)) - 1.0)


class GradientReverseLayer(nn.Module):
    """R_λ with a constant λ."""

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = coefficient

    def forward(self, x: Tensor) -> Tensor:
        return reverse_gradient(x, self.coefficient)


class WarmStartGradientReverseLayer(nn.Module):
    """R_λ(i) with the warm-start schedule; the step ``i`` is saved in ``state_dict``.

    ``auto_step=True`` advances ``i`` after every forward; otherwise call ``step()``.
    """

    def __init__(
        self,
        alpha: float = 10.0,
        lo: float = 0.0,
        hi: float = 1.0,
        max_iters: int = 1000,
        auto_step: bool = False,
    ) -> None:
        super().__init__()
        self.alpha, self.lo, self.hi, self.max_iters = alpha, lo, hi, max_iters
        self.auto_step = auto_step
        self.steps = StepCounter()

    @property
    def coefficient(self) -> float:
        return warm_start_coefficient(self.steps.value, self.max_iters, self.alpha, self.lo, self.hi)

    def step(self) -> None:
        self.steps.increment()

    def forward(self, x: Tensor) -> Tensor:
        output = reverse_gradient(x, self.coefficient)
        if self.auto_step:
            self.step()
        return output
