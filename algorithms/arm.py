"""ARM-CML: adaptive risk minimization, contextual meta-learner (Zhang et al., NeurIPS 2021),
as in DomainBed.

A context network h maps each image to one channel; its mean over a "support set" of
examples from the same domain is appended to every image of that set as an extra input
channel, so the network can adapt to the domain from unlabeled examples alone:

    x [B, C, H, W]  ->  groups of s consecutive examples (s = ``batch_size``; one group of
                        all B when s does not divide B)
    c_k = 1/s Σ_{i ∈ group k} h(x_i)          [1, H, W]
    logits_i = g(f([x_i, c_k(i)]))             f's first convolution takes C + 1 channels

and ERM's loss on the concatenated domains: each training domain contributes exactly
``batch_size`` examples, so each group is one domain. At test time the groups are
consecutive examples of one evaluation batch (DomainBed: shuffled batches of 64; dgsamp:
``--eval_batch_size`` batches of a split in order).

Faithful to DomainBed, which this module reproduces rather than the paper: h is
DomainBed's ``ContextNet`` (three 5×5 convolutions, 64-64-1 channels, BatchNorm + ReLU
between) and is never trained, because DomainBed builds ERM's Adam before it (only its
BatchNorm statistics move); here its parameters are frozen, which makes the same
updates. f's first convolution is widened to C + 1 input channels with channel i
initialised from channel i mod C (DomainBed's ResNet rule; its MNIST CNN instead starts
that layer from fresh random weights). ``batch_size`` has DomainBed's ARM range: 8 (fixed)
on image datasets, DomainBed's usual 64 / 2^U(3, 9) on MNIST-size ones. The featurizer of
this algorithm is the whole x -> f([x, c]) map (``ContextFeaturizer``). Needs an image
featurizer whose first layer is a 2-D convolution; ``unlabeled`` is ignored.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from dgsamp.algorithms.erm import ERM
from dgsamp.errors import UserError
from dgsamp.hparams import HParam
from dgsamp.registry import register_algorithm


class ContextNet(nn.Module):
    """DomainBed's ``networks.ContextNet``: x [B, C, H, W] -> h(x) [B, 1, H, W]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, 64, 5, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 64, 5, padding=2),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 1, 5, padding=2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


def first_conv_name(featurizer: nn.Module) -> str:
    """The name of f's input convolution: timm's ``pretrained_cfg["first_conv"]`` for a timm
    model (``TimmFeaturizer.network``), else the first ``nn.Conv2d`` in module order."""
    network = getattr(featurizer, "network", None)
    named = getattr(network, "pretrained_cfg", None) or {}
    if isinstance(named.get("first_conv"), str):
        name = f"network.{named['first_conv']}"
        if isinstance(featurizer.get_submodule(name), nn.Conv2d):
            return name
    for name, module in featurizer.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise UserError(
        f"ARM needs an image featurizer whose first layer is a 2-D convolution; "
        f"{type(featurizer).__name__} has none"
    )


def widen_first_conv(featurizer: nn.Module) -> int:
    """Give f's first convolution one more input channel (channel i <- channel i mod C);
    returns C, the image's channel count."""
    name = first_conv_name(featurizer)
    conv = featurizer.get_submodule(name)
    if conv.groups != 1:
        raise UserError(f"ARM cannot widen {name}: a grouped first convolution ({conv.groups} groups)")
    channels = conv.in_channels
    wide = copy.deepcopy(conv)  # keeps subclasses (timm's Conv2dSame padding)
    source = [i % channels for i in range(channels + 1)]
    wide.weight = nn.Parameter(conv.weight.detach()[:, source].clone())
    wide.in_channels = channels + 1
    featurizer.set_submodule(name, wide)
    return channels


class ContextFeaturizer(nn.Module):
    """x [B, C, H, W] -> f([x, context]) [B, D], the context averaged over support sets of s."""

    def __init__(self, network: nn.Module, context: ContextNet, support_size: int) -> None:
        super().__init__()
        self.network = network
        self.context = context
        self.support_size = support_size
        self.n_outputs = network.n_outputs

    def forward(self, x: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        size = self.support_size if batch % self.support_size == 0 else batch
        context = self.context(x).reshape(batch // size, size, 1, height, width).mean(dim=1)
        context = torch.repeat_interleave(context, repeats=size, dim=0)
        return self.network(torch.cat([x, context], dim=1))


@register_algorithm("ARM")
class ARM(ERM):
    """ERM on images carrying one extra channel: the mean context of their support set
    (ERM's ``update``, through the context featurizer)."""

    HPARAMS = {
        "batch_size": HParam(
            8, lambda r: 8, "examples per domain per step (= ARM's support size)",
            small_default=64, small_sample=lambda r: int(2 ** r.uniform(3, 9)), minimum=1,
        ),
    }
    PAPER = (
        "Zhang, Marklund, Dhawan, Gupta, Levine, Finn: Adaptive Risk Minimization: Learning "
        "to Adapt to Domain Shift, NeurIPS 2021, arXiv:2007.02931"
    )
    SOURCE = "DomainBed domainbed/algorithms.py @ 22002eaae419ddb30c911b40c40bd27513baebb9"

    def __init__(self, featurizer: nn.Module, num_classes: int, num_domains: int, hparams: dict):
        super().__init__(featurizer, num_classes, num_domains, hparams)
        channels = widen_first_conv(featurizer)
        context = ContextNet(channels).requires_grad_(False)
        self.featurizer = ContextFeaturizer(featurizer, context, int(self.hparams["batch_size"]))
        # the widened convolution is a new parameter: rebuild ERM's Adam over the final
        # parameters (same order; the frozen context net stays out of it)
        self.optimizer = self.default_optimizer()
