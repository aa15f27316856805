"""MLDG: meta-learning domain generalization (Li et al., AAAI 2018), first-order, as in DomainBed.

Each update splits the S domains by a random permutation π (torch's global CPU
generator, as DomainBed's ``split_meta_train_test``): meta-train = π[:S − T],
meta-test = π[−T:] (T = ``n_meta_test``), and pairs the i-th meta-train domain with
meta-test domain i mod T (both batches cut to their common size); T = 0 pairs every π_k
with π_{k+1 mod S} as DomainBed 7df6f06 did (``--protocol domainbed2020``). For each pair (i, j):

    G_i = ∇_θ CE_i(θ)                               meta-train gradient at θ
    θ'  = one step of a fresh Adam on G_i             (lr, weight decay of the run)
    G_j = ∇_θ' CE_j(θ')                              meta-test gradient at the stepped weights

and θ takes one Adam step along  1/S Σ_pairs (G_i + β G_j)  (β = ``mldg_beta``; the
first-order approximation of ∇_θ [CE_i(θ) + β CE_j(θ − α∇CE_i)] with no second
derivatives, DomainBed's FOMAML; note the 1/S, not 1/#pairs). θ' lives on the live
modules for the pair and θ (parameters and buffers) is restored after it, which is
DomainBed's deep-copied clone without the copy. The fresh inner Adam takes the outer
optimizer's current learning rate (DomainBed's ``lr``; they differ only under an LR
schedule). ``update`` reports ``loss`` = 1/S Σ_pairs (CE_i + β CE_j) (DomainBed's),
``class_loss`` = mean CE_i, ``meta_test_loss`` = mean CE_j. ``unlabeled`` is ignored.
"""

from __future__ import annotations

from itertools import cycle

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm, make_optimizer
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

Batch = tuple[Tensor, Tensor]


def meta_train_test_pairs(minibatches: list[Batch], num_meta_test: int) -> list[tuple[Batch, Batch]]:
    """(meta-train, meta-test) batch pairs from a random permutation π of the S domains.

    T = ``num_meta_test`` ≥ 1: DomainBed's ``split_meta_train_test`` (since 960f6a2), π[:S − T]
    each paired with meta-test domain π[S − T + (i mod T)]. T = 0: DomainBed 7df6f06's
    ``random_pairs_of_minibatches`` (the 2020 tables), (π_k, π_{k+1 mod S}) for every k, so
    each domain is meta-train once and meta-test once. Both batches are cut to their common size.
    """
    order = torch.randperm(len(minibatches)).tolist()
    if num_meta_test == 0:
        index_pairs = [(order[k], order[(k + 1) % len(order)]) for k in range(len(order))]
    else:
        meta_train, meta_test = order[: len(order) - num_meta_test], order[-num_meta_test:]
        index_pairs = list(zip(meta_train, cycle(meta_test)))
    pairs = []
    for i, j in index_pairs:
        (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
        n = min(len(xi), len(xj))
        pairs.append(((xi[:n], yi[:n]), (xj[:n], yj[:n])))
    return pairs


@register_algorithm("MLDG")
class MLDG(Algorithm):
    """Descend the meta-train loss and the meta-test loss after a step on it (first order)."""

    HPARAMS = {
        "mldg_beta": HParam(
            1.0, lambda r: 10 ** r.uniform(-1, 1), "weight β of the meta-test loss", minimum=0
        ),
        "n_meta_test": HParam(
            2, lambda r: r.choice([1, 2]),
            "domains held out as meta-test each step; 0: every domain meta-tests once, against the next "
            "in a random order (DomainBed 7df6f06, the 2020 tables)", minimum=0
        ),
    }
    PAPER = (
        "Li, Yang, Song, Hospedales: Learning to Generalize: Meta-Learning for Domain "
        "Generalization, AAAI 2018, arXiv:1710.03463"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        num_domains, beta = len(minibatches), self.hparams["mldg_beta"]
        params = [p for p in self.parameters() if p.requires_grad]
        state = [*self.parameters(), *self.buffers()]
        saved = [t.detach().clone() for t in state]
        total = [torch.zeros_like(p) for p in params]
        train_losses, test_losses = [], []
        for (xi, yi), (xj, yj) in meta_train_test_pairs(minibatches, self.hparams["n_meta_test"]):
            inner = make_optimizer(params, self.hparams, lr=self.optimizer.param_groups[0]["lr"])
            loss_i = F.cross_entropy(self.predict(xi), yi)
            grads_i = autograd.grad(loss_i, params, materialize_grads=True)
            for param, grad, acc in zip(params, grads_i, total):
                # in the parameter's own layout: fused Adam (CUDA) refuses a gradient strided otherwise
                param.grad = torch.empty_like(param).copy_(grad)
                acc.add_(grad / num_domains)
            inner.step()
            loss_j = F.cross_entropy(self.predict(xj), yj)
            grads_j = autograd.grad(loss_j, params, materialize_grads=True)
            for grad, acc in zip(grads_j, total):
                acc.add_(beta * grad / num_domains)
            with torch.no_grad():
                for tensor, value in zip(state, saved):
                    tensor.copy_(value)
            train_losses.append(loss_i.detach())
            test_losses.append(loss_j.detach())
        for param, grad in zip(params, total):
            param.grad = grad
        self.optimizer.step()
        zero = total[0].new_zeros(())
        train_sum = torch.stack(train_losses).sum() if train_losses else zero
        test_sum = torch.stack(test_losses).sum() if test_losses else zero
        pairs = max(1, len(train_losses))
        return {
            "loss": (train_sum + beta * test_sum) / num_domains,
            "class_loss": train_sum / pairs,
            "meta_test_loss": test_sum / pairs,
        }
