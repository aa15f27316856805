"""ADRMX: additive disentanglement of domain features with remix loss (Demirel et al., 2023).

As DomainBed runs it. Two featurizers: f_l (label, ``featurizer``) and f_d (domain); the
domain-invariant part is their difference. On the N pooled examples with domains d_i:

    z_l = f_l(x), z_d = f_d(x), z = z_l − z_d                                [N, D]
    discriminator h (MLP, S outputs):  L_h = CE(h(z), d)
    step t = 1, 2, ...: t mod (1 + k) < k -> h ← Adam step on L_h (f_l, f_d without autograd)
    else (f_l, f_d, g_1, g_2, g_d; Adam):
      L = CE(g_1(z_l), y) + CE(g_2(z), y) + μ_d CE(g_d(z_d), d) + μ_r L_rmx
          + μ_c (SupCon_λ(z_l) + SupCon_λ(z)) − μ_h L_h
      L_rmx = 1/K Σ_c CE(g_1(z_{a_c} + z_d,{b_c}), y_{a_c})   over classes c with n_c ≥ 2

g_1, g_2, g_d are DomainBed's nonlinear classifiers (D -> D/2 -> D/4 -> out) whatever
``nonlinear_classifier`` says; ``predict`` is g_1(f_l(x)). SupCon_λ is DomainBed's
``SupConLossLambda`` (τ = 0.07, λ = 0.5): with s = ẑẑᵀ/τ on L2-normalised features and
w_ij = λ (same domain) or 1 − λ, P_i = {j ≠ i : y_j = y_i},
ℓ_i = 1/|P_i| Σ_{j∈P_i} log(w_ij e^{s_ji} / (Σ_{j≠i} w_ij e^{s_ji} + 1e-5) + 1e-5), and
SupCon = −Σ_{|P_i|>0} ℓ_i / (N − #{|P_i| = 0} + 1).

Remix draws, as DomainBed: for each class c in order, ``torch.randperm(n_c)`` on the CPU
generator, and (a_c, b_c) = its first two entries *used as batch positions* (DomainBed
indexes the whole batch with them, not the class's examples; so is it here). The class
counts come from y: ADRMX reads them on the host once per generator step.

k = ``d_steps_per_g_step``; μ_c, μ_d, μ_r, μ_h = ``cnt_lambda``, ``dclf_lambda``,
``rmxd_lambda``, ``disc_lambda``; both Adams use ``lr``, betas (``beta1``, 0.9), no weight
decay. Every step reports ``loss`` (the objective it descends: L_h or L), ``class_loss``
(CE(g_1(z_l), y)) and ``disc_loss`` (L_h). f_d starts as a copy of f_l: DomainBed builds a second featurizer, which for its
pretrained ResNets holds the same weights; for a featurizer that is not a timm backbone (the
MNIST CNN, randomly initialised in DomainBed) the copy is re-initialised. ``unlabeled`` is
ignored.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_classifier, make_optimizer
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.minibatches import concat_minibatches, domain_labels
from dgsamp.algorithms.mlp import MLP
from dgsamp.backbones.factory import TimmFeaturizer
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


def constant(value: float | int, help_text: str) -> HParam:
    """DomainBed draws these from one-element lists."""
    return HParam(value, lambda r: r.choice([value]), help_text, minimum=0)


def supcon_lambda(features: Tensor, y: Tensor, domains: Tensor, lam: float = 0.5, tau: float = 0.07) -> Tensor:
    """DomainBed's ``SupConLossLambda`` (module docstring) on ``features`` [N, D], vectorised."""
    n = features.shape[0]
    normalized = F.normalize(features, p=2, dim=1)
    similarities = (normalized @ normalized.T / tau).T  # DomainBed reads column i: s_ji
    not_self = ~torch.eye(n, dtype=torch.bool, device=features.device)
    positives = (y[:, None] == y[None, :]) & not_self
    weights = torch.where(domains[:, None] == domains[None, :], lam, 1 - lam)
    scaled = weights * torch.exp(similarities) * not_self
    denominator = scaled.sum(1, keepdim=True) + 1e-5
    log_fraction = torch.log(scaled / denominator + 1e-5) * positives
    count = positives.sum(1)
    valid = count > 0
    per_row = torch.where(valid, log_fraction.sum(1) / count.clamp_min(1), torch.zeros_like(denominator[:, 0]))
    return -per_row.sum() / (n - (~valid).sum() + 1)


