"""IGA: inter-environmental gradient alignment (Koyama & Yamaguchi, 2020), as in DomainBed.

With θ all parameters of f and g, R_d the mean CE on domain d and g_d = ∇_θ R_d,

    R̄ = 1/S Σ_d R_d,   ḡ = ∇_θ R̄ = 1/S Σ_d g_d
    P = Σ_d ‖g_d − sg(ḡ)‖²                 (summed over every parameter tensor)
    L = R̄ + λ · P,  λ = ``penalty``

sg = stop-gradient: DomainBed takes ḡ without ``create_graph``, so only the per-domain
gradients g_d are differentiated (second order, through the whole network). P is the
trace of the gradients' covariance across domains times S; it vanishes exactly when all
domains have the same gradient. ḡ is the mean of the g_d (DomainBed differentiates R̄
once more: the same vector). The featurizer runs once on the concatenated domains;
``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm, make_optimizer
from dgsamp.algorithms.minibatches import concat_minibatches, per_domain_cross_entropy
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def gradient_disagreement(domain_grads: list[tuple[Tensor, ...]]) -> Tensor:
    """Σ_d Σ_p ‖g_{d,p} − sg(mean_d g_{d,p})‖² for S tuples of per-parameter gradients."""
    total = None
    for per_domain in zip(*domain_grads):  # one parameter tensor, S gradients
        stacked = torch.stack(per_domain)  # [S, *shape]
        term = (stacked - stacked.mean(0).detach()).pow(2).sum()
        total = term if total is None else total + term
    return total


@register_algorithm("IGA")
class IGA(Algorithm):
    """Descend the mean risk while pulling each domain's gradient towards the mean one."""

    HPARAMS = {
        "penalty": HParam(
            1000.0,
            lambda r: 10 ** r.uniform(1, 5),
            "weight λ of the gradient-variance penalty (DomainBed's default is the int 1000)",
            minimum=0,
        ),
    }
    PAPER = (
        "Koyama, Yamaguchi: Out-of-Distribution Generalization with Maximal Invariant "
        "Predictor (When is invariance useful in an OOD generalization problem?), "
        "arXiv:2008.01883 (2020)"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = make_optimizer(self.parameters(), self.hparams)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, sizes = concat_minibatches(minibatches)
        risks = per_domain_cross_entropy(self.predict(x), y, sizes)  # [S]
        params = [p for p in self.parameters() if p.requires_grad]
        domain_grads = [
            autograd.grad(
                risk, params, create_graph=True, allow_unused=True, materialize_grads=True
            )
            for risk in risks
        ]
        mean_risk = risks.mean()
        penalty = gradient_disagreement(domain_grads)
        loss = mean_risk + self.hparams["penalty"] * penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {
            "loss": loss.detach(),
            "class_loss": mean_risk.detach(),
            "penalty": penalty.detach(),
        }
