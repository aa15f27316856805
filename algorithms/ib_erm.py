"""IB-ERM: ERM plus an information-bottleneck penalty on the features, as in DomainBed.

Ahuja et al. (NeurIPS 2021) bound the entropy of the representation by its variance.
With Z_d = f(x_d) [n_d, D] the features of domain d's batch,

    P_IB = 1/S Σ_d 1/D Σ_j Var_i(Z_d[i, j])          (unbiased variance over the n_d rows)
    L    = 1/S Σ_d R_d  +  β_t · P_IB

β_t = 0 for the first T = ``ib_penalty_anneal_iters`` steps, then ``ib_lambda``; Adam's
moments are reset at t = T (DomainBed builds a new Adam there). The featurizer runs once
on the concatenated domains; ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgsamp.algorithms.annealed_penalty import AnnealedPenaltyAlgorithm
from dgsamp.algorithms.minibatches import concat_minibatches, per_domain_cross_entropy
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

IB_PAPER = (
    "Ahuja, Caballero, Zhang, Gagnon-Audet, Bengio, Mitliagkas, Rish: Invariance Principle "
    "Meets Information Bottleneck for Out-of-Distribution Generalization, NeurIPS 2021, "
    "arXiv:2106.06607"
)
IB_LAMBDA = HParam(
    1e2,
    lambda r: 10 ** r.uniform(-1, 5),
    "weight of the feature-variance penalty after anneal",
    minimum=0,
)
IB_ANNEAL = HParam(
    500,
    lambda r: int(10 ** r.uniform(0, 4)),
    "steps with the IB penalty off (weight 0)",
    minimum=0,
)


def ib_penalty(features: Tensor, sizes: list[int]) -> Tensor:
    """1/S Σ_d mean_j Var_i(Z_d[i, j]) for ``features`` [N, D] split into ``sizes`` [n_d]."""
    return torch.stack([z.var(dim=0).mean() for z in features.split(sizes)]).mean()


@register_algorithm("IB_ERM")
class IB_ERM(AnnealedPenaltyAlgorithm):
    """Penalise the within-domain variance of the features (after an annealing period)."""

    HPARAMS = {"ib_lambda": IB_LAMBDA, "ib_penalty_anneal_iters": IB_ANNEAL}
    PAPER = IB_PAPER
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    LAMBDA_HPARAM = "ib_lambda"
    ANNEAL_HPARAM = "ib_penalty_anneal_iters"

    def penalty_weight(self) -> float:
        """β_t: 0 before the anneal (IRM and V-REx use 1), ``ib_lambda`` after."""
        annealed = self.steps.value >= self.hparams[self.ANNEAL_HPARAM]
        return self.hparams[self.LAMBDA_HPARAM] if annealed else 0.0

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        weight = self.penalty_weight()
        x, y, sizes = concat_minibatches(minibatches)
        features = self.featurizer(x)
        nll = per_domain_cross_entropy(self.classifier(features), y, sizes).mean()
        penalty = ib_penalty(features, sizes)
        loss = nll + weight * penalty
        self.optimize(loss)
        return {"loss": loss.detach(), "class_loss": nll.detach(), "ib_penalty": penalty.detach()}
