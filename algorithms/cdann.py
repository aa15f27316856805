"""CDANN: conditional domain-adversarial training (Li et al., ECCV 2018), as in DomainBed.

DANN (see ``dann.py``) with a class-conditional discriminator: a learned class
embedding E [K, D] is added to the feature before the discriminator,

    u_i = f(x_i) + E[y_i]                                          [N, D]
    L_dom = Σ_i w_i CE(h(u_i), d_i),   w_i = 1 / (K_present · n_{y_i})

so each class present in the batch carries the same total weight 1/K_present
(n_c = examples of class c in the batch). Aligning p(f(x) | y) per class instead of
p(f(x)) keeps the alignment from mixing classes whose priors differ across domains.

Domain adaptation: target examples have no label, so y_i is the classifier's
prediction argmax g(f(x_i)) (detached) for them, both in E[y_i] and in the weights; the
targets share the extra domain label S as in DANN. E is trained with the
discriminator (same optimizer, ``lr_d``). Hparams: DANN's.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.dann import DANN
from dgsamp.registry import register_algorithm


@register_algorithm("CDANN")
class CDANN(DANN):
    """DANN whose discriminator sees the class through an additive embedding."""

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.class_embeddings = nn.Embedding(num_classes, featurizer.n_outputs)
        self.disc_opt.add_param_group({"params": list(self.class_embeddings.parameters())})

    def discriminator_input(self, z: Tensor, y: Tensor) -> Tensor:
        return z + self.class_embeddings(y)

    def domain_loss(self, logits: Tensor, domains: Tensor, y: Tensor) -> Tensor:
        """Class-balanced CE: Σ_i CE_i / (K_present · n_{y_i})."""
        counts = logits.new_zeros(self.num_classes).index_add_(0, y, logits.new_ones(y.shape))
        weights = 1.0 / (counts[y] * (counts > 0).sum())
        return (weights * F.cross_entropy(logits, domains, reduction="none")).sum()
