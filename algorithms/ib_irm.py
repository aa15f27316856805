"""IB-IRM: IRMv1 plus the information-bottleneck feature penalty, as in DomainBed.

Ahuja et al. (NeurIPS 2021). With logits l = g(f(x)), features Z_d = f(x_d) [n_d, D],

    L = 1/S Σ_d R_d  +  α_t · P_IRM  +  β_t · P_IB

P_IRM = 1/S Σ_d ∂_w R_d^even(1) · ∂_w R_d^odd(1) (IRMv1, see ``irm.py``) and
P_IB = 1/S Σ_d mean_j Var_i(Z_d[i, j]) (see ``ib_erm.py``). Two schedules:
α_t = 1 before ``irm_penalty_anneal_iters`` steps, then ``irm_lambda``;
β_t = 0 before ``ib_penalty_anneal_iters`` steps, then ``ib_lambda``. Adam's moments are
reset at the step where either schedule jumps (DomainBed builds a new Adam there).
"""

from __future__ import annotations

from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.ib_erm import IB_ANNEAL, IB_LAMBDA, IB_PAPER, ib_penalty
from dgsamp.algorithms.irm import IRM, irm_penalty
from dgsamp.algorithms.minibatches import concat_minibatches, per_domain_cross_entropy
from dgsamp.registry import register_algorithm


@register_algorithm("IB_IRM")
class IB_IRM(Algorithm):
    """IRMv1's invariance penalty and IB's feature-variance penalty, each on its schedule."""

    HPARAMS = {
        "irm_lambda": IRM.HPARAMS["irm_lambda"],
        "irm_penalty_anneal_iters": IRM.HPARAMS["irm_penalty_anneal_iters"],
        "ib_lambda": IB_LAMBDA,
        "ib_penalty_anneal_iters": IB_ANNEAL,
    }
    PAPER = IB_PAPER
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.steps = StepCounter()
        self.optimizer = self.default_optimizer()

    def penalty_weights(self) -> tuple[float, float]:
        """(α_t, β_t) for the current step t."""
        t, h = self.steps.value, self.hparams
        irm = h["irm_lambda"] if t >= h["irm_penalty_anneal_iters"] else 1.0
        ib = h["ib_lambda"] if t >= h["ib_penalty_anneal_iters"] else 0.0
        return irm, ib

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        irm_weight, ib_weight = self.penalty_weights()
        x, y, sizes = concat_minibatches(minibatches)
        features = self.featurizer(x)
        logits = self.classifier(features)
        nll = per_domain_cross_entropy(logits, y, sizes).mean()
        irm = irm_penalty(logits, y, sizes)
        ib = ib_penalty(features, sizes)
        loss = nll + irm_weight * irm + ib_weight * ib
        t = self.steps.value
        if t in (self.hparams["irm_penalty_anneal_iters"], self.hparams["ib_penalty_anneal_iters"]):
            self.optimizer.state.clear()
        self.step(loss)
        self.steps.increment()
        return {
            "loss": loss.detach(),
            "class_loss": nll.detach(),
            "irm_penalty": irm.detach(),
            "ib_penalty": ib.detach(),
        }
