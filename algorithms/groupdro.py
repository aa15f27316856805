"""GroupDRO (Sagawa et al., ICLR 2020): minimise the worst domain's risk, softly.

With R_d = mean CE on domain d (d = 1..S) and a distribution q over domains kept across
steps (buffer ``q``: [S], q_0 uniform), each step does exponentiated-gradient ascent on q
and descent on the q-weighted risk:

    q_d ← q_d · exp(η R_d) / Σ_e q_e · exp(η R_e)          (R_d detached)
    L   = Σ_d q_d R_d

η = ``groupdro_eta``. ``q`` is saved in ``state_dict``. ``unlabeled`` is ignored. With
``per_domain_passes`` each domain goes through the network alone, as in DomainBed.
(DomainBed 7df6f06, the 2020 tables' code, divided L by S; later code does not. Adam's
step is invariant to that constant factor up to its ε, so dgsamp follows the later code.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


@register_algorithm("GroupDRO")
class GroupDRO(Algorithm):
    """Weight each domain's risk by an adversarial, multiplicatively updated q."""

    PAPER = (
        "Sagawa, Koh, Hashimoto & Liang: Distributionally Robust Neural Networks for Group "
        "Shifts, ICLR 2020, arXiv:1911.08731"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    HPARAMS = {
        "groupdro_eta": HParam(
            1e-2, lambda r: 10 ** r.uniform(-3, -1), "step size η of q", minimum=0
        ),
    }
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.register_buffer("q", torch.full((num_domains,), 1.0 / num_domains))
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        logits = forward_each(self.predict, [x for x, _ in minibatches], self.per_domain_passes)
        risks = torch.stack([F.cross_entropy(z, y) for z, (_, y) in zip(logits, minibatches)])  # [S]
        with torch.no_grad():
            self.q.mul_(torch.exp(self.hparams["groupdro_eta"] * risks))
            self.q.div_(self.q.sum())
        loss = torch.dot(risks, self.q)
        self.step(loss)
        return {"loss": loss.detach(), "class_loss": risks.detach().mean()}
