"""Fishr: match the domains' per-example gradient variances (Ramé et al., ICML 2022).

DomainBed's version, on the classifier g_φ only (φ: its weights and biases, P entries).
For example i of domain d with features z_i = f(x_i), the per-example gradient is

    γ_i = ∇_φ CE(g_φ(z_i), y_i)                                         [P]
    v_d = 1/n_d Σ_{i ∈ d} (γ_i − γ̄_d)²      (biased variance, elementwise)   [P]

smoothed across steps per domain by an exponential moving average with DomainBed's
"1 − ema" correction (state m_d, zero before the first step, kept in a buffer):

    m_d ← ema · m_d + (1 − ema) · v_d,    ṽ_d = m_d / (1 − ema)   (gradient flows via v_d)

    P_Fishr = 1/S Σ_d mean_P (ṽ_d − 1/S Σ_e ṽ_e)²
    L = mean CE over all N examples + β_t · P_Fishr

β_t = 0 for the first T = ``penalty_anneal_iters`` steps, then ``lambda``; Adam's moments
are reset at t = T (DomainBed builds a new Adam). The EMA updates on every step, the
annealing ones included. Parameters are flattened in sorted-name order (DomainBed's).

Per-example gradients: DomainBed uses BackPACK's ``BatchGrad`` on an extended classifier;
dgsamp computes the same γ_i with ``torch.func`` (``vmap(grad(...))`` over a
``functional_call`` of the classifier), differentiable in z and φ, so the penalty trains
the featurizer and the classifier as BackPACK's ``create_graph`` backward does. While
β_t = 0 the penalty is computed on detached inputs (same value, no second-order graph).
The featurizer runs once on the concatenated domains; ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from dgsamp.algorithms.annealed_penalty import AnnealedPenaltyAlgorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def per_example_gradients(
    classifier: nn.Module, z: Tensor, y: Tensor, detach: bool = False
) -> Tensor:
    """[N, P]: row i = ∇_φ CE(g_φ(z_i), y_i), parameters flattened in sorted-name order.

    ``z`` [N, D], ``y`` [N]. With ``detach`` the rows carry no graph to ``z`` or φ.
    """
    params = {name: p.detach() if detach else p for name, p in classifier.named_parameters()}
    z = z.detach() if detach else z

    def example_loss(params: dict[str, Tensor], z_i: Tensor, y_i: Tensor) -> Tensor:
        logits = functional_call(classifier, params, (z_i.unsqueeze(0),))
        return F.cross_entropy(logits, y_i.unsqueeze(0))

    grads = vmap(grad(example_loss), in_dims=(None, 0, 0))(params, z, y)
    return torch.cat([grads[name].reshape(z.shape[0], -1) for name in sorted(grads)], dim=1)


def gradient_variances(grads: Tensor, sizes: list[int]) -> Tensor:
    """[S, P]: per domain, the elementwise biased variance of its rows of ``grads`` [N, P]."""
    return torch.stack(
        [(g - g.mean(dim=0, keepdim=True)).pow(2).mean(dim=0) for g in grads.split(sizes)]
    )


def fishr_penalty(variances: Tensor) -> Tensor:
    """1/S Σ_d mean_P (ṽ_d − mean_e ṽ_e)² for the smoothed variances ``variances`` [S, P]."""
    return (variances - variances.mean(dim=0)).pow(2).mean(dim=1).sum() / variances.shape[0]


@register_algorithm("Fishr")
class Fishr(AnnealedPenaltyAlgorithm):
    """ERM whose classifier-gradient variances are pulled together across domains."""

    HPARAMS = {
        "lambda": HParam(
            1000.0, lambda r: 10 ** r.uniform(1.0, 4.0), "penalty weight after anneal", minimum=0
        ),
        "penalty_anneal_iters": HParam(
            1500,
            lambda r: int(r.uniform(0.0, 5000.0)),
            "steps with the penalty off (weight 0)",
            minimum=0,
        ),
        "ema": HParam(
            0.95,
            lambda r: r.uniform(0.90, 0.99),
            "moving-average decay of the gradient variances",
            minimum=0,
            maximum=1,
            exclusive_maximum=True,
        ),
    }
    PAPER = (
        "Ramé, Dancette, Cord: Fishr: Invariant Gradient Variances for Out-of-Distribution "
        "Generalization, ICML 2022, arXiv:2109.02934"
    )
    SOURCE = (
        "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9 "
        "(BackPACK replaced by torch.func)"
    )

    LAMBDA_HPARAM = "lambda"
    ANNEAL_HPARAM = "penalty_anneal_iters"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        n_params = sum(p.numel() for p in self.classifier.parameters())
        self.register_buffer("ema_variances", torch.zeros(num_domains, n_params))

    def penalty_weight(self) -> float:
        """β_t: 0 before the anneal (IRM and V-REx use 1), ``lambda`` after."""
        annealed = self.steps.value >= self.hparams[self.ANNEAL_HPARAM]
        return self.hparams[self.LAMBDA_HPARAM] if annealed else 0.0

    def smoothed_variances(self, variances: Tensor) -> Tensor:
        """ṽ [S, P] from this step's v [S, P]; advances the moving average m."""
        ema = self.hparams["ema"]
        average = ema * self.ema_variances + (1 - ema) * variances
        self.ema_variances.copy_(average.detach())
        return average / (1 - ema)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        if len(minibatches) != self.num_domains:
            raise ValueError(f"Fishr expects {self.num_domains} domains, got {len(minibatches)}")
        weight = self.penalty_weight()
        x, y, sizes = concat_minibatches(minibatches)
        z = self.featurizer(x)
        logits = self.classifier(z)
        grads = per_example_gradients(self.classifier, z, y, detach=weight == 0)
        penalty = fishr_penalty(self.smoothed_variances(gradient_variances(grads, sizes)))
        nll = F.cross_entropy(logits, y)
        loss = nll + weight * penalty
        self.optimize(loss)
        return {"loss": loss.detach(), "class_loss": nll.detach(), "penalty": penalty.detach()}
