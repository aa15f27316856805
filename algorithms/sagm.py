"""SAGM: sharpness-aware gradient matching.

Wang, Zhang, Lei & Zhang, "Sharpness-Aware Gradient Matching for Domain Generalization",
CVPR 2023 (arXiv:2303.10353); reference code Wang-pengfei/SAGM.

SAGM minimises the empirical risk L(θ) (CE over the pooled source domains), the
perturbed loss L_p(θ) = L(θ + ε̂) and the surrogate gap L_p − L at once; to first order
this aligns the directions of ∇L and ∇L_p. One step, over all parameters θ (featurizer
and classifier, as one flat vector):

    g   = ∇L(θ)                                        (pass 1; BatchNorm statistics update)
    θ'  = θ + (ρ / (‖g‖₂ + 1e−12) − α) · g             (ε̂ = ρ g/‖g‖, minus the α-step)
    g_p = ∇L(θ')                                       (pass 2; running statistics frozen)
    d   = ½ (g + g_p)                                  at θ; Adam step on d (with weight decay)

The ½ is the reference's (it writes g_p + ½g − ½g_p); under Adam it only changes the
weight of the L2 weight decay and of ε. ρ = ``rho`` and α = ``alpha`` stay constant: the
reference's "schedules" for ρ and the learning rate are linear schedulers whose start and
end values are equal (and its ρ is hard-coded to 0.05, the ``rho`` default here); dgsamp's
``lr_schedule`` acts on Adam's learning rate only. Two forward/backward passes per step.

Defaults: ρ = 0.05, α = 0.001 (PACS, VLCS, TerraIncognita; 5e−4 on OfficeHome, DomainNet).
Random search: ρ from the reference's {0.01, 0.02, 0.05, 0.1}; α from the published
{5e−4, 1e−3} (the reference registry's {0.01, …, 0.1} is 10–100× every published α, and
α > ρ/‖g‖ whenever ‖g‖ > ρ/α, which turns the ascent step into a descent step).

Shapes: x [N, C, H, W] -> f(x) [N, D] -> logits [N, K]. ``unlabeled`` is ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

PERTURB_EPS = 1e-12


@contextmanager
def frozen_running_stats(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalise with batch statistics but keep their running statistics
    (momentum 0, as the reference; ``num_batches_tracked`` restored too)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracked = [m.num_batches_tracked for m in norms]
    saved = [(m.momentum, None if t is None else t.clone()) for m, t in zip(norms, tracked)]
    for module in norms:
        module.momentum = 0.0
    try:
        yield
    finally:
        for module, (momentum, count) in zip(norms, saved):
            module.momentum = momentum
            if count is not None:
                module.num_batches_tracked.copy_(count)


@register_algorithm("SAGM")
class SAGM(Algorithm):
    """ERM whose Adam step follows ½(∇L(θ) + ∇L(θ + (ρ/‖g‖ − α) g))."""

    PAPER = "Wang, Zhang, Lei & Zhang, CVPR 2023, arXiv:2303.10353"
    SOURCE = "Wang-pengfei/SAGM domainbed/sagm/sagm.py @ 69d4d9d2a390"
    HPARAMS = {
        "rho": HParam(
            0.05, lambda r: float(r.choice([0.01, 0.02, 0.05, 0.1])),
            "perturbation radius ρ", minimum=0,
        ),
        "alpha": HParam(
            0.001, lambda r: float(r.choice([0.0005, 0.001])),
            "gradient-matching step α (the paper's per-dataset values: 5e-4, 1e-3)", minimum=0,
        ),
    }

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.predict(x), y)
        loss.backward()
        params = [p for p in self.parameters() if p.grad is not None]
        grads = [p.grad for p in params]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        scale = self.hparams["rho"] / (norm + PERTURB_EPS) - self.hparams["alpha"]  # 0-dim tensor
        originals = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_add_(params, torch._foreach_mul(grads, scale))
        for p in params:
            p.grad = None  # the first gradients live on in ``grads``
        with frozen_running_stats(self):
            perturbed_loss = F.cross_entropy(self.predict(x), y)
        perturbed_loss.backward()
        with torch.no_grad():
            torch._foreach_copy_(params, originals)
            for p, g in zip(params, grads):
                p.grad = g.mul_(0.5) if p.grad is None else p.grad.add_(g).mul_(0.5)
        self.optimizer.step()
        loss = loss.detach()
        return {"loss": loss, "class_loss": loss, "perturbed_loss": perturbed_loss.detach()}
