"""Transfer (Zhang, Zhao, Yu & Poupart, NeurIPS 2021, Algorithm 1), as in DomainBed.

Transferability among the source domains is measured by an adversarial classifier h'
[D -> K] kept within a ball of radius δ around the classifier g. With R_d(h) the mean CE
of h(f(x)) on domain d and the gap Γ(h) = max_d R_d(h) − min_d R_d(h), one update is

    1. f, g ← Adam step on 1/N Σ_i CE(g(f(x_i)), y_i)          (all N pooled examples)
    2. f    ← Adam step on λ Γ(h')                             (same Adam; g gets no gradient)
    3. h'   ← g                                                (copy)
    4. k times: h' ← h' + η ∇_{h'} λ Γ(h')  (SGD ascent),  then h' ← P_δ(h')
       P_δ(h') = g + min(1, δ / ‖h' − g‖) (h' − g),   ‖·‖ over all of h's parameters

λ = ``t_lambda``, δ = ``delta``, k = ``d_steps_per_g``, η = ``lr_d``. With ``gda`` DomainBed's
main optimizer is an SGD (lr ``lr``) over h' instead of Adam over f and g: steps 1-2 then
move only h', which step 3 overwrites, so f and g never train. dgsamp reproduces that (and
DomainBed draws ``gda = True`` in every random search; see docs/algorithms.md).
``weight_decay_d`` and ``beta1`` are declared by DomainBed and unused by it, so here too.
For Γ the featurizer runs once per domain with ``per_domain_passes`` (DomainBed's way, the
DomainBed presets), else once on all domains; in step 4 it runs without autograd
(DomainBed discards those gradients).
``update`` reports ``loss`` = ``class_loss`` = the CE of step 1 and ``gap`` = λ Γ(h') before
the last ascent step. ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_classifier
from dgsamp.algorithms.minibatches import concat_minibatches, forward_each
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def risk_gap(head: nn.Module, features: list[Tensor], labels: list[Tensor]) -> Tensor:
    """Γ = max_d R_d − min_d R_d, R_d the mean CE of ``head`` on domain d's features [n_d, D]."""
    risks = torch.stack([F.cross_entropy(head(z), y) for z, y in zip(features, labels)])
    return risks.max() - risks.min()


@register_algorithm("Transfer")
class Transfer(Algorithm):
    """Shrink the risk gap that an adversarial classifier near g can open between domains."""

    HPARAMS = {
        "t_lambda": HParam(1.0, lambda r: 10 ** r.uniform(-2, 1), "weight λ of the gap", minimum=0),
        "delta": HParam(2.0, lambda r: r.uniform(0.1, 3.0), "radius δ of h' around g", minimum=0),
        "d_steps_per_g": HParam(
            10, lambda r: int(r.choice([1, 2, 5])), "ascent steps k of h' per update", minimum=0
        ),
        "weight_decay_d": HParam(
            0.0, lambda r: 10 ** r.uniform(-6, -2), "declared by DomainBed, unused", minimum=0
        ),
        "gda": HParam(False, lambda r: True, "DomainBed's gda: SGD over h' as main optimizer"),
        "beta1": HParam(
            0.5, lambda r: r.choice([0.0, 0.5]), "declared by DomainBed, unused",
            minimum=0, maximum=1, exclusive_maximum=True,
        ),
        "lr_d": HParam(
            1e-3, lambda r: 10 ** r.uniform(-4.5, -2.5), "SGD learning rate η of h'",
            minimum=0, exclusive_minimum=True,
        ),
    }
    PAPER = (
        "Zhang, Zhao, Yu & Poupart: Quantifying and Improving Transferability in Domain "
        "Generalization, NeurIPS 2021, arXiv:2106.03632"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp = self.hparams
        self.adv_classifier = make_classifier(
            featurizer.n_outputs, num_classes, bool(hp.get("nonlinear_classifier", False))
        )
        self.adv_classifier.load_state_dict(self.classifier.state_dict())
        if hp["gda"]:
            self.optimizer = torch.optim.SGD(self.adv_classifier.parameters(), lr=hp["lr"])
        else:
            self.optimizer = self.default_optimizer([*self.featurizer.parameters(), *self.classifier.parameters()])
        self.adv_opt = torch.optim.SGD(self.adv_classifier.parameters(), lr=hp["lr_d"])

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        weight = self.hparams["t_lambda"]
        x, y, _ = concat_minibatches(minibatches)
        inputs, labels = [xd for xd, _ in minibatches], [yd for _, yd in minibatches]
        loss = F.cross_entropy(self.predict(x), y)
        self.step(loss)
        features = forward_each(self.featurizer, inputs, self.per_domain_passes)
        gap = weight * risk_gap(self.adv_classifier, features, labels)
        self.step(gap)
        with torch.no_grad():
            for adv, own in zip(self.adv_classifier.parameters(), self.classifier.parameters()):
                adv.copy_(own)
        for _ in range(self.hparams["d_steps_per_g"]):
            self.adv_opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                features = forward_each(self.featurizer, inputs, self.per_domain_passes)
            gap = weight * risk_gap(self.adv_classifier, features, labels)
            (-gap).backward()
            self.adv_opt.step()
            self.project_adversary()
        return {"loss": loss.detach(), "class_loss": loss.detach(), "gap": gap.detach()}

    @torch.no_grad()
    def project_adversary(self) -> None:
        """h' ← P_δ(h'): back onto the sphere of radius δ around g when outside the ball."""
        pairs = list(zip(self.adv_classifier.parameters(), self.classifier.parameters()))
        distance = torch.sqrt(sum(torch.linalg.vector_norm(adv - own) ** 2 for adv, own in pairs))
        ratio = self.hparams["delta"] / distance
        inside = distance <= self.hparams["delta"]
        for adv, own in pairs:
            adv.copy_(torch.where(inside, adv, own + ratio * (adv - own)))
