"""V-REx: variance risk extrapolation (Krueger et al., ICML 2021), as in DomainBed.

With R_d = mean CE on training domain d (d = 1..S):

    L = 1/S Σ_d R_d  +  β_t · 1/S Σ_d (R_d − R̄)²,      R̄ = 1/S Σ_d R_d

β_t = 1 for the first ``vrex_penalty_anneal_iters`` steps, then ``vrex_lambda``. At the
step where β jumps, Adam's moment estimates are reset (DomainBed builds a new Adam; we
clear the state of the same optimizer, which is identical and keeps any LR scheduler
bound to it). The step count is a ``StepCounter`` buffer, so resuming from a checkpoint
keeps the schedule. ``unlabeled`` is ignored.
"""

from __future__ import annotations

from torch import Tensor

from dgsamp.algorithms.annealed_penalty import AnnealedPenaltyAlgorithm
from dgsamp.algorithms.minibatches import concat_minibatches, per_domain_cross_entropy
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


@register_algorithm("VREx")
class VREx(AnnealedPenaltyAlgorithm):
    """Penalise the variance of the per-domain risks."""

    PAPER = (
        "Krueger, Caballero, Jacobsen, Zhang, Binas, Zhang, Le Priol & Courville: "
        "Out-of-Distribution Generalization via Risk Extrapolation (REx), ICML 2021, "
        "arXiv:2003.00688"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    HPARAMS = {
        "vrex_lambda": HParam(
            1e1, lambda r: 10 ** r.uniform(-1, 5), "penalty weight β after anneal", minimum=0
        ),
        "vrex_penalty_anneal_iters": HParam(
            500, lambda r: int(10 ** r.uniform(0, 4)), "steps with β = 1 before β = vrex_lambda",
            minimum=0,
        ),
    }

    LAMBDA_HPARAM = "vrex_lambda"
    ANNEAL_HPARAM = "vrex_penalty_anneal_iters"

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        weight = self.penalty_weight()
        x, y, sizes = concat_minibatches(minibatches)
        risks = per_domain_cross_entropy(self.predict(x), y, sizes)  # [S]
        mean_risk = risks.mean()
        penalty = (risks - mean_risk).pow(2).mean()
        loss = mean_risk + weight * penalty
        self.optimize(loss)
        return {
            "loss": loss.detach(),
            "class_loss": mean_risk.detach(),
            "penalty": penalty.detach(),
        }
