"""SD: spectral decoupling (Pezeshki et al., NeurIPS 2021, "Gradient Starvation"), as in DomainBed.

Cross-entropy plus an L2 penalty on the logits (the paper's Eq. 25), which keeps one
strongly predictive feature from starving the gradient of the others:

    l = g(f(x))                                   x [N, C, H, W] -> l [N, K]
    L = 1/N Σ_i CE(l_i, y_i)  +  λ · 1/(N K) Σ_i ‖l_i‖²

λ = ``sd_reg``. The featurizer runs once on the concatenated domains (as in DomainBed);
``unlabeled`` is ignored. ``update`` reports ``loss`` = L, ``class_loss`` = the CE term and
``penalty`` = mean(l²) (DomainBed reports the CE as ``loss``).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def logit_penalty(logits: Tensor) -> Tensor:
    """mean(l²) over all N·K entries of ``logits`` [N, K]."""
    return (logits**2).mean()


@register_algorithm("SD")
class SD(Algorithm):
    """Minimise CE + λ · mean squared logit."""

    HPARAMS = {
        "sd_reg": HParam(
            0.1, lambda r: 10 ** r.uniform(-5, -1), "weight λ of the mean squared logit", minimum=0
        ),
    }
    PAPER = (
        "Pezeshki, Kaba, Bengio, Courville, Precup, Lajoie: Gradient Starvation: A Learning "
        "Proclivity in Neural Networks, NeurIPS 2021, arXiv:2011.09468"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        logits = self.predict(x)
        class_loss = F.cross_entropy(logits, y)
        penalty = logit_penalty(logits)
        loss = class_loss + self.hparams["sd_reg"] * penalty
        self.step(loss)
        return {"loss": loss.detach(), "class_loss": class_loss.detach(), "penalty": penalty.detach()}
