"""TRM: transfer risk minimisation (Xu & Jaakkola, 2021), as in DomainBed.

A representation is good when a classifier fitted on one domain transfers to the others.
For the first T = ``iters`` steps TRM is ERM. After that, each step t:

1. α ← α / rowsum(α)  (α [S, S], zero diagonal, starts at 1 − I; a buffer).
2. Per-domain heads h_1 .. h_S (linear D -> K, plus one unused as in DomainBed) take 30
   SGD steps (lr 0.1) on Σ_j CE(h_j(sg(Z_j)), y_j), Z_j = f(x_j) [n_j, D].
3. For each domain q, with W_q the weight of h_q, R_j(h) = CE(h(Z_j), y_j):

       P_q = Σ_{i≠q} α_qi R_i(h_q)                     h_q's risk on the other domains
       u_q = Neumann(H_q, sg(∇_{W_q} P_q)) ≈ H_q⁻¹ ∇_{W_q} P_q,  H_q = ∇²_{W_q} R_q(h_q)
       T_q = P_q − cos_lambda · ⟨sg(u_q), ∇_{W_q} R_q(h_q)⟩
       α_qi ← α_qi · exp(η · α_qi R_i(h_q))            η = ``groupdro_eta``

   L = CE(g(f(x)), y) over all examples + 1/S Σ_q T_q, minimised over f and g
   (the heads only move in step 2).

Neumann, as DomainBed computes it: v_0 = sg(∇P), v_k = v_{k−1} − H v_{k−1},
u = 2 v_1 + v_2 + … + v_m (DomainBed's in-place ``v -= hv`` aliases its first term, so
v_0 is replaced by v_1), stopping after the first m with max |u| > 10, else m = 10. dgsamp
runs all 10 products and keeps u from the stopping step (no host read of max |u|).

Two further DomainBed details are reproduced: P_q's value uses α before step 3's update
but its gradient uses α after it (DomainBed multiplies by ``alpha.data``, an alias that
the in-place update changes before ``backward``); and the classifier g is linear whatever
``nonlinear_classifier`` says (DomainBed's TRM builds ``nn.Linear``; dgsamp refuses the
flag rather than ignoring it). DomainBed's ``class_balanced`` branch (copy g's weight into
the heads) is off in every DomainBed sweep and is not an hparam here. ``unlabeled`` is
ignored. The heads' SGD has no state (no momentum), so ``optimizers()`` lists the Adam only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.errors import UserError
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

HEAD_STEPS, HEAD_LR = 30, 0.1
NEUMANN_TERMS, NEUMANN_BOUND = 10, 10.0


def neumann_inverse_hvp(head: nn.Linear, z: Tensor, y: Tensor, v: Tensor) -> Tensor:
    """DomainBed's Neumann estimate u of H⁻¹v [K·D] for H = ∇²_W CE(head(z), y) (see above)."""
    loss = F.cross_entropy(head(z.detach()), y)
    (first,) = autograd.grad(loss, head.weight, create_graph=True)
    first = first.flatten()
    v = v.detach()
    estimate = v
    stopped = torch.zeros((), dtype=torch.bool, device=v.device)
    for k in range(NEUMANN_TERMS):
        (hv,) = autograd.grad(first @ v, head.weight, retain_graph=True)
        v = v - hv.flatten()
        candidate = v + v if k == 0 else v + estimate
        estimate = candidate if k == 0 else torch.where(stopped, estimate, candidate)
        stopped = stopped | (candidate.abs().max() > NEUMANN_BOUND)
    return estimate.detach()


