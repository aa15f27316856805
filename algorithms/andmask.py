"""AND-mask (Parascandolo et al., ICLR 2021, "Learning explanations that are hard to vary"),
as in DomainBed.

Each step takes the per-domain gradients g_1 .. g_S of every parameter tensor θ of f and
g (R_d = mean CE on domain d, g_d = ∇_θ R_d, shape of θ) and keeps, elementwise, only
the entries on whose sign the domains agree:

    a  = |1/S Σ_d sign(g_d)|                      sign agreement, in [0, 1]
    m  = 1[a ≥ τ]                                 (τ = 1: every domain has the same sign)
    ∇θ ← m ⊙ (1/S Σ_d g_d) / (1e-10 + mean(m))    (mean over the tensor's entries)

then Adam steps on the masked gradient (per tensor, the rescaling keeps its gradient
magnitude when few entries survive). τ = ``tau``; DomainBed's default is the integer 1,
here 1.0 (same mask). With ``per_domain_passes`` (the DomainBed presets) the network runs
once per domain as in DomainBed, else once on the concatenated domains; each g_d is a
separate backward pass; ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def and_mask(grads: Tensor, tau: float) -> Tensor:
    """m [*shape] (float32): 1 where |mean_d sign(g_d)| ≥ τ, for ``grads`` [S, *shape]."""
    return (grads.sign().mean(dim=0).abs() >= tau).to(torch.float32)


def and_masked_gradient(grads: Tensor, tau: float) -> Tensor:
    """m ⊙ mean_d g_d / (1e-10 + mean(m)) for ``grads`` [S, *shape]."""
    mask = and_mask(grads, tau)
    return mask * grads.mean(dim=0) * (1.0 / (1e-10 + mask.sum() / mask.numel()))


@register_algorithm("ANDMask")
class ANDMask(Algorithm):
    """Step only along the gradient entries every domain agrees on (in sign)."""

    HPARAMS = {
        "tau": HParam(
            1.0, lambda r: r.uniform(0.5, 1.0), "sign-agreement threshold τ", minimum=0, maximum=1
        ),
    }
    PAPER = (
        "Parascandolo, Neitz, Orvieto, Gresele, Schölkopf: Learning explanations that are "
        "hard to vary, ICLR 2021, arXiv:2009.00329"
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
        risks = torch.stack([F.cross_entropy(z, y) for z, (_, y) in zip(logits, minibatches)])  # [S]
        params = [p for p in self.parameters() if p.requires_grad]
        per_domain = [
            autograd.grad(risk, params, retain_graph=d < len(risks) - 1, materialize_grads=True)
            for d, risk in enumerate(risks)
        ]
        self.optimizer.zero_grad(set_to_none=True)
        for i, param in enumerate(params):
            grads = torch.stack([domain_grads[i] for domain_grads in per_domain])
            param.grad = and_masked_gradient(grads, self.hparams["tau"])
        self.optimizer.step()
        loss = risks.detach().mean()
        return {"loss": loss, "class_loss": loss}
