"""URM: uniform risk minimization (Krishnamachari, Ng & Foo, TMLR 2024), as in DomainBed.

The features are squashed by an output activation σ (DomainBed sets it on its featurizer:
tanh, sigmoid or relu after the ResNet's dropout) and pushed towards the uniform
distribution on σ's range [a, b)^D ([−1, 1) for tanh, [0, 1) otherwise) by a GAN-style
discriminator h: R^D -> R (an MLP of width 100 with LeakyReLUs) that tells uniform noise
from features. With z = σ(f(x)) [N, D] over the N pooled examples and BCE on logits:

    generator (f, g; Adam, ``lr``):  L = 1/N Σ_i CE(g(z_i), y_i) + λ BCE(h(z), 1)
    discriminator (h):               L_h = BCE(h(u), t_u) + λ BCE(h(z.detach()), t_z),
                                     u ~ U[a, b)^{N×D} drawn after the generator step

t_u = 1, t_z = 0, or with label smoothing ε > 0 soft targets t_u ~ U[1 − ε, 1) and
t_z ~ U[0, ε) drawn after u (DomainBed's order of draws). h sees the features of before
the generator step, as in DomainBed. λ = ``urm_adv_lambda``; h has 1 +
``urm_discriminator_hidden_layers`` hidden layers and trains with Adam (or SGD, momentum
0.9) at ``urm_discriminator_lr`` with the common ``weight_decay``. ``predict`` is g(σ(f(x))).
DomainBed also accepts the output ``identity`` but then fails to draw the noise; it is not
offered. ``unlabeled`` is ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm, make_optimizer
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

OUTPUTS = {"tanh": (nn.Tanh, -1, 1), "sigmoid": (nn.Sigmoid, 0, 1), "relu": (nn.ReLU, 0, 1)}


def make_discriminator(n_features: int, hidden_layers: int) -> nn.Sequential:
    """h: [N, D] -> [N, 1], Linear(D, 100) and ``hidden_layers`` Linear(100, 100), LeakyReLU each."""
    model = nn.Sequential()
    model.add_module("dense1", nn.Linear(n_features, 100))
    model.add_module("act1", nn.LeakyReLU())
    for index in range(hidden_layers):
        model.add_module(f"dense{2 + index}", nn.Linear(100, 100))
        model.add_module(f"act2{2 + index}", nn.LeakyReLU())
    model.add_module("output", nn.Linear(100, 1))
    return model


def uniform(unit: Tensor, low: float, high: float) -> Tensor:
    """U[low, high) from ``unit`` ~ U[0, 1), as (high − low) · unit + low (DomainBed's rounding)."""
    return (high - low) * unit + low


@register_algorithm("URM")
class URM(Algorithm):
    """ERM whose features are made indistinguishable from uniform noise."""

    HPARAMS = {
        "urm": HParam("adversarial", lambda r: "adversarial", "URM variant", choices=("adversarial",)),
        "urm_adv_lambda": HParam(
            0.1, lambda r: float(r.uniform(0, 0.2)), "weight λ of the adversarial terms", minimum=0
        ),
        "urm_discriminator_label_smoothing": HParam(
            0.0, lambda r: float(r.uniform(0, 0)), "ε of the soft targets; 0: hard",
            minimum=0, maximum=1,
        ),
        "urm_discriminator_optimizer": HParam(
            "adam", lambda r: "adam", "optimizer of h", choices=("adam", "sgd")
        ),
        "urm_discriminator_hidden_layers": HParam(
            1, lambda r: int(r.choice([1, 2, 3])), "Linear(100, 100) layers of h", minimum=0
        ),
        "urm_generator_output": HParam(
            "tanh", lambda r: str(r.choice(["tanh", "relu"])), "output activation σ of f",
            choices=tuple(OUTPUTS),
        ),
        "urm_discriminator_lr": HParam(
            5e-5, lambda r: 10 ** r.uniform(-6, -4.5), "learning rate of h",
            small_default=1e-3, small_sample=lambda r: 10 ** r.uniform(-5.5, -3.5),
            minimum=0, exclusive_minimum=True,
        ),
    }
    PAPER = (
        "Krishnamachari, Ng & Foo: Uniformly Distributed Feature Representations for Fair and "
        "Robust Learning, TMLR 2024, openreview.net/forum?id=PgLbS5yp8n"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ b93c22a1cfc3b2428398272c1a116c8de1f4139e"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        hp = self.hparams
        self.optimizer = self.default_optimizer([*self.featurizer.parameters(), *self.classifier.parameters()])
        self.discriminator = make_discriminator(featurizer.n_outputs, hp["urm_discriminator_hidden_layers"])
        if hp["urm_discriminator_optimizer"] == "sgd":
            self.discriminator_opt: torch.optim.Optimizer = torch.optim.SGD(
                self.discriminator.parameters(), lr=hp["urm_discriminator_lr"],
                weight_decay=hp["weight_decay"], momentum=0.9,
            )
        else:
            self.discriminator_opt = make_optimizer(
                self.discriminator.parameters(), hp, hp["urm_discriminator_lr"]
            )
        activation, self.low, self.high = OUTPUTS[hp["urm_generator_output"]]
        self.output_activation = activation()

    def features(self, x: Tensor) -> Tensor:
        """z = σ(f(x)) [N, D]."""
        return self.output_activation(self.featurizer(x))

    def predict(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        weight = self.hparams["urm_adv_lambda"]
        x, y, _ = concat_minibatches(minibatches)
        z = self.features(x)
        class_loss = F.cross_entropy(self.classifier(z), y, reduction="none").mean()
        gen_loss = F.binary_cross_entropy_with_logits(
            self.discriminator(z).squeeze(1), torch.ones(z.shape[0], device=z.device, dtype=z.dtype)
        )
        loss = class_loss + weight * gen_loss
        self.step(loss)
        disc_loss = self.update_discriminator(z.detach())
        return {
            "loss": loss.detach(), "class_loss": class_loss.detach(),
            "gen_loss": gen_loss.detach(), "disc_loss": disc_loss.detach(),
        }

    def update_discriminator(self, z: Tensor) -> Tensor:
        """One step of h on uniform noise (target 1) against the features ``z`` [N, D] (target 0)."""
        n, smoothing = z.shape[0], self.hparams["urm_discriminator_label_smoothing"]
        noise = uniform(torch.rand(z.shape, dtype=z.dtype, device=z.device), self.low, self.high)
        noise_logits = self.discriminator(noise).squeeze(1)
        feature_logits = self.discriminator(z).squeeze(1)
        if smoothing:
            noise_target = uniform(torch.rand(n, device=z.device), 1 - smoothing, 1.0)
            feature_target = uniform(torch.rand(n, device=z.device), 0, 0 + smoothing)
        else:
            noise_target = torch.ones(n, device=z.device, dtype=z.dtype)
            feature_target = torch.zeros(n, device=z.device, dtype=z.dtype)
        disc_loss = F.binary_cross_entropy_with_logits(noise_logits, noise_target) + (
            self.hparams["urm_adv_lambda"] * F.binary_cross_entropy_with_logits(feature_logits, feature_target)
        )
        self.step(disc_loss, self.discriminator_opt)
        return disc_loss
