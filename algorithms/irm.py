"""IRM: invariant risk minimisation, IRMv1 (Arjovsky et al., 2019), as in DomainBed.

With logits l = g(f(x)) and R_d(w) = mean CE(w · l_i, y_i) over domain d, IRMv1 penalises
the gradient of each domain's risk with respect to a dummy scale w at w = 1:

    L = 1/S Σ_d R_d(1)  +  β_t · 1/S Σ_d ∂_w R_d^even(1) · ∂_w R_d^odd(1)

(the product of the gradients on the even- and odd-indexed halves of the batch is an
unbiased estimate of ‖∂_w R_d‖²). The gradient has a closed form,

    ∂_w CE(w l, y) |_{w=1} = ⟨softmax(l) − onehot(y), l⟩              per example [N]

so the penalty needs no extra autograd pass (same value and gradient as DomainBed's
``autograd.grad(..., create_graph=True)``). β_t = 1 for the first
``irm_penalty_anneal_iters`` steps, then ``irm_lambda``; Adam's state is reset at the
jump (see ``annealed_penalty.py``). ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dgsamp.algorithms.annealed_penalty import AnnealedPenaltyAlgorithm
from dgsamp.algorithms.minibatches import concat_minibatches, per_domain_cross_entropy
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def irm_penalty(logits: Tensor, y: Tensor, sizes: list[int]) -> Tensor:
    """1/S Σ_d mean_{even i ∈ d} s_i · mean_{odd i ∈ d} s_i, s_i = ⟨softmax(l_i), l_i⟩ − l_{i,y_i}.

    ``logits``: [N, K] (domains concatenated), ``y``: [N], ``sizes``: [n_d].
    """
    expected_logit = (F.softmax(logits, dim=1) * logits).sum(1)
    scale_grads = expected_logit - logits.gather(1, y[:, None]).squeeze(1)  # [N]
    scale_grads = scale_grads.split(sizes)  # ∂_w CE(w l_i, y_i) at w = 1, per domain
    return torch.stack([g[0::2].mean() * g[1::2].mean() for g in scale_grads]).mean()


@register_algorithm("IRM")
class IRM(AnnealedPenaltyAlgorithm):
    """Make the classifier simultaneously optimal for every domain (IRMv1 penalty)."""

    PAPER = (
        "Arjovsky, Bottou, Gulrajani & Lopez-Paz: Invariant Risk Minimization, 2019, "
        "arXiv:1907.02893"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    HPARAMS = {
        "irm_lambda": HParam(
            1e2, lambda r: 10 ** r.uniform(-1, 5), "penalty weight β after anneal", minimum=0
        ),
        "irm_penalty_anneal_iters": HParam(
            500, lambda r: int(10 ** r.uniform(0, 4)), "steps with β = 1 before β = irm_lambda",
            minimum=0,
        ),
    }

    LAMBDA_HPARAM = "irm_lambda"
    ANNEAL_HPARAM = "irm_penalty_anneal_iters"

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        weight = self.penalty_weight()
        x, y, sizes = concat_minibatches(minibatches)
        logits = self.predict(x)
        nll = per_domain_cross_entropy(logits, y, sizes).mean()
        penalty = irm_penalty(logits, y, sizes)
        loss = nll + weight * penalty
        self.optimize(loss)
        return {"loss": loss.detach(), "class_loss": nll.detach(), "penalty": penalty.detach()}
