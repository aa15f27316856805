"""Which protocol preset and backbone produced a run, from its ``args`` and ``hparams``.

dgsamp runs record both (``args.protocol``, ``args.backbone``). DomainBed's own runs record
neither: their protocol is ``domainbed2020`` (the published tables' code), or
``domainbed2024`` when their hparams carry ERM++'s ``resnet50_augmix: true``; their network
follows from the hparams, named as timm names the same weights (torchvision's ImageNet
ResNets are timm's ``.tv_in1k``; ERM++'s is ``resnet50.ram_in1k``; the MNIST CNN for MNIST).
dgsamp runs written before presets existed are ``dgsamp`` runs with the dataset's
``DEFAULT_BACKBONE``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from dgsamp.tracking import schema

MNIST_DATASETS = ("ColoredMNIST", "RotatedMNIST")


def run_protocol(args: Mapping[str, Any], hparams: Mapping[str, Any], from_domainbed: bool) -> str:
    """The protocol preset of a run (``dgsamp.config.presets``)."""
    if args.get(schema.ARG_PROTOCOL):
        return str(args[schema.ARG_PROTOCOL])
    if not from_domainbed:
        return "dgsamp"
    return "domainbed2024" if hparams.get("resnet50_augmix") else "domainbed2020"


def run_backbone(args: Mapping[str, Any], hparams: Mapping[str, Any], from_domainbed: bool) -> str:
    """The backbone of a run, in timm's (or dgsamp's registered) names."""
    if args.get(schema.ARG_BACKBONE):
        return str(args[schema.ARG_BACKBONE])
    dataset = str(args[schema.ARG_DATASET])
    if not from_domainbed:
        return default_backbone(dataset)
    if dataset in MNIST_DATASETS:
        return "mnist_cnn"
    if hparams.get("resnet50_augmix"):
        return "resnet50.ram_in1k"
    return "resnet18.tv_in1k" if hparams.get("resnet18") else "resnet50.tv_in1k"


@functools.cache
def default_backbone(dataset: str) -> str:
    """The registered dataset's DEFAULT_BACKBONE, or "default" when it is not known here."""
    try:
        from dgsamp.registry import DATASETS

        return str(getattr(DATASETS.get(dataset), "DEFAULT_BACKBONE", "default"))
    except Exception:  # an unknown dataset must not stop the leaderboard
        return "default"
