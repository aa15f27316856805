"""Inter-domain Mixup (Xu et al., AAAI 2020; Yan et al., 2020), as in DomainBed.

The training domains are put in a random cycle π (a fresh permutation every step) and
each domain a is mixed with its successor b = π-next(a), with its own λ ~ Beta(α, α):

    x̃ = λ x_a + (1 − λ) x_b                       (first n = min(n_a, n_b) examples)
    L_ab = 1/n Σ_i [ λ CE(g(f(x̃_i)), y_a,i) + (1 − λ) CE(g(f(x̃_i)), y_b,i) ]
    L = mean over the S pairs of L_ab

α = ``mixup_alpha``. With ``per_domain_passes`` each mixed batch goes through the network
alone (DomainBed's one call per pair), else all of them in one call. λ and π come from NumPy's and torch's global CPU generators
(seeded and checkpointed by the trainer): no device read. ``unlabeled`` is ignored.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def random_domain_cycle(num_domains: int) -> list[tuple[int, int]]:
    """Pairs (π_j, π_{j+1 mod S}) of a uniformly random permutation π of the domains."""
    order = torch.randperm(num_domains).tolist()
    return [(order[j], order[(j + 1) % num_domains]) for j in range(num_domains)]


@register_algorithm("Mixup")
class Mixup(Algorithm):
    """Train on convex combinations of examples (and labels) from two domains."""

    PAPER = (
        "Yan, Song, Li, Zou & Ren: Improve Unsupervised Domain Adaptation with Mixup "
        "Training, 2020, arXiv:2001.00677; Xu et al.: Adversarial Domain Adaptation with "
        "Domain Mixup, AAAI 2020, arXiv:1912.01805"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    HPARAMS = {
        "mixup_alpha": HParam(
            0.2, lambda r: 10 ** r.uniform(-1, 1), "α of λ ~ Beta(α, α)",
            minimum=0, exclusive_minimum=True,
        ),
    }
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        alpha = self.hparams["mixup_alpha"]
        mixed_x, y_a, y_b, lams, sizes = [], [], [], [], []
        for a, b in random_domain_cycle(len(minibatches)):
            (xa, ya), (xb, yb) = minibatches[a], minibatches[b]
            n = min(xa.shape[0], xb.shape[0])
            lam = float(np.random.beta(alpha, alpha))
            mixed_x.append(lam * xa[:n] + (1 - lam) * xb[:n])
            y_a.append(ya[:n])
            y_b.append(yb[:n])
            lams.append(torch.full((n,), lam, device=xa.device))
            sizes.append(n)
        logits = torch.cat(forward_each(self.predict, mixed_x, self.per_domain_passes))
        lam = torch.cat(lams)
        per_example = lam * F.cross_entropy(logits, torch.cat(y_a), reduction="none") + (
            1 - lam
        ) * F.cross_entropy(logits, torch.cat(y_b), reduction="none")
        loss = torch.stack([part.mean() for part in per_example.split(sizes)]).mean()
        self.step(loss)
        loss = loss.detach()
        return {"loss": loss, "class_loss": loss}
