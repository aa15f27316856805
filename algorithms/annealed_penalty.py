"""Shared base of IRM and V-REx: a penalty whose weight jumps after an annealing period.

    L_t = R + β_t · P,      β_t = 1 for t < T,  β_t = λ for t ≥ T

with T = ``<name>_penalty_anneal_iters`` and λ = ``<name>_lambda``. At t = T Adam's moment
estimates are reset (DomainBed builds a new Adam; clearing the state of the same optimizer
is identical and keeps an LR schedule bound to it). The step count is a ``StepCounter``
buffer, so a resumed run keeps the schedule.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.counter import StepCounter


class AnnealedPenaltyAlgorithm(Algorithm):
    """Subclasses name their two hparams and call ``penalty_weight()`` and ``optimize(loss)``."""

    LAMBDA_HPARAM: ClassVar[str]
    ANNEAL_HPARAM: ClassVar[str]

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.steps = StepCounter()
        self.optimizer = self.default_optimizer()

    def penalty_weight(self) -> float:
        """β_t for the current step t."""
        annealed = self.steps.value >= self.hparams[self.ANNEAL_HPARAM]
        return self.hparams[self.LAMBDA_HPARAM] if annealed else 1.0

    def optimize(self, loss: Tensor) -> None:
        """One Adam step on ``loss``, resetting the moments when β jumps."""
        if self.steps.value == self.hparams[self.ANNEAL_HPARAM]:
            self.optimizer.state.clear()
        self.step(loss)
        self.steps.increment()
