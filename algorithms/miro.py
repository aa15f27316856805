"""MIRO: mutual-information regularisation with the pretrained model as oracle.

Cha, Lee, Park & Chun, "Domain Generalization by Mutual-Information Regularization with
Pre-trained Models", ECCV 2022 (arXiv:2203.10789); reference code kakaobrain/miro.

A frozen copy f⁰ of the featurizer as it arrives (the pretrained weights) stands in for
the oracle. At layers l = 1..L, with z_l = f_l(x) the trained featurizer's intermediate
feature and z⁰_l = f⁰_l(x) the frozen one's (same shape, e.g. [N, C_l, H_l, W_l]), MIRO
maximises a variational lower bound of I(z_l; z⁰_l) with a Gaussian decoder of mean
μ_l(z_l) and diagonal variance σ²_l, i.e. minimises its negative log-likelihood

    R = Σ_l mean over the elements of ½ [ (z⁰_l − μ_l(z_l))² / σ²_l + log σ²_l ]
      = Σ_l ½ mean((z⁰_l − z_l)² / σ²_l)  +  Σ_l ½ mean_c log σ²_{l,c}     (fit + spread)
    L = CE(g(f(x)), y) + λ R

Mean encoder μ_l = identity (the paper's and the reference's choice); variance encoder:
one learned value per channel, σ²_{l,c} = softplus(b_{l,c}) + 1e−5, initialised to 0.1
and trained at ``lr_mult`` × ``lr``. λ = ``ld``.

At initialisation z_l = z⁰_l whenever the trained featurizer computes the same function
as f⁰ (f⁰ always runs in eval mode: BatchNorm running statistics, no dropout; so this
holds for LayerNorm backbones and with ``--freeze_bn``), hence fit = 0 and
R = L · ½ log 0.1: only the variance term is non-zero.

Layers (any timm backbone, found from ``feature_info``, the stages timm's
``features_only`` returns; features are hooked, the featurizer runs its usual forward):
ResNet family: the stem after its max-pool and layer1..layer4 (the reference's
``stem_block``); families listing every block (ViT, DeiT: > 5 entries): the patch
embedding and the last block of each quarter (blocks 2, 5, 8, 11 of ViT-B, as the
reference does for CLIP ViT-B/16); others (ConvNeXt, EfficientNet, RegNet, Swin, ...):
every ``feature_info`` entry. Channels are axis 1 of 4-D outputs (the last axis when the
module or model declares ``output_fmt`` NHWC, as Swin and ViT's patch embedding do) and the
last axis of token outputs [N, T, C].
"""

from __future__ import annotations

import copy
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import Algorithm
from dgsamp.algorithms.minibatches import concat_minibatches
from dgsamp.errors import UserError
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm

VARIANCE_INIT, VARIANCE_EPS = 0.1, 1e-5


