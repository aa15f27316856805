"""T3A: test-time template adjuster (Iwasawa & Matsuo, NeurIPS 2021).

The trained linear classifier ``g(z) = W z + b`` (W [K, D]) is replaced by prototypes built
from the test stream itself; the featurizer ``f`` is not changed.

    supports S (rows z, [M, D]), pseudo-labels L (one-hot, [M, K]), entropies h ([M])
    start:      S = W (the rows of the classifier weight), L = onehot(argmax g(W)), h = H(g(W))
    per batch:  z = f(x) [B, D];  S += z, L += onehot(argmax g(z)), h += H(g(z))
                filter: for each class k keep the filter_K supports labelled k with the
                        lowest entropy (all of them when filter_K = -1); the rest are dropped
                prototypes  c_k = normalize(Σ_{i: L_ik = 1} normalize(S_i)),  C [D, K]
                logits      z C   [B, K]      (no bias)

``filter_K`` ∈ {1, 5, 20, 50, 100, -1} in the paper's search; 100 is the default here.
Reference: matsuolab/T3A ``domainbed/adapt_algorithms.py`` (class ``T3A``) @
4228a5b3982c4ba9b30fb2c7ca22b6269c176a0f. One deliberate difference: there,
``filter_K = -1`` slices ``[:-1]`` and so drops each class's most uncertain support; here
-1 keeps every support, as the paper describes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.adaptation.base import TestTimeAdapter, classifier_of, softmax_entropy
from dgsamp.errors import UserError

FILTER_K_CHOICES = (1, 5, 20, 50, 100, -1)


class T3A(TestTimeAdapter):
    """Prototype classifier over entropy-filtered test features (module docstring)."""

    NAME = "t3a"
    HPARAMS = {"filter_K": 100}

    def __init__(self, algorithm: nn.Module, hparams: Mapping[str, Any]) -> None:
        super().__init__(algorithm, hparams)
        self.filter_k = int(self.hparams["filter_K"])
        if self.filter_k < 1 and self.filter_k != -1:
            raise UserError(f"t3a's filter_K must be -1 (keep all) or at least 1, got {self.filter_k}")
        self.classifier = classifier_of(self.model, "t3a")
        self.num_classes = self.classifier.out_features
        with torch.no_grad():
            weight = self.classifier.weight.detach().clone()
            self.supports, self.labels, self.entropies = self.pseudo_label(weight)

    @classmethod
    def check_model(cls, algorithm: nn.Module) -> None:
        classifier_of(algorithm, "t3a")

    def pseudo_label(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z, onehot(argmax g(z)) [N, K], H(g(z)) [N])``."""
        logits = self.classifier(z)
        return z, F.one_hot(logits.argmax(dim=1), self.num_classes).to(z.dtype), softmax_entropy(logits)

    def select_supports(self) -> None:
        """Keep, per class, the ``filter_K`` supports of lowest entropy (ties: earlier first)."""
        classes = self.labels.argmax(dim=1)
        kept = []
        for k in range(self.num_classes):
            members = torch.nonzero(classes == k).flatten()
            order = torch.sort(self.entropies[members], stable=True).indices
            chosen = members[order]
            kept.append(chosen if self.filter_k == -1 else chosen[: self.filter_k])
        keep = torch.cat(kept)
        self.supports, self.labels, self.entropies = self.supports[keep], self.labels[keep], self.entropies[keep]

    def prototypes(self) -> Tensor:
        """C [D, K]: per class, the normalised sum of its normalised supports."""
        return F.normalize(F.normalize(self.supports, dim=1).T @ self.labels, dim=0)

    @torch.no_grad()
    def adapt_and_predict(self, x: Tensor) -> Tensor:
        z = self.model.featurizer(x)
        z, labels, entropies = self.pseudo_label(z.float())
        self.supports = torch.cat([self.supports.to(z), z])
        self.labels = torch.cat([self.labels.to(z), labels])
        self.entropies = torch.cat([self.entropies.to(z), entropies])
        self.select_supports()
        return z @ self.prototypes()
