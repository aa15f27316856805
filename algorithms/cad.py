"""CAD: contrastive adversarial domain bottleneck (Ruan, Dubois & Maddison, ICLR 2022), as in DomainBed.

The featurizer is trained with cross-entropy plus a contrastive bottleneck that removes
domain information, I(D; Z) for CAD and I(D; Z | Y) for CondCAD (``condcad.py``). On the
N = Σ_d n_d pooled features z = f(x) [N, D] (L2-normalised first when ``is_normalized``,
through a projection head D -> D -> 128 first when ``is_project``) with domains d_i,
labels y_i and temperature τ:

    s_ij = z_i·z_j / τ  (s_ii = 0),   p_ij = exp(s_ij) / Σ_{k≠i} exp(s_ik)        [N, N]
    CAD (flipped):     ℓ_i = −(τ/τ₀) log Σ_{j: d_j≠d_i} p_ij            rows with a j≠i, y_j=y_i
    CAD (not flipped): ℓ_i = +(τ/τ₀) log Σ_{j: d_j=d_i} p_ij            (j = i counts, s_ii = 0)
    CondCAD: p^y_ij = exp(s_ij) / Σ_{k≠i, y_k=y_i} exp(s_ik) and the same sums over same-label
             j only; rows without such a j (other domain, or same domain) are dropped
    L_bn = mean of the finite ℓ_i (0 when none),   τ₀ = 0.07
    L    = 1/N Σ_i CE(g(z_i), y_i) + λ L_bn

λ = ``lmbda``, τ = ``temperature``; ``is_flipped`` (DomainBed's default) maximises the
probability of other-domain neighbours instead of minimising that of same-domain ones.
Rows are masked on the device rather than dropped (no data-dependent shapes, no host
reads); rows DomainBed drops contribute neither value nor gradient. DomainBed's
projection head names an undefined ``feature_dim`` (``is_project`` is never drawn); here
it is D = ``featurizer.n_outputs``. ``unlabeled`` is ignored.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches, domain_labels
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

BASE_TEMPERATURE = 0.07
CAD_PAPER = (
    "Ruan, Dubois & Maddison: Optimal Representations for Covariate Shift, ICLR 2022, "
    "arXiv:2201.00057"
)
CAD_SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"
CAD_HPARAMS: dict[str, HParam] = {
    "lmbda": HParam(
        1e-1, lambda r: r.choice([1e-4, 1e-3, 1e-2, 1e-1, 1, 1e1, 1e2]),
        "weight λ of the bottleneck loss (DomainBed's name)", minimum=0,
    ),
    "temperature": HParam(
        0.1, lambda r: r.choice([0.05, 0.1]), "temperature τ of the similarities",
        minimum=0, exclusive_minimum=True,
    ),
    "is_normalized": HParam(False, lambda r: False, "L2-normalise z before the similarities"),
    "is_project": HParam(False, lambda r: False, "projection head D -> D -> 128 before them"),
    "is_flipped": HParam(
        True, lambda r: True, "maximise log p(other domain) instead of minimising log p(same)"
    ),
}


def masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """``[N]``: log Σ_{j: mask_ij} exp(values_ij); −inf for a row without entries, with a
    zero (not NaN) gradient there."""
    has_entries = mask.any(1, keepdim=True)
    masked = values.masked_fill(~mask, float("-inf")).masked_fill(~has_entries, 0.0)
    return torch.logsumexp(masked, 1).masked_fill(~has_entries[:, 0], float("-inf"))


def bottleneck_loss(
    z: Tensor, y: Tensor, domains: Tensor, temperature: float, conditional: bool, flipped: bool
) -> Tensor:
    """L_bn of the module docstring for features ``z`` [N, D], labels and domains [N]."""
    n = z.shape[0]
    not_self = ~torch.eye(n, dtype=torch.bool, device=z.device)
    same_label = (y[:, None] == y[None, :]) & not_self
    same_domain = domains[:, None] == domains[None, :]  # includes i itself
    logits = (z @ z.T) / temperature * not_self.to(z.dtype)
    logits = logits - logits.amax(1, keepdim=True).detach()
    if conditional:
        targets = same_label & (~same_domain if flipped else same_domain)
        valid = targets.any(1)
        log_prob = logits - masked_logsumexp(logits, same_label)[:, None]
    else:
        targets = ~same_domain if flipped else same_domain
        valid = same_label.any(1)
        log_prob = logits - masked_logsumexp(logits, not_self)[:, None]
    per_row = masked_logsumexp(log_prob.masked_fill(~valid[:, None], 0.0), targets)
    scale = temperature / BASE_TEMPERATURE
    losses = -scale * per_row if flipped else scale * per_row
    keep = valid & torch.isfinite(losses)
    total = torch.where(keep, losses, torch.zeros_like(losses)).sum()
    return total / keep.sum().clamp_min(1)


@register_algorithm("CAD")
class CAD(Algorithm):
    """Cross-entropy plus a contrastive bottleneck on I(D; Z)."""

    HPARAMS = CAD_HPARAMS
    PAPER = CAD_PAPER
    SOURCE = CAD_SOURCE
    CONDITIONAL: ClassVar[bool] = False

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        parameters = [*self.featurizer.parameters(), *self.classifier.parameters()]
        self.project: nn.Module | None = None
        if self.hparams["is_project"]:
            width = featurizer.n_outputs
            self.project = nn.Sequential(
                nn.Linear(width, width), nn.ReLU(inplace=True), nn.Linear(width, 128)
            )
            parameters += list(self.project.parameters())
        self.optimizer = self.default_optimizer(parameters)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, sizes = concat_minibatches(minibatches)
        z = self.featurizer(x)
        u = z if self.project is None else self.project(z)
        if self.hparams["is_normalized"]:
            u = F.normalize(u, dim=1)
        bn_loss = bottleneck_loss(
            u, y, domain_labels(sizes, x.device), self.hparams["temperature"],
            self.CONDITIONAL, bool(self.hparams["is_flipped"]),
        )
        class_loss = F.cross_entropy(self.classifier(z), y)
        loss = class_loss + self.hparams["lmbda"] * bn_loss
        self.step(loss)
        return {
            "loss": loss.detach(), "class_loss": class_loss.detach(), "bn_loss": bn_loss.detach()
        }
