"""SAND-mask: smoothed-AND gradient masking (Shahtalebi et al., 2021), as in DomainBed.

Each step takes the per-domain gradients g_1 .. g_S of every parameter tensor (θ of f
and g, R_d the mean CE on domain d, g_d = ∇_θ R_d, shape of θ) and, elementwise,

    a   = |1/S Σ_d sign(g_d)|                    sign agreement across domains, in [0, 1]
    σ²  = Var_d(g_d)   (unbiased; NaN when S = 1 -> 1e-17)
    m   = max(0, tanh(k / σ² · (a − τ)))         NaN (σ² = 0 and a = τ) -> 1e-17
    ∇θ ← m ⊙ (1/S Σ_d g_d) / (1e-10 + mean(m))  (mean over the tensor's entries)

and Adam steps on the masked gradient. Only entries whose domains agree in sign more
than τ move, smoothly so (k scales the steepness, low variance sharpens it). With
τ = 1 (DomainBed's default) every argument of tanh is ≤ 0, so the mask is 0 and no
parameter moves; DomainBed's random search draws τ ~ U(0, 1). The network runs once per
domain with ``per_domain_passes`` (DomainBed's way, the DomainBed presets), else once on the
concatenated domains; ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def sand_mask(grads: Tensor, tau: float, k: float) -> Tensor:
    """The mask m [*shape] in [0, 1) for the per-domain gradients ``grads`` [S, *shape]."""
    variance = grads.var(dim=0)
    variance = torch.where(variance.isnan(), 1e-17, variance)
    agreement = grads.sign().mean(dim=0).abs()
    mask = torch.tanh(k * variance.pow(-1) * (agreement - tau))
    mask = torch.maximum(mask, torch.zeros_like(mask))
    return torch.where(mask.isnan(), 1e-17, mask)


def masked_mean_gradient(grads: Tensor, tau: float, k: float) -> Tensor:
    """m ⊙ mean_d g_d / (1e-10 + mean(m)) for ``grads`` [S, *shape]."""
    mask = sand_mask(grads, tau, k)
    return mask * grads.mean(dim=0) * (1.0 / (1e-10 + mask.sum() / mask.numel()))


@register_algorithm("SANDMask")
class SANDMask(Algorithm):
    """Step only along the gradient entries the domains agree on (smooth AND-mask)."""

    HPARAMS = {
        "tau": HParam(
            1.0, lambda r: r.uniform(0.0, 1.0), "sign-agreement threshold τ", minimum=0, maximum=1
        ),
        "k": HParam(
            10.0, lambda r: 10 ** r.uniform(-3, 5), "steepness k of the tanh mask", minimum=0
        ),
    }
    PAPER = (
        "Shahtalebi, Gagnon-Audet, Laleh, Faramarzi, Ahuja, Rish: SAND-mask: An Enhanced "
        "Gradient Masking Strategy for the Discovery of Invariances in Domain Generalization, "
        "ICML 2021 UDL workshop, arXiv:2106.02266"
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
        risks = torch.stack(
            [F.cross_entropy(lo, y) for lo, (_, y) in zip(logits, minibatches)]
        )  # [S]
        params = [p for p in self.parameters() if p.requires_grad]
        domain_grads = [
            autograd.grad(
                risk, params, retain_graph=True, allow_unused=True, materialize_grads=True
            )
            for risk in risks
        ]
        self.optimizer.zero_grad(set_to_none=True)
        tau, k = self.hparams["tau"], self.hparams["k"]
        for param, per_domain in zip(params, zip(*domain_grads)):
            param.grad = masked_mean_gradient(torch.stack(per_domain), tau, k)
        self.optimizer.step()
        mean_risk = risks.detach().mean()
        return {"loss": mean_risk, "class_loss": mean_risk}
