"""EQRM: empirical quantile risk minimization (Eastwood et al., NeurIPS 2022), as in DomainBed.

With R = (R_1 .. R_S) the per-domain mean CEs [S], EQRM minimises the α-quantile of the
distribution of risks over domains, estimated with a Gaussian kernel density:

    t < T:  L = 1/S Σ_d R_d                                        (burn-in, ERM-like)
    t ≥ T:  L = F⁻¹(α),  F(r) = 1/S Σ_d Φ((r − R_(d)) / h),   h = 1.06 · std(R) · S^(−1/5)

R_(d) sorted, std unbiased, Φ the standard normal CDF. F⁻¹(α) is DomainBed's bisection:
32 halvings of [R_(1) + h z_α, R_(S) + h z_α] (z_α = Φ⁻¹(α)), stopping early when the
midpoint no longer moves. The returned point is a·lo + b·hi of the starting interval, so,
as in DomainBed, its gradient reaches the smallest and largest risk and h (all risks),
not the comparisons. Run in float64 as DomainBed does (α is a float64 buffer there);
the halvings are ``torch.where`` on the device, no host reads.

T = ``eqrm_burnin_iters``, α = ``eqrm_quantile``. At t = T Adam restarts with learning rate
``eqrm_lr`` (DomainBed builds a new Adam). DomainBed's default T is the integer 2500 but
its draws 10^U(2.5, 3.5) are not integers; T is a float here, so a drawn T behaves as in
DomainBed: the quantile starts at step ⌈T⌉ and the restart (t == T) never happens.
With ``per_domain_passes`` (the DomainBed presets) each domain goes through the network
alone, as in DomainBed, else all at once. Needs S ≥ 2 (h uses the standard deviation).
``unlabeled`` is ignored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.adam_restart import restart_optimizer
from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.minibatches import forward_each
from dgsamp.errors import UserError
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

BISECTION_STEPS = 32


def normal_cdf(value: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    """Φ((value − loc) / scale), written as ``torch.distributions.Normal.cdf`` computes it."""
    return 0.5 * (1 + torch.erf((value - loc) * scale.reciprocal() / math.sqrt(2)))


def kde_quantile(risks: Tensor, alpha: Tensor) -> Tensor:
    """F⁻¹(α) of the Gaussian KDE of ``risks`` [S] (α: a 0-dim float64 tensor in (0, 1))."""
    data = torch.sort(risks).values
    bandwidth = 1.06 * torch.std(data) * data.shape[0] ** (-0.2)
    # Normal(R_(1) or R_(S), h).icdf(α), in the order torch.distributions computes it
    lo = data[0] + bandwidth * torch.erfinv(2 * alpha - 1) * math.sqrt(2)
    hi = data[-1] + bandwidth * torch.erfinv(2 * alpha - 1) * math.sqrt(2)
    scales = torch.ones_like(data) * bandwidth.detach()
    point = 0.5 * (lo + hi)
    settled = torch.zeros((), dtype=torch.bool, device=risks.device)
    for _ in range(BISECTION_STEPS):
        with torch.no_grad():
            above = normal_cdf(point.detach(), data.detach(), scales).mean() > alpha
        hi = torch.where(above, point, hi)
        lo = torch.where(above, lo, point)
        midpoint = 0.5 * (lo + hi)
        settled = settled | (midpoint == point)
        point = torch.where(settled, point, midpoint)
    return point


@register_algorithm("EQRM")
class EQRM(Algorithm):
    """Minimise the α-quantile of the per-domain risks after an ERM burn-in."""

    HPARAMS = {
        "eqrm_quantile": HParam(
            0.75, lambda r: r.uniform(0.5, 0.99), "quantile α of the risks",
            minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True,
        ),
        "eqrm_burnin_iters": HParam(
            2500.0, lambda r: 10 ** r.uniform(2.5, 3.5), "ERM steps T before the quantile",
            minimum=0,
        ),
        "eqrm_lr": HParam(
            1e-6, lambda r: 10 ** r.uniform(-7, -5), "Adam learning rate from step T on",
            minimum=0, exclusive_minimum=True,
        ),
    }
    PAPER = (
        "Eastwood, Robey, Singh, von Kügelgen, Hassani, Pappas & Schölkopf: Probable Domain "
        "Generalization via Quantile Risk Minimization, NeurIPS 2022, arXiv:2207.09944"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"
    PER_DOMAIN_PASSES = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        if num_domains < 2:
            raise UserError("EQRM needs at least 2 training domains (its quantile uses their spread)")
        self.steps = StepCounter()
        self.register_buffer("alpha", torch.tensor(self.hparams["eqrm_quantile"], dtype=torch.float64))
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        logits = forward_each(self.predict, [x for x, _ in minibatches], self.per_domain_passes)
        risks = torch.stack([F.cross_entropy(z, y) for z, (_, y) in zip(logits, minibatches)])  # [S]
        step, burn_in = self.steps.value, self.hparams["eqrm_burnin_iters"]
        loss = risks.mean() if step < burn_in else kde_quantile(risks, self.alpha)
        if step == burn_in:
            restart_optimizer(self.optimizer, self.hparams["eqrm_lr"])
        self.step(loss)
        self.steps.increment()
        return {"loss": loss.detach().float(), "class_loss": risks.detach().mean()}
