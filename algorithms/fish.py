"""Fish: gradient matching by a first-order inner loop (Shi et al., ICLR 2022), as in DomainBed.

Each update starts an inner copy at the current weights θ, trains it with Adam on one
domain after the other, and moves θ a fraction ε of the way towards the result:

    θ̃_0 = θ
    θ̃_d = Adam step on CE(g(f(x_d; θ̃_{d−1})), y_d)          d = 1 .. S, domains in order
    θ  ← θ + ε (θ̃_S − θ)                                     ε = ``meta_lr``

For small inner steps, θ̃_S − θ is a descent direction of the mean domain loss that also
rewards inner products between domain gradients (the paper's analysis, for SGD inner
steps; DomainBed uses Adam). As in DomainBed the
interpolation covers every state tensor (parameters and buffers, so BatchNorm running
statistics too, integer ones truncated back), and the inner Adam's moment estimates carry
over from one update to the next; DomainBed's outer Adam is never stepped, so the inner
Adam is the only optimizer here (``optimizer``, which an LR schedule acts on). dgsamp runs
the inner loop on the live modules after saving θ, which is the same arithmetic as
DomainBed's freshly built clone (that clone's construction also draws, then discards,
random initial weights from the global generator; dgsamp does not). ``update`` reports
``loss`` = the last domain's inner CE (DomainBed's) and ``class_loss`` = their mean.
``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def interpolate_(tensors: list[Tensor], start: list[Tensor], step: float) -> None:
    """In place, every tensor t ← s + ε (t − s), computed as DomainBed does (in float, then
    copied back into t's dtype)."""
    with torch.no_grad():
        for tensor, origin in zip(tensors, start):
            tensor.copy_(origin + step * (tensor - origin))


@register_algorithm("Fish")
class Fish(Algorithm):
    """Reptile-style outer interpolation towards weights trained on the domains in sequence."""

    HPARAMS = {
        "meta_lr": HParam(
            0.5, lambda r: r.choice([0.05, 0.1, 0.5]), "outer interpolation step ε",
            minimum=0, maximum=1, exclusive_minimum=True,
        ),
    }
    PAPER = (
        "Shi, Seely, Torr, Siddharth, Hannun, Usunier, Synnaeve: Gradient Matching for Domain "
        "Generalization, ICLR 2022, arXiv:2104.09937"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()  # the inner loop's Adam

    def state_tensors(self) -> list[Tensor]:
        """Every parameter and buffer of f and g (DomainBed's ``state_dict`` of the network)."""
        return [*self.parameters(), *self.buffers()]

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        tensors = self.state_tensors()
        start = [t.detach().clone() for t in tensors]
        losses = []
        for x, y in minibatches:
            loss = F.cross_entropy(self.predict(x), y)
            self.step(loss)
            losses.append(loss.detach())
        interpolate_(tensors, start, self.hparams["meta_lr"])
        return {"loss": losses[-1], "class_loss": torch.stack(losses).mean()}
