"""SelfReg: self-supervised contrastive regularisation (Kim et al., ICCV 2021), as in DomainBed.

The pooled batch is sorted by label (x, y [N]); z = f(x) [N, D], o = g(z) [N, K] and
p = c(z) [N, D] with c DomainBed's projection MLP
D -> H -> H -> D (Linear, BatchNorm1d, ReLU; H = D if D = 2048 else 2D). Within each
class, two random permutations π, ρ pair every example with another of its class
(``torch.randperm`` per class segment, π then ρ, after the forward pass, as DomainBed
draws them), and λ ~ Beta(0.5, 0.5) (NumPy's global generator, drawn first):

    o_π = o[π],  o_mix = λ o[π] + (1 − λ) o[ρ],   p_π = p[π],  p_mix = λ p[π] + (1 − λ) p[ρ]
    ind_logit = MSE(o, o_π)     hdl_logit = MSE(o, o_mix)
    ind_feat  = 0.3 MSE(z, p_π) hdl_feat  = 0.3 MSE(z, p_mix)
    L = CE(o, y) + s · (λ (ind_logit + ind_feat) + (1 − λ)(hdl_logit + hdl_feat)),
    s = min(CE(o, y), 1) as a constant

(the feature terms compare the features z with the shuffled *projections*, as DomainBed
does). DomainBed builds its Adam before c, so c stays at its random initialisation (its
BatchNorm statistics still update); dgsamp does the same and freezes c's weights.

Class segments follow DomainBed's scan of the sorted labels: a boundary wherever the
label differs from the previous one, the first compared with 0 (so a batch without class
0 starts with an empty segment, which still draws two empty permutations). The segment
sizes come from the labels: this is the one algorithm whose ``update`` reads the device
(the sorted labels, once per step). ``unlabeled`` is ignored.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.registry import register_algorithm


def class_segments(sorted_labels: list[int]) -> list[tuple[int, int]]:
    """DomainBed's [start, end) class segments of ascending labels (first compared with 0)."""
    bounds, previous = [], 0
    for index, label in enumerate(sorted_labels):
        if label != previous:
            bounds.append(index)
            previous = label
    bounds.append(len(sorted_labels))
    starts = [0, *bounds[:-1]]
    return list(zip(starts, bounds))


def within_class_permutations(segments: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
    """(π, ρ) [N] on the CPU: per segment, ``randperm`` for π then for ρ, offset to the segment."""
    first, second = [], []
    for start, end in segments:
        first.append(torch.randperm(end - start) + start)
        second.append(torch.randperm(end - start) + start)
    return torch.cat(first), torch.cat(second)


def projection_mlp(n_features: int) -> nn.Sequential:
    """DomainBed's SelfReg projection D -> H -> H -> D, H = D if D == 2048 else 2D."""
    hidden = n_features if n_features == 2048 else 2 * n_features
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_features),
        nn.BatchNorm1d(n_features),
    )


@register_algorithm("SelfReg")
class SelfReg(Algorithm):
    """ERM plus pulling logits and features towards those of same-class examples."""

    HPARAMS = {}
    PAPER = (
        "Kim, Yoo, Park, Kim, Lee: SelfReg: Self-supervised Contrastive Regularization for "
        "Domain Generalization, ICCV 2021, arXiv:2104.09841"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()  # before c: c is not trained
        self.cdpl = projection_mlp(featurizer.n_outputs).requires_grad_(False)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        lam = float(np.random.beta(0.5, 0.5))
        x, y, _ = concat_minibatches(minibatches)
        y, order = torch.sort(y)
        x = x[order]
        segments = class_segments(y.tolist())  # the host read
        z = self.featurizer(x)
        p = self.cdpl(z)
        o = self.classifier(z)
        first, second = (perm.to(x.device) for perm in within_class_permutations(segments))
        o_mix = lam * o[first] + (1 - lam) * o[second]
        p_mix = lam * p[first] + (1 - lam) * p[second]
        terms = {
            "ind_logit": F.mse_loss(o, o[first]),
            "hdl_logit": F.mse_loss(o, o_mix),
            "ind_feat": 0.3 * F.mse_loss(z, p[first]),
            "hdl_feat": 0.3 * F.mse_loss(z, p_mix),
        }
        class_loss = F.cross_entropy(o, y)
        scale = class_loss.detach().clamp(max=1.0)
        regulariser = lam * (terms["ind_logit"] + terms["ind_feat"]) + (1 - lam) * (
            terms["hdl_logit"] + terms["hdl_feat"]
        )
        loss = class_loss + scale * regulariser
        self.step(loss)
        detached = {name: value.detach() for name, value in terms.items()}
        return {"loss": loss.detach(), "class_loss": class_loss.detach(), **detached}
