"""tllib's domain discriminator and its domain-adversarial loss (DANN's, Ganin et al. 2016).

The discriminator D maps an input u [N, F] to the probability D(u) [N, 1] that u comes
from the source domain (label 1; target: label 0):

    batch_norm=True  (tllib's default):  Linear(F, H) → BN → ReLU → Linear(H, H) → BN → ReLU
                                          → Linear(H, 1) → Sigmoid
    batch_norm=False:                     Linear(F, H) → ReLU → Dropout(0.5) → Linear(H, H)
                                          → ReLU → Dropout(0.5) → Linear(H, 1) → Sigmoid

with H = 1024 in every tllib script. The loss on source features f_s [n_s, F] and target
features f_t [n_t, F], both passed through one gradient reversal layer R (warm start,
``warm_start_grl.py``) and one discriminator call on their concatenation, is

    L = ½ [ 1/n_s Σ_i w_s,i · BCE(D(R(f_s,i)), 1) + 1/n_t Σ_j w_t,j · BCE(D(R(f_t,j)), 0) ]
    BCE(p, 1) = −max(log p, −100),  BCE(p, 0) = −max(log(1 − p), −100)

(the clamp at −100 is PyTorch's ``binary_cross_entropy``'s; the weights w default to 1).
Minimising L trains D to separate the domains and, through R, the featurizer to confuse it.
tllib splits D's output into halves (``chunk(2)``), which assumes n_s = n_t; here the split
follows n_s and n_t, so several source domains against one target also work, and the two
agree when n_s = n_t. The BCE is written out (not ``F.binary_cross_entropy``) so that it
runs under CUDA autocast, which refuses that function; probabilities are cast to float32.

Reference: tllib tllib/modules/domain_discriminator.py and tllib/alignment/dann.py
(``DomainAdversarialLoss``, sigmoid branch) @ c4aa59e.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgsamp.algorithms.warm_start_grl import TllibWarmStartGRL

HIDDEN_SIZE = 1024  # tllib's ``hidden_size`` in every domain-adaptation script


class DomainDiscriminator(nn.Sequential):
    """u [N, in_features] → P(source | u) [N, 1]: a three-layer MLP ending in a sigmoid."""

    def __init__(self, in_features: int, hidden_size: int = HIDDEN_SIZE, batch_norm: bool = True) -> None:
        output = nn.Sequential(nn.Linear(hidden_size, 1), nn.Sigmoid())  # drawn first, as tllib does
        if batch_norm:
            hidden: list[nn.Module] = [
                nn.Linear(in_features, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU(),
                nn.Linear(hidden_size, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU(),
            ]
        else:
            hidden = [
                nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Dropout(0.5),
                nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Dropout(0.5),
            ]
        super().__init__(*hidden, output)


def binary_cross_entropy(probability: Tensor, label: Tensor | float, weight: Tensor | None = None) -> Tensor:
    """mean_i w_i · BCE(p_i, y_i) for p [N, 1] or [N], labels y (1.0 source, 0.0 target) and weights w [N]."""
    p = probability.float().flatten()
    if isinstance(label, Tensor):
        label = label.float().flatten()
    log_p, log_not_p = torch.log(p.clamp_min(1e-44)).clamp_min(-100.0), torch.log((1 - p).clamp_min(1e-44)).clamp_min(-100.0)
    losses = -(label * log_p + (1.0 - label) * log_not_p)
    if weight is not None:
        losses = losses * weight.float().flatten()
    return losses.mean()


class DomainAdversarialLoss(nn.Module):
    """L(f_s [n_s, F], f_t [n_t, F], w_s [n_s]?, w_t [n_t]?) → scalar, through R and D."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.grl = TllibWarmStartGRL()

    def forward(
        self, f_s: Tensor, f_t: Tensor, w_s: Tensor | None = None, w_t: Tensor | None = None
    ) -> Tensor:
        d = self.discriminator(self.grl(torch.cat([f_s, f_t])))
        d_s, d_t = d.split([f_s.shape[0], f_t.shape[0]])
        return 0.5 * (binary_cross_entropy(d_s, 1.0, w_s) + binary_cross_entropy(d_t, 0.0, w_t))