@register_algorithm("TRM")
class TRM(Algorithm):
    """ERM, then ERM plus the risk of each domain's fitted head on the other domains."""

    HPARAMS = {
        "cos_lambda": HParam(
            1e-4, lambda r: 10 ** r.uniform(-5, 0), "weight of the gradient alignment", minimum=0
        ),
        "iters": HParam(
            200, lambda r: int(10 ** r.uniform(0, 4)), "ERM steps before TRM starts", minimum=0
        ),
        "groupdro_eta": HParam(
            1e-2, lambda r: 10 ** r.uniform(-3, -1), "step size η of the α update", minimum=0
        ),
    }
    PAPER = (
        "Xu, Jaakkola: Learning Representations that Support Robust Transfer of Predictors, "
        "arXiv:2110.09940 (2021)"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        if hparams.get("nonlinear_classifier"):
            raise UserError(
                "TRM's classifier is linear (as DomainBed's); drop nonlinear_classifier"
            )
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.heads = nn.ModuleList(
            nn.Linear(featurizer.n_outputs, num_classes) for _ in range(num_domains + 1)
        )
        self.head_optimizers = [torch.optim.SGD(h.parameters(), lr=HEAD_LR) for h in self.heads]
        self.optimizer = self.default_optimizer([*self.featurizer.parameters(), *self.classifier.parameters()])
        self.register_buffer("alpha", torch.ones(num_domains, num_domains) - torch.eye(num_domains))
        self.steps = StepCounter()

    def fit_heads(self, zs: list[Tensor], ys: list[Tensor]) -> None:
        """Step 2: ``HEAD_STEPS`` SGD steps of every head on its domain's detached features."""
        for _ in range(HEAD_STEPS):
            fit = sum(
                F.cross_entropy(self.heads[j](z.detach()), y)
                for j, (z, y) in enumerate(zip(zs, ys))
            )
            for optimizer in self.head_optimizers:
                optimizer.zero_grad()
            fit.backward()
            for optimizer in self.head_optimizers:
                optimizer.step()

    def transfer_risk(self, features: Tensor, y: Tensor, sizes: list[int]) -> Tensor:
        """1/S Σ_q T_q (steps 1-3 above); updates α and the heads."""
        self.alpha /= self.alpha.sum(1, keepdim=True)
        zs, ys = list(features.split(sizes)), list(y.split(sizes))
        self.fit_heads(zs, ys)
        total, zero = features.new_zeros(()), features.new_zeros(())
        for q, head in enumerate(self.heads[: len(sizes)]):
            (grad_q,) = autograd.grad(
                F.cross_entropy(head(zs[q]), ys[q]), head.weight, create_graph=True
            )
            risks = {i: F.cross_entropy(head(z), ys[i]) for i, z in enumerate(zs) if i != q}
            before = self.alpha[q].clone()  # [S], α_qq = 0
            transfer = sum(r * before[i] for i, r in risks.items())
            (grad_p,) = autograd.grad(transfer, head.weight, retain_graph=True)
            direction = neumann_inverse_hvp(head, zs[q], ys[q], grad_p.flatten())
            with torch.no_grad():  # DomainBed's α_qi ← α_qi exp(η · α_qi R_i); α_qq stays 0
                row = torch.stack([risks.get(i, zero) for i in range(len(zs))])
                self.alpha[q] = before * (self.hparams["groupdro_eta"] * (row * before)).exp()
            after = self.alpha[q].clone()
            surrogate = sum(r * after[i] for i, r in risks.items())  # gradient with α after
            transfer = transfer.detach() + (surrogate - surrogate.detach())
            total = total + (transfer - self.hparams["cos_lambda"] * (direction @ grad_q.flatten()))
        return total / len(sizes)

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, sizes = concat_minibatches(minibatches)
        features = self.featurizer(x)
        nll = F.cross_entropy(self.classifier(features), y)
        if self.steps.value >= self.hparams["iters"]:
            transfer = self.transfer_risk(features, y, sizes)
            loss = nll + transfer
        else:
            transfer, loss = nll.new_zeros(()), nll
        self.step(loss)
        self.steps.increment()
        return {"loss": loss.detach(), "class_loss": nll.detach(), "trm_loss": transfer.detach()}
