"""IGA: inter-environmental gradient alignment (Koyama & Yamaguchi, 2020), as in DomainBed.

With θ all parameters of f and g, R_d the mean CE on domain d and g_d = ∇_θ R_d,

    R̄ = 1/S Σ_d R_d,   ḡ = ∇_θ R̄ = 1/S Σ_d g_d
    P = Σ_d ‖g_d − sg(ḡ)‖²                 (summed over every parameter tensor)
    L = R̄ + λ · P,  λ = ``penalty``

sg = stop-gradient: DomainBed takes ḡ without ``create_graph``, so only the per-domain
gradients g_d are differentiated (second order, through the whole network). P is the
trace of the gradients' covariance across domains times S; it vanishes exactly when all
domains have the same gradient. ḡ is taken, as in DomainBed, by one more (first-order)
backward pass of R̄. The network runs once per domain with ``per_domain_passes``
(DomainBed's way, the DomainBed presets), else once on the concatenated domains;
``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def gradient_disagreement(
    domain_grads: list[tuple[Tensor, ...]], mean_grad: tuple[Tensor, ...]
) -> Tensor:
    """Σ_d Σ_p ‖g_{d,p} − ḡ_p‖² for S tuples of per-parameter gradients and the mean ``ḡ``
    (a constant), summed domain by domain as DomainBed does."""
    total = torch.zeros((), device=mean_grad[0].device)
    for grads in domain_grads:
        for g, mean_g in zip(grads, mean_grad):
            total = total + (g - mean_g).pow(2).sum()
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
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        logits = forward_each(self.predict, [x for x, _ in minibatches], self.per_domain_passes)
        risks = [F.cross_entropy(lo, y) for lo, (_, y) in zip(logits, minibatches)]  # R_d
        params = [p for p in self.parameters() if p.requires_grad]
        domain_grads = [
            autograd.grad(
                risk, params, create_graph=True, allow_unused=True, materialize_grads=True
            )
            for risk in risks
        ]
        mean_risk = sum(risks) / len(risks)  # DomainBed's running sum, then / S
        mean_grad = autograd.grad(
            mean_risk, params, retain_graph=True, allow_unused=True, materialize_grads=True
        )
        penalty = gradient_disagreement(domain_grads, mean_grad)
        loss = mean_risk + self.hparams["penalty"] * penalty
        self.step(loss)
        return {
            "loss": loss.detach(),
            "class_loss": mean_risk.detach(),
            "penalty": penalty.detach(),
        }
