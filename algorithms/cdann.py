"""CDANN: conditional domain-adversarial training (Li et al., ECCV 2018), as in DomainBed.

DANN (see ``dann.py``) with a class-conditional discriminator: a learned class
embedding E [K, D] is added to the feature before the discriminator,

    u_i   = f(x_i) + E[y_i]                                        [N, D]
    L_dom = Σ_i w_i CE(h(u_i), d_i),   w_i = 1 / (n_{y_i} · (max_j y_j + 1))

with n_c the examples of class c in the batch: DomainBed's ``F.one_hot(y).sum(0)``
counts classes 0..max(y), so the normaliser is the largest label in the batch + 1, not
the number of classes present. When every class up to the largest occurs, each class
carries total weight 1/(max y + 1) and the weights sum to 1; a class absent below the
largest still counts in the normaliser, so the weights then sum to K_present/(max y + 1).
Aligning p(f(x) | y) per class instead of p(f(x)) keeps the alignment from mixing classes
whose priors differ across domains. The gradient penalty (DANN's) is taken at u_i and is
unweighted, as in DomainBed.

Domain adaptation: target examples have no label, so y_i is the classifier's
prediction argmax g(f(x_i)) (detached) for them, both in E[y_i] and in the weights; the
targets share the extra domain label S as in DANN. E is trained with the
discriminator (same optimizer, ``lr_d``). Hparams: DANN's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.dann import DANN
from dgsamp.registry import register_algorithm


@register_algorithm("CDANN")
class CDANN(DANN):
    """DANN whose discriminator sees the class through an additive embedding."""

    PAPER = (
        "Li, Tian, Gong, Liu, Liu, Zhang & Tao: Deep Domain Generalization via Conditional "
        "Invariant Adversarial Networks, ECCV 2018 (no arXiv version)"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.class_embeddings = nn.Embedding(num_classes, featurizer.n_outputs)
        self.disc_opt.add_param_group({"params": list(self.class_embeddings.parameters())})

    def discriminator_input(self, z: Tensor, y: Tensor) -> Tensor:
        return z + self.class_embeddings(y)

    def domain_loss(self, logits: Tensor, domains: Tensor, y: Tensor) -> Tensor:
        """Class-balanced CE: Σ_i CE_i / (n_{y_i} · (max y + 1)), ``logits`` [N, S or S+1]."""
        weights = class_balance_weights(y, self.num_classes)
        return (weights * F.cross_entropy(logits, domains, reduction="none")).sum()


def class_balance_weights(y: Tensor, num_classes: int) -> Tensor:
    """DomainBed's w_i = 1 / (n_{y_i} · (max_j y_j + 1)) for labels ``y`` [N] in [0, K).

    n_c = #{j : y_j = c}; max y + 1 is read as the index of the last non-empty class + 1,
    computed on the device (no host synchronisation, unlike ``F.one_hot`` without K).
    """
    counts = torch.zeros(num_classes, device=y.device).index_add_(
        0, y, torch.ones(y.shape, device=y.device)
    )
    n_labels = (torch.arange(1, num_classes + 1, device=y.device) * (counts > 0)).amax()
    return 1.0 / (counts[y] * n_labels)
