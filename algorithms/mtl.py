"""MTL: marginal transfer learning (Blanchard et al., JMLR 2021), exactly as DomainBed runs it.

The paper classifies (f(x), μ_d) with μ_d a kernel mean embedding of domain d's marginal.
DomainBed's network keeps a per-domain embedding buffer E [S, D] (the moving average of
the batch feature means) and a classifier on 2D inputs:

    z_d = f(x_d) [n_d, D],    E_d ← α · mean_i z_d,i + (1 − α) · E_d        (α = ``mtl_ema``)
    L   = Σ_d CE(g([z_d, ε_d]), y_d),     ε_d ~ N(0, I) [n_d, D]

but its ``predict`` overwrites the embedding with ``.normal_()`` before the classifier
sees it, so the second half of g's input is standard normal noise, in training and at
test time, and E is tracked but never read (DomainBed issue #159). dgsamp reproduces that
update (same noise draws from the device's global generator, one [n_d, D] block per domain
in domain order, then one [B, D] block per ``predict``) rather than the paper's method.
Note the sum (not mean) over domains, and that α weights the *new* batch mean. With
``per_domain_passes`` (the DomainBed presets) the featurizer runs once per domain, each call
followed by that domain's noise draw, DomainBed's order; otherwise once on the concatenated
domains (without feature dropout the draws are the same). ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_classifier
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


@register_algorithm("MTL")
class MTL(Algorithm):
    """Classify [f(x), embedding], DomainBed's way: the embedding slot holds N(0, I) noise."""

    HPARAMS = {
        "mtl_ema": HParam(
            0.99, lambda r: r.choice([0.5, 0.9, 0.99, 1.0]),
            "weight α of the new batch mean in the embedding moving average", minimum=0, maximum=1,
        ),
    }
    PAPER = (
        "Blanchard, Deshmukh, Dogan, Lee, Scott: Domain Generalization by Marginal Transfer "
        "Learning, JMLR 2021, arXiv:1711.07910"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        width = featurizer.n_outputs
        self.classifier = make_classifier(
            2 * width, num_classes, bool(self.hparams.get("nonlinear_classifier", False))
        )
        self.register_buffer("embeddings", torch.zeros(num_domains, width))
        self.optimizer = self.default_optimizer()

    def classify(self, features: Tensor) -> Tensor:
        """g([z, ε]) for ``features`` z [B, D]; ε ~ N(0, I) [B, D] drawn here."""
        noise = torch.empty_like(features).normal_()
        return self.classifier(torch.cat([features, noise], dim=1))

    def predict(self, x: Tensor) -> Tensor:
        return self.classify(self.featurizer(x))

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        inputs, labels_per_domain = [x for x, _ in minibatches], [y for _, y in minibatches]
        if self.per_domain_passes:  # lazy: f(x_d) runs just before domain d's noise is drawn
            features_per_domain = (self.featurizer(x) for x in inputs)
        else:
            features_per_domain = iter(self.featurizer(torch.cat(inputs)).split([len(x) for x in inputs]))
        alpha = self.hparams["mtl_ema"]
        losses = []
        for d, (features, labels) in enumerate(zip(features_per_domain, labels_per_domain)):
            with torch.no_grad():
                mean = features.mean(0)
                self.embeddings[d] = alpha * mean + (1 - alpha) * self.embeddings[d]
            losses.append(F.cross_entropy(self.classify(features), labels))
        loss = torch.stack(losses).sum()
        self.step(loss)
        loss = loss.detach()
        return {"loss": loss, "class_loss": loss}
