"""DANN: domain-adversarial training (Ganin et al., JMLR 2016), DomainBed's protocol.

A discriminator h (an ``MLP``) guesses the domain of a feature u = f(x) [N, D]; the
featurizer f and classifier g learn the task while making h fail:

    L_cls(f, g) = 1/N_s Σ_{i ∈ sources} CE(g(f(x_i)), y_i)
    L_dom(f, h) = 1/N   Σ_i CE(h(u_i), d_i)                  h(u): [N, S + 1]
    R(f, h)     = 1/N   Σ_i ‖∂/∂u_i Σ_j CE(h(u_j), d_j)‖²    (gradient penalty, weight ρ)
    L_adv       = L_dom + ρ R                                (DomainBed's ``disc_loss``)

    discriminator step:  min_h      L_adv
    generator step:      min_{f,g}  L_cls − λ_t L_adv

exactly as DomainBed: the penalty is the squared input gradient of the *summed* domain
cross-entropy, taken at the discriminator's input u with ``create_graph`` (so it is
differentiable in h and, through u, in f), and it enters both steps (the generator
maximises it, with the domain loss). ρ = ``grad_penalty``; ρ = 0 skips it.

Domain labels d_i: source domain s ∈ {0..S-1}. In domain generalization the softmax
runs over the first S outputs only (exactly DomainBed's S-way discriminator). In domain
adaptation (``unlabeled`` given) every target domain's features get the extra label S
("target", all target domains pooled), so h also separates sources from targets and the
generator step pulls target features towards the sources.

``dann_mode``:
  * ``alternating`` (DomainBed): step t = 1, 2, ... is a discriminator step when
    t mod (1 + k) < k, k = ``d_steps_per_g_step``, else a generator step; Adam with betas
    (``beta1``, 0.9), learning rates ``lr_d`` / ``lr_g``. The featurizer runs without
    autograd on discriminator steps (DomainBed backpropagates through it and discards it).
  * ``grl`` (Ganin): one joint step min_{f,g,h} L_cls + L_adv(h ∘ R_λt ∘ f), the gradient
    reversal R_λ (``grl.py``) turns h's descent on L_adv into f's ascent (× λ_t).

λ_t = ``lambda`` · (2 / (1 + exp(−α t / T)) − 1) over generator steps t when
T = ``dann_warmup_iters`` > 0 (α = ``dann_warmup_alpha``), else the constant ``lambda``
(DomainBed's name; a Python keyword, so read it as ``hparams["lambda"]``). ``update``
reports ``loss`` = L_cls − λ_t L_adv (DomainBed's ``gen_loss``), ``class_loss``,
``disc_loss`` = L_adv and ``grad_penalty`` = R.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_optimizer
from dgsamp.algorithms.counter import StepCounter
from dgsamp.algorithms.grl import WarmStartGradientReverseLayer
from dgsamp.algorithms.minibatches import concat_minibatches, domain_labels
from dgsamp.algorithms.mlp import MLP
from dgsamp.errors import UserError
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

DANN_MODES = ("alternating", "grl")


def _lr(help_text: str) -> HParam:
    return HParam(
        5e-5, lambda r: 10 ** r.uniform(-5, -3.5), help_text,
        small_default=1e-3, small_sample=lambda r: 10 ** r.uniform(-4.5, -2.5),
        minimum=0, exclusive_minimum=True,
    )


DANN_HPARAMS: dict[str, HParam] = {
    "lambda": HParam(
        1.0, lambda r: 10 ** r.uniform(-2, 2), "adversarial weight λ (DomainBed's name)", minimum=0
    ),
    "dann_mode": HParam(
        "alternating", lambda r: "alternating", "alternating (DomainBed) or grl",
        choices=DANN_MODES,
    ),
    "dann_warmup_iters": HParam(0, lambda r: 0, "T of λ's warm start; 0: constant λ", minimum=0),
    "dann_warmup_alpha": HParam(
        10.0, lambda r: 10.0, "α of λ's warm start", minimum=0, exclusive_minimum=True
    ),
    "lr_d": _lr("discriminator learning rate"),
    "lr_g": _lr("featurizer and classifier learning rate"),
    "weight_decay_d": HParam(
        0.0, lambda r: 10 ** r.uniform(-6, -2), "discriminator weight decay", minimum=0
    ),
    "weight_decay_g": HParam(
        0.0, lambda r: 10 ** r.uniform(-6, -2), "featurizer and classifier weight decay",
        small_sample=lambda r: 0.0, minimum=0,
    ),
    "d_steps_per_g_step": HParam(
        1, lambda r: int(2 ** r.uniform(0, 3)), "k in alternating mode", minimum=1
    ),
    "grad_penalty": HParam(
        0.0, lambda r: 10 ** r.uniform(-2, 1), "ρ of the gradient penalty", minimum=0
    ),
    "beta1": HParam(
        0.5, lambda r: r.choice([0.0, 0.5]), "Adam β1 of both optimizers",
        minimum=0, maximum=1, exclusive_maximum=True,
    ),
    "mlp_width": HParam(256, lambda r: int(2 ** r.uniform(6, 10)), "discriminator width", minimum=1),
    "mlp_depth": HParam(
        3, lambda r: int(r.choice([3, 4, 5])), "discriminator linear layers", minimum=2
    ),
    "mlp_dropout": HParam(
        0.0, lambda r: r.choice([0.0, 0.1, 0.5]), "discriminator dropout", minimum=0, maximum=1
    ),
}


@register_algorithm("DANN")
class DANN(Algorithm):
    """Domain-adversarial training against an MLP domain discriminator."""

    PAPER = (
        "Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand & Lempitsky: "
        "Domain-Adversarial Training of Neural Networks, JMLR 2016, arXiv:1505.07818"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    HPARAMS = DANN_HPARAMS
    ADAPTS_TO_UNLABELED = True

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp = self.hparams
        if hp["dann_mode"] not in DANN_MODES:
            raise UserError(f"hparam dann_mode must be one of {DANN_MODES}, got {hp['dann_mode']!r}")
        self.discriminator = MLP.from_hparams(featurizer.n_outputs, num_domains + 1, hp)
        self.steps = StepCounter()
        self.adversarial = WarmStartGradientReverseLayer(
            alpha=hp["dann_warmup_alpha"], hi=hp["lambda"], max_iters=hp["dann_warmup_iters"]
        )
        betas = (hp["beta1"], 0.9)
        self.disc_opt = make_optimizer(
            self.discriminator.parameters(), hp, hp["lr_d"], hp["weight_decay_d"], betas
        )
        self.gen_opt = make_optimizer(
            [*self.featurizer.parameters(), *self.classifier.parameters()],
            hp, hp["lr_g"], hp["weight_decay_g"], betas,
        )

    @property
    def flops_cycle(self) -> int:
        """Steps after which the op pattern repeats (k discriminator steps + 1 generator step)."""
        if self.hparams["dann_mode"] == "alternating":
            return 1 + self.hparams["d_steps_per_g_step"]
        return 1

    # --- what CDANN overrides -------------------------------------------------------
    def discriminator_input(self, z: Tensor, y: Tensor) -> Tensor:
        """u [N, D] fed to h; DANN ignores the class labels ``y`` [N]."""
        return z

    def domain_loss(self, logits: Tensor, domains: Tensor, y: Tensor) -> Tensor:
        """L_dom = mean_i CE(h(u_i), d_i) for ``logits`` [N, S or S+1]."""
        return F.cross_entropy(logits, domains)

    # --- one update -----------------------------------------------------------------
    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, sizes = concat_minibatches(minibatches)
        targets = list(unlabeled or [])
        x = torch.cat([x, *targets])
        domains = domain_labels(sizes, x.device)
        if targets:  # every target example gets the extra label S
            n_target = x.shape[0] - domains.shape[0]
            domains = torch.cat([domains, domains.new_full((n_target,), self.num_domains)])
        step = self.steps.increment()
        k = self.hparams["d_steps_per_g_step"]
        if self.hparams["dann_mode"] == "alternating" and step % (1 + k) < k:
            with torch.no_grad():
                z = self.featurizer(x)
            return self._step(z, y, domains, train_generator=False, reverse=False)
        return self._step(
            self.featurizer(x), y, domains, train_generator=True,
            reverse=self.hparams["dann_mode"] == "grl",
        )

    def _step(
        self, z: Tensor, y: Tensor, domains: Tensor, train_generator: bool, reverse: bool
    ) -> dict[str, Tensor]:
        """One discriminator, generator (alternating) or joint (grl) step on features z [N, D]."""
        n_source, n_outputs = y.shape[0], self.num_domains + int(domains.shape[0] > y.shape[0])
        logits = self.classifier(z)
        class_loss = F.cross_entropy(logits[:n_source], y)
        # class labels for every example: true on sources, predicted on targets (CDANN)
        y_all = torch.cat([y, logits[n_source:].detach().argmax(1)])
        weight = self.adversarial.coefficient
        rho = self.hparams["grad_penalty"]
        u = self.adversarial(z) if reverse else z  # R_λ(z) = z forward, −λ ∂ backward
        if rho > 0 and not u.requires_grad:  # discriminator step: z came without autograd
            u = u.detach().requires_grad_()
        disc_input = self.discriminator_input(u, y_all)
        disc_logits = self.discriminator(disc_input)[:, :n_outputs]
        disc_loss = self.domain_loss(disc_logits, domains, y_all)
        penalty = z.new_zeros(())
        if rho > 0:
            penalty = gradient_penalty(disc_logits, domains, disc_input)
            disc_loss = disc_loss + rho * penalty
        if not train_generator:
            objective, optimizers = disc_loss, [self.disc_opt]
        elif reverse:
            objective, optimizers = class_loss + disc_loss, [self.disc_opt, self.gen_opt]
        else:
            objective, optimizers = class_loss - weight * disc_loss, [self.gen_opt]
        for optimizer in (self.disc_opt, self.gen_opt):
            optimizer.zero_grad(set_to_none=True)
        objective.backward()
        for optimizer in optimizers:
            optimizer.step()
        if train_generator:
            self.adversarial.step()
        return {
            "loss": (class_loss - weight * disc_loss).detach(),
            "class_loss": class_loss.detach(),
            "disc_loss": disc_loss.detach(),
            "grad_penalty": penalty.detach(),
        }


def gradient_penalty(disc_logits: Tensor, domains: Tensor, disc_input: Tensor) -> Tensor:
    """DomainBed's R = mean_i ‖g_i‖², g = ∂ Σ_j CE(disc_logits_j, d_j) / ∂ disc_input [N, D].

    The gradient keeps its graph, so R is differentiable in the discriminator and in
    whatever produced ``disc_input`` (the featurizer, CDANN's class embedding).
    """
    total = F.cross_entropy(disc_logits, domains, reduction="sum")
    (grad,) = torch.autograd.grad(total, disc_input, create_graph=True)
    return grad.pow(2).sum(1).mean()