def miro_layers(network: nn.Module) -> list[tuple[str, int]]:
    """(module name, channels) of the intermediate features MIRO regularises, in order."""
    stages = [(info["module"], int(info["num_chs"])) for info in network.feature_info]
    names = dict(network.named_modules())
    if type(network).__name__ == "ResNet" and stages[0][0] == "act1" and "maxpool" in names:
        stages[0] = ("maxpool", stages[0][1])
    elif len(stages) > 5:
        stages = [stages[len(stages) * (k + 1) // 4 - 1] for k in range(4)]
        if "patch_embed" in names:
            stages.insert(0, ("patch_embed", stages[0][1]))
    return stages


class FeatureTap:
    """Forward hooks that record named modules' outputs, only inside ``record``."""

    def __init__(self, network: nn.Module, names: list[str]) -> None:
        self.names, self.features, self.active = names, {}, False
        modules = dict(network.named_modules())
        for name in names:
            modules[name].register_forward_hook(partial(self._hook, name))

    def _hook(self, name: str, module: nn.Module, inputs: tuple, output: Tensor) -> None:
        if self.active:
            self.features[name] = output

    def record(self, forward, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``forward(x)`` and the tapped features, in ``names`` order."""
        self.active, self.features = True, {}
        try:
            out = forward(x)
            return out, [self.features[name] for name in self.names]
        finally:
            self.active, self.features = False, {}


@register_algorithm("MIRO")
class MIRO(Algorithm):
    """ERM plus a variational MI bound between trained and pretrained intermediate features."""

    PAPER = "Cha, Lee, Park & Chun, ECCV 2022, arXiv:2203.10789"
    SOURCE = "kakaobrain/miro domainbed/algorithms/miro.py @ 52384553e974"
    HPARAMS = {
        "ld": HParam(
            0.1, lambda r: float(r.choice([1.0, 0.1, 0.01, 0.001])),
            "weight λ of the MI regulariser (paper's search: 1, 0.1, 0.01, 0.001)", minimum=0,
        ),
        "lr_mult": HParam(
            10.0, lambda r: 10.0, "learning-rate multiplier of the variance encoders",
            minimum=0, exclusive_minimum=True,
        ),
    }

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        network = getattr(featurizer, "network", featurizer)  # TimmFeaturizer wraps the timm model
        if not isinstance(getattr(network, "feature_info", None), list):
            raise UserError(
                f"MIRO needs a timm backbone (it regularises the stages in timm's feature_info); "
                f"{type(network).__name__} has none: pick a timm --backbone such as resnet50"
            )
        layers = miro_layers(network)
        self.reference = copy.deepcopy(network).requires_grad_(False).eval()  # before any hook
        self.tap = FeatureTap(network, [name for name, _ in layers])
        self.reference_tap = FeatureTap(self.reference, [name for name, _ in layers])
        modules, default = dict(network.named_modules()), getattr(network, "output_fmt", "NCHW")
        formats = [getattr(modules[name], "output_fmt", default) for name, _ in layers]
        self.channels_last = [getattr(fmt, "value", fmt) in ("NHWC", "NLC") for fmt in formats]
        start = torch.log(torch.expm1(torch.tensor(VARIANCE_INIT - VARIANCE_EPS)))  # softplus⁻¹
        self.variance_logits = nn.ParameterList(
            [nn.Parameter(torch.full((channels,), float(start))) for _, channels in layers]
        )
        network_params = [*self.featurizer.parameters(), *self.classifier.parameters()]
        self.optimizer = self.default_optimizer(network_params)
        encoder_lr = self.hparams["lr"] * self.hparams["lr_mult"]
        self.optimizer.add_param_group({"params": list(self.variance_logits), "lr": encoder_lr})

    def train(self, mode: bool = True) -> MIRO:
        super().train(mode)
        self.reference.eval()  # the oracle is a fixed function of x
        return self

    def variances(self, z: Tensor, layer: int) -> Tensor:
        """σ²_l shaped to broadcast against ``z`` (channels on axis 1 or last)."""
        variance = F.softplus(self.variance_logits[layer]) + VARIANCE_EPS
        last = z.dim() - 1
        axes = (1, last) if z.dim() == 4 and not self.channels_last[layer] else (last, 1)
        axis = next((a for a in axes if z.shape[a] == variance.numel()), None)
        if axis is None:
            name, shape = self.tap.names[layer], tuple(z.shape)
            raise ValueError(f"MIRO layer {name}: {shape} has no {variance.numel()}-channel axis")
        shape = [1] * z.dim()
        shape[axis] = -1
        return variance.view(shape)

    def regulariser(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z = f(x) [N, D]; fit = Σ_l ½ mean((z⁰_l − z_l)²/σ²_l); spread = Σ_l ½ mean log σ²_l."""
        z, features = self.tap.record(self.featurizer, x)
        with torch.no_grad():
            _, targets = self.reference_tap.record(self.reference, x)
        fit = spread = z.new_zeros((), dtype=torch.float32)
        for layer, (feature, target) in enumerate(zip(features, targets, strict=True)):
            variance = self.variances(feature, layer)
            fit = fit + ((target.float() - feature.float()).pow(2) / variance).mean() / 2
            spread = spread + variance.log().mean() / 2
        return z, fit, spread

    def update(
        self, minibatches: list[tuple[Tensor, Tensor]], unlabeled: list[Tensor] | None = None
    ) -> dict[str, Tensor]:
        x, y, _ = concat_minibatches(minibatches)
        z, fit, spread = self.regulariser(x)
        class_loss = F.cross_entropy(self.classifier(z), y)
        reg_loss = fit + spread
        loss = class_loss + self.hparams["ld"] * reg_loss
        self.step(loss)
        losses = {"loss": loss, "class_loss": class_loss, "reg_loss": reg_loss}
        return {key: value.detach() for key, value in losses.items()}
