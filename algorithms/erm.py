"""ERM: empirical risk minimisation over the pooled training domains (Vapnik, 1998).

    L(θ) = 1/N Σ_i CE(g(f(x_i)), y_i)          over all N = Σ_d n_d labelled examples

Shapes: x [N, C, H, W] -> f(x) [N, D] -> logits [N, K]. ``unlabeled`` is ignored.
Gulrajani & Lopez-Paz (ICLR 2021) show this baseline is hard to beat under DomainBed.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.registry import register_algorithm


@register_algorithm("ERM")
class ERM(Algorithm):
    """Minimise the mean cross-entropy of all labelled training examples."""

    PAPER = (
        "Vapnik: Statistical Learning Theory, Wiley 1998; as DG baseline Gulrajani & "
        "Lopez-Paz: In Search of Lost Domain Generalization, ICLR 2021, arXiv:2007.01434"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    HPARAMS = {}

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        loss = F.cross_entropy(self.predict(x), y)
        self.step(loss)
        loss = loss.detach()
        return {"loss": loss, "class_loss": loss}
