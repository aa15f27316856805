"""SagNet: style-agnostic networks (Nam et al., CVPR 2021), as in DomainBed.

DomainBed applies SagNet's randomisation to the pooled features z = f(x) [N, D] (not to
a ResNet's intermediate maps: that variant is commented out there as ResNet-specific),
so it works with any featurizer. Per example, the "style" of z_i is its mean μ_i and
variance σ²_i over the D features (unbiased), its "content" the normalised ẑ_i:

    ẑ_i = (z_i − μ_i) / sqrt(σ²_i + 1e-5)
    style randomisation:    μ̃_i = a_i μ_i + (1 − a_i) μ_π(i),  σ̃²_i likewise,  out_i = ẑ_i · sqrt(σ̃²_i + 1e-5) + μ̃_i
    content randomisation:  out_i = detach(ẑ_π(i)) · sqrt(σ²_i + 1e-5) + μ_i

with a ~ U(0, 1) [N, 1] and π a random permutation, both drawn (in that order, each
randomisation) from torch's global CPU generator as DomainBed does. Three steps per update:

    content  g_c, f  ← Adam on CE(g_c(style-randomised f(x)), y)
    style    g_s     ← Adam on CE(g_s(content-randomised f(x)), y)
    adversary f      ← Adam on w · (−1/(N K) Σ_ik log softmax(g_s(content-randomised f(x)))_ik)

w = ``sag_w_adv``; each step recomputes f(x) (the style step without autograd through
f: DomainBed's gradients there reach f but are zeroed before f's next step). Three Adams
(f, g_c, g_s); ``predict`` = g_c(f(x)). ``update`` reports ``class_loss`` (content CE),
``style_loss``, ``adv_loss`` and ``loss`` = content CE + adversarial loss (f's two
objectives). ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_classifier
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def randomize(z: Tensor, what: str, eps: float = 1e-5) -> Tensor:
    """Swap the "style" or the "content" of the features ``z`` [N, D] across examples."""
    n = z.shape[0]
    alpha = torch.rand(n, 1).to(z.device, non_blocking=True)
    mean = z.mean(-1, keepdim=True)
    var = z.var(-1, keepdim=True)
    normalized = (z - mean) / (var + eps).sqrt()
    swap = torch.randperm(n).to(z.device, non_blocking=True)
    if what == "style":
        mean = alpha * mean + (1 - alpha) * mean[swap]
        var = alpha * var + (1 - alpha) * var[swap]
    else:
        normalized = normalized[swap].detach()
    return normalized * (var + eps).sqrt() + mean


@register_algorithm("SagNet")
class SagNet(Algorithm):
    """Content classifier trained on randomised styles; featurizer trained to confuse a style one."""

    HPARAMS = {
        "sag_w_adv": HParam(
            0.1, lambda r: 10 ** r.uniform(-2, 1), "weight w of the adversarial style loss", minimum=0
        ),
    }
    PAPER = (
        "Nam, Lee, Park, Yoon, Yoo: Reducing Domain Gap by Reducing Style Bias, CVPR 2021, "
        "arXiv:1910.11645"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        nonlinear = bool(self.hparams.get("nonlinear_classifier", False))
        self.style_classifier = make_classifier(featurizer.n_outputs, num_classes, nonlinear)
        self.optimizer_f = self.default_optimizer(self.featurizer.parameters())
        self.optimizer_c = self.default_optimizer(self.classifier.parameters())
        self.optimizer_s = self.default_optimizer(self.style_classifier.parameters())

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        featurizer_params = [p for p in self.featurizer.parameters() if p.requires_grad]

        class_loss = F.cross_entropy(self.classifier(randomize(self.featurizer(x), "style")), y)
        self.optimizer_f.zero_grad(set_to_none=True)
        self.optimizer_c.zero_grad(set_to_none=True)
        class_loss.backward()
        self.optimizer_f.step()
        self.optimizer_c.step()

        with torch.no_grad():
            z = self.featurizer(x)
        style_loss = F.cross_entropy(self.style_classifier(randomize(z, "content")), y)
        self.step(style_loss, self.optimizer_s)

        style_logits = self.style_classifier(randomize(self.featurizer(x), "content"))
        adv_loss = -F.log_softmax(style_logits, dim=1).mean(1).mean() * self.hparams["sag_w_adv"]
        self.optimizer_f.zero_grad(set_to_none=True)
        adv_loss.backward(inputs=featurizer_params)
        self.optimizer_f.step()
        return {
            "loss": (class_loss + adv_loss).detach(),
            "class_loss": class_loss.detach(),
            "style_loss": style_loss.detach(),
            "adv_loss": adv_loss.detach(),
        }
