"""RDM: risk distribution matching (Nguyen, Do, Duong & Nguyen, WACV 2024), as in DomainBed.

With S training domains of n examples each, ℓ [S, n] the per-example CEs, R_d = mean_i
ℓ_di and w = argmax_d R_d the worst domain, RDM matches the distribution of the worst
domain's losses ℓ_w [n] to that of all losses ℓ [S·n]:

    L = 1/S Σ_d R_d + β_t MMD²(ℓ_w, ℓ) + γ_t (Var(ℓ) + Var(ℓ_w))
    MMD²(a, b) = mean k(a, a) + mean k(b, b) − 2 mean k(a, b),
    k(u, v) = Σ_{g ∈ {1e-4, 1e-3, …, 1e3}} exp(−g max(|u − v|², 1e-30))

Var unbiased; β_t = ``rdm_lambda`` and γ_t = ``variance_weight`` from step T =
``rdm_penalty_anneal_iters`` on, 0 before; at t = T Adam restarts with learning rate
``rdm_lr`` (DomainBed builds a new Adam). The worst domain is picked on the device
(``index_select``, no host read). Defaults and draws of ``rdm_lambda``,
``rdm_penalty_anneal_iters``, ``variance_weight`` and ``batch_size`` depend on the dataset
exactly as in DomainBed's registry (RDM's own batch sizes: 88, or 40 on DomainNet and
TerraIncognita). Every domain must bring the same number of examples (DomainBed stacks
them). ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.adam_restart import restart_optimizer
from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

BANDWIDTHS = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
NO_VARIANCE = ("TerraIncognita", "OfficeHome", "DomainNet")


def gaussian_kernel(u: Tensor, v: Tensor) -> Tensor:
    """``[n_u, n_v]``: Σ_g exp(−g ‖u_i − v_j‖²) for ``u`` [n_u, 1], ``v`` [n_v, 1]."""
    distances = torch.addmm(v.pow(2).sum(1, keepdim=True).T, u, v.T, alpha=-2)
    distances = (distances + u.pow(2).sum(1, keepdim=True)).clamp_min(1e-30)
    return sum(torch.exp(distances * -g) for g in BANDWIDTHS)


def mmd(a: Tensor, b: Tensor) -> Tensor:
    """Biased MMD² between the scalar samples ``a`` [n_a] and ``b`` [n_b]."""
    a, b = a[:, None], b[:, None]
    return gaussian_kernel(a, a).mean() + gaussian_kernel(b, b).mean() - 2 * gaussian_kernel(a, b).mean()


@register_algorithm("RDM")
class RDM(Algorithm):
    """ERM plus matching the worst domain's loss distribution to the pooled one."""

    HPARAMS = {
        "rdm_lambda": HParam(
            5.0, lambda r: r.uniform(0.1, 10.0), "weight β of the MMD after the anneal", minimum=0,
            dataset_defaults={"DomainNet": 0.5},
            dataset_samples={
                "DomainNet": lambda r: r.uniform(0.1, 1.0),
                "PACS": lambda r: r.uniform(1.0, 10.0),
                "TerraIncognita": lambda r: r.uniform(1.0, 10.0),
            },
        ),
        "rdm_penalty_anneal_iters": HParam(
            1500, lambda r: int(r.uniform(800, 2700)), "steps T without penalties", minimum=0,
            dataset_defaults={"DomainNet": 2400},
            dataset_samples={"DomainNet": lambda r: int(r.uniform(1500, 3000))},
        ),
        "variance_weight": HParam(
            0.004, lambda r: r.uniform(0.001, 0.007), "weight γ of the variances after the anneal",
            minimum=0,
            dataset_defaults=dict.fromkeys(NO_VARIANCE, 0.0),
            dataset_samples=dict.fromkeys(NO_VARIANCE, lambda r: r.choice([0.0])),
        ),
        "rdm_lr": HParam(
            1.5e-5, lambda r: r.uniform(8e-6, 2e-5), "Adam learning rate from step T on",
            minimum=0, exclusive_minimum=True,
        ),
        "batch_size": HParam(
            88, lambda r: int(r.uniform(70, 100)), "examples per domain per step (RDM's range)",
            small_default=64, small_sample=lambda r: int(2 ** r.uniform(3, 9)), minimum=1,
            dataset_defaults={"DomainNet": 40, "TerraIncognita": 40},
            dataset_samples=dict.fromkeys(("DomainNet", "TerraIncognita"), lambda r: int(r.uniform(30, 60))),
        ),
    }
    PAPER = (
        "Nguyen, Do, Duong & Nguyen: Domain Generalisation via Risk Distribution Matching, "
        "WACV 2024, arXiv:2310.18598"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ b93c22a1cfc3b2428398272c1a116c8de1f4139e"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        self.steps = StepCounter()
        self.optimizer = self.default_optimizer()

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        step, anneal = self.steps.value, self.hparams["rdm_penalty_anneal_iters"]
        beta = self.hparams["rdm_lambda"] if step >= anneal else 0.0
        gamma = self.hparams["variance_weight"] if step >= anneal else 0.0
        x, y, sizes = concat_minibatches(minibatches)
        if len(set(sizes)) != 1:
            raise ValueError(f"RDM needs equal per-domain batch sizes, got {sizes}")
        losses = F.cross_entropy(self.predict(x), y, reduction="none").view(len(sizes), -1)  # [S, n]
        risks = losses.mean(1)  # [S]
        class_loss = risks.mean()
        worst = losses.index_select(0, risks.detach().argmax().view(1)).view(-1)  # [n]
        pooled = losses.view(-1)  # [S n]
        matching = mmd(worst, pooled)
        variance = torch.var(pooled) + torch.var(worst)
        loss = class_loss + beta * matching + gamma * variance  # DomainBed adds 0 · penalty too
        if step == anneal:
            restart_optimizer(self.optimizer, self.hparams["rdm_lr"])
        self.step(loss)
        self.steps.increment()
        return {
            "loss": loss.detach(), "class_loss": class_loss.detach(),
            "matching_penalty": matching.detach(), "variance_penalty": variance.detach(),
        }
