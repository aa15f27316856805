"""RSC: representation self-challenging (Huang et al., ECCV 2020), as in DomainBed.

With z = f(x) [N, D], l = g(z) [N, K] and o = onehot(y) [N, K], each step mutes the
features the classifier leans on most and trains on what is left:

    G   = ∂ Σ_i ⟨l_i, o_i⟩ / ∂z                       [N, D]  true-class logit gradient (Eq. 1)
    m^f_ij = 1[G_ij < P_{100(1−p_f)}(G_i·)]           [N, D]  per example: the p_f·D features
                                                               with the largest G are muted (Eq. 2)
    c_i = softmax(l_i)_{y_i} − softmax(g(z_i ⊙ m^f_i))_{y_i}   [N]  confidence lost by muting
    m^b_i  = 1[c_i < P_{100(1−p_b)}(c)]               [N]    only the p_b·N examples with the
                                                               largest drop keep the mute (§3.3)
    m   = m^f ∨ m^b                                   [N, D]
    L   = 1/N Σ_i CE(g(z_i ⊙ m_i), y_i)                       (Eqs. 3–5)

p_f = ``rsc_f_drop_factor``, p_b = ``rsc_b_drop_factor``. P_q is NumPy's default
percentile (linear interpolation, Hyndman–Fan type 7), which DomainBed computes on the
host with ``np.percentile``; ``numpy_percentile`` does the same arithmetic on the device
(index and weight as host floats, interpolation in float64 as NumPy 1.x does, then
rounded to the features' dtype as DomainBed's comparison does; NumPy 2 interpolates
float32 inputs in float32, which can move the threshold by one ulp), so ``update``
never reads the device. The featurizer runs once on the concatenated domains (as in
DomainBed); ``unlabeled`` is ignored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def numpy_percentile(values: Tensor, percent: float) -> Tensor:
    """``np.percentile(values, percent, axis=-1)`` (method "linear") on the device.

    ``values``: [..., n] -> [...] in ``values.dtype``. The virtual index (n − 1)·q
    (q = percent / 100) and its fractional part are host floats, as in NumPy.
    """
    n = values.shape[-1]
    virtual = (n - 1) * (percent / 100)
    below = math.floor(virtual)
    if virtual >= n - 1:
        below = above = n - 1
    elif virtual < 0:
        below = above = 0
    else:
        above = below + 1
    gamma = virtual - below
    ordered = values.sort(dim=-1).values.double()
    low, high = ordered[..., below], ordered[..., above]
    step = high - low
    value = high - step * (1 - gamma) if gamma >= 0.5 else low + step * gamma
    return value.to(values.dtype)


def feature_keep(grads: Tensor, drop_f: float) -> Tensor:
    """¬(muted) [N, D] bool: G_ij below the example's ``drop_f``-th percentile (m^f)."""
    return grads < numpy_percentile(grads, drop_f)[:, None]


def rsc_mask(keep_features: Tensor, changes: Tensor, drop_b: float) -> Tensor:
    """m = m^f ∨ m^b [N, D] (float) from m^f [N, D] and the confidence drops ``changes`` [N]."""
    keep_examples = changes < numpy_percentile(changes, drop_b)
    return (keep_features | keep_examples[:, None]).float()


@register_algorithm("RSC")
class RSC(Algorithm):
    """Train on features with the most predictive ones muted, for the least confident examples."""

    HPARAMS = {
        "rsc_f_drop_factor": HParam(
            1 / 3, lambda r: r.uniform(0, 0.5), "fraction p_f of features muted per example",
            minimum=0, maximum=1,
        ),
        "rsc_b_drop_factor": HParam(
            1 / 3, lambda r: r.uniform(0, 0.5), "fraction p_b of examples whose features are muted",
            minimum=0, maximum=1,
        ),
    }
    PAPER = (
        "Huang, Wang, Xing, Huang: Self-Challenging Improves Cross-Domain Generalization, "
        "ECCV 2020, arXiv:2007.02454"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.drop_f = (1 - self.hparams["rsc_f_drop_factor"]) * 100
        self.drop_b = (1 - self.hparams["rsc_b_drop_factor"]) * 100
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        onehot = F.one_hot(y, self.num_classes)
        z = self.featurizer(x)
        logits = self.classifier(z)
        (grads,) = autograd.grad((logits * onehot).sum(), z)  # frees only g's graph
        with torch.no_grad():
            keep = feature_keep(grads, self.drop_f)
            true_prob = (F.softmax(logits, dim=1) * onehot).sum(1)
            muted_prob = (F.softmax(self.classifier(z * keep.float()), dim=1) * onehot).sum(1)
            mask = rsc_mask(keep, true_prob - muted_prob, self.drop_b)
        loss = F.cross_entropy(self.classifier(z * mask), y)
        self.step(loss)
        loss = loss.detach()
        return {"loss": loss, "class_loss": loss}