@register_algorithm("ADRMX")
class ADRMX(Algorithm):
    """Label and domain featurizers whose difference is domain-invariant, plus a remix loss."""

    HPARAMS = {
        "cnt_lambda": constant(1.0, "weight μ_c of the two SupCon losses"),
        "dclf_lambda": constant(1.0, "weight μ_d of the domain classifier's CE"),
        "disc_lambda": constant(0.75, "weight μ_h of the (maximised) discriminator CE"),
        "rmxd_lambda": constant(1.0, "weight μ_r of the remix CE"),
        "d_steps_per_g_step": constant(2, "discriminator steps k per generator step"),
        "beta1": HParam(0.5, lambda r: r.choice([0.5]), "Adam β1", minimum=0, maximum=1, exclusive_maximum=True),
        "mlp_width": constant(256, "discriminator width"),
        "mlp_depth": HParam(9, lambda r: int(r.choice([8, 9, 10])), "discriminator linear layers", minimum=2),
        "mlp_dropout": HParam(0.0, lambda r: r.choice([0]), "discriminator dropout", minimum=0, maximum=1),
        "lr": HParam(
            3e-5, lambda r: r.choice([2e-5, 3e-5, 4e-5, 5e-5]), "learning rate of both Adams",
            small_default=3e-3, small_sample=lambda r: r.choice([5e-4, 1e-3, 2e-3, 3e-3]),
            minimum=0, exclusive_minimum=True,
        ),
    }
    PAPER = (
        "Demirel, Aptoula & Ozkan: ADRMX: Additive Disentanglement of Domain Features with "
        "Remix Loss, 2023, arXiv:2308.06624"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ b93c22a1cfc3b2428398272c1a116c8de1f4139e"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp, width = self.hparams, featurizer.n_outputs
        self.featurizer_domain = copy.deepcopy(featurizer)
        if not isinstance(featurizer, TimmFeaturizer):  # no pretrained weights: a fresh draw
            for module in self.featurizer_domain.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
        self.discriminator = MLP.from_hparams(width, num_domains, hp)
        self.classifier = make_classifier(width, num_classes, nonlinear=True)  # g_1
        self.classifier_label_2 = make_classifier(width, num_classes, nonlinear=True)
        self.classifier_domain = make_classifier(width, num_domains, nonlinear=True)
        self.steps = StepCounter()
        betas = (hp["beta1"], 0.9)
        self.disc_opt = make_optimizer(self.discriminator.parameters(), hp, weight_decay=0.0, betas=betas)
        self.opt = make_optimizer(
            [*self.featurizer.parameters(), *self.featurizer_domain.parameters(), *self.classifier.parameters(),
             *self.classifier_label_2.parameters(), *self.classifier_domain.parameters()],
            hp, weight_decay=0.0, betas=betas,
        )

    @property
    def flops_cycle(self) -> int:
        return 1 + self.hparams["d_steps_per_g_step"]

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        step = self.steps.increment()
        x, y, sizes = concat_minibatches(minibatches)
        domains = domain_labels(sizes, x.device)
        k = self.hparams["d_steps_per_g_step"]
        if step % (1 + k) < k:
            with torch.no_grad():
                z_label = self.featurizer(x)
                z = z_label - self.featurizer_domain(x)
            disc_loss = F.cross_entropy(self.discriminator(z), domains)
            self.step(disc_loss, self.disc_opt)
            with torch.no_grad():
                class_loss = F.cross_entropy(self.classifier(z_label), y)
            return {"loss": disc_loss.detach(), "class_loss": class_loss, "disc_loss": disc_loss.detach()}
        z_label, z_domain = self.featurizer(x), self.featurizer_domain(x)
        z = z_label - z_domain
        disc_loss = F.cross_entropy(self.discriminator(z), domains)
        domain_loss = F.cross_entropy(self.classifier_domain(z_domain), domains)
        class_loss = F.cross_entropy(self.classifier(z_label), y)
        contrast_label = supcon_lambda(z_label, y, domains)
        final_loss = F.cross_entropy(self.classifier_label_2(z), y)
        contrast_final = supcon_lambda(z, y, domains)
        remix_loss = self.remix_loss(z, z_domain, y)
        hp = self.hparams
        loss = (
            class_loss + final_loss + hp["dclf_lambda"] * domain_loss + hp["rmxd_lambda"] * remix_loss
            + hp["cnt_lambda"] * (contrast_label + contrast_final) + hp["disc_lambda"] * -disc_loss
        )
        self.disc_opt.zero_grad(set_to_none=True)
        self.step(loss, self.opt)
        return {"loss": loss.detach(), "class_loss": class_loss.detach(), "disc_loss": disc_loss.detach()}

    def remix_loss(self, z: Tensor, z_domain: Tensor, y: Tensor) -> Tensor:
        """L_rmx with DomainBed's draws: one CPU ``randperm(n_c)`` per class (host read of n_c)."""
        counts = torch.bincount(y, minlength=self.num_classes).tolist()
        first, second = [], []
        for count in counts:
            order = torch.randperm(count)
            if count >= 2:
                first.append(int(order[0]))
                second.append(int(order[1]))
        if not first:
            return z.new_zeros(())
        a = torch.tensor(first, device=z.device)
        b = torch.tensor(second, device=z.device)
        logits = self.classifier(z[a] + z_domain[b])
        return F.cross_entropy(logits, y[a], reduction="sum") / self.num_classes
