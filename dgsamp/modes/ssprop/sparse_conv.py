"""ssProp: channel-sparse backward for every Conv2d (arXiv 2408.12561).

Forward is unchanged. In the backward of a convolution y = conv(x, W) + b with
x: (N, C_in, H, W), W: (C_out, C_in/g, kh, kw), ∂L/∂y: (N, C_out, H', W'):

1. score every output channel c:  s_c = mean_{n,h,w} |∂L/∂y[n, c, h, w]|
2. keep the top k = max(1, ⌊keep·C_out⌋) channels K
3. compute gradients from the kept channels only, with no rescaling:
   ∂L/∂W[c] = conv_weight_grad(x, ∂L/∂y[:, c])   for c ∈ K, 0 otherwise
   ∂L/∂b[c] = Σ_{n,h,w} ∂L/∂y[n, c]              for c ∈ K, 0 otherwise
   ∂L/∂x    = conv_input_grad(W[K], ∂L/∂y[:, K])  (the dropped channels contribute nothing)

The reduced convolution is really run on the gathered tensors (``aten.convolution_backward``
on W[K] and ∂L/∂y[:, K]), so compute falls by about k / C_out, and the FLOP counter sees it.

Grouped convolutions (g > 1, e.g. depthwise): output channel c belongs to group c // (C_out/g)
and only that group's C_in/g input channels feed it. Groups are the unit of selection: a
group scores the mean of its channels' scores, the top k_g = max(1, ⌊keep·g⌋) groups are
kept whole, and the reduced backward is a convolution with k_g groups over their input
channels (input channels of dropped groups get zero gradient). For a depthwise conv
(one output channel per group) this is exactly the per-channel rule above.

``keep = 1`` (the default) runs the ordinary ``nn.Conv2d`` path, so gradients are exactly
the dense ones. ``enable_ssprop(model)`` swaps the class of every ``nn.Conv2d`` (and timm's
``Conv2dSame``) to a subclass, so parameters and state_dict keys are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame
from timm.layers.padding import pad_same
from torch import nn

from dgsamp.errors import UserError
from dgsamp.modes.ssprop.function import kept_count, sparse_conv2d

__all__ = [
    "SSPropController",
    "SSPropConv2d",
    "SSPropConv2dSame",
    "disable_ssprop",
    "enable_ssprop",
    "kept_count",
    "sparse_conv2d",
]


class SSPropConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose backward keeps a fraction ``ssprop_keep`` of output channels."""

    ssprop_keep: float = 1.0

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        keep = self.ssprop_keep
        if keep >= 1.0 or not torch.is_grad_enabled():
            return super()._conv_forward(input, weight, bias)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding: tuple[int, int] = (0, 0)
        else:
            input, padding = _numeric_padding(input, self.padding, self.kernel_size, self.dilation)
        return sparse_conv2d(
            input, weight, bias, self.stride, padding, self.dilation, self.groups, keep
        )


class SSPropConv2dSame(Conv2dSame):
    """timm's TF-'SAME' ``Conv2dSame`` with the ssProp backward."""

    ssprop_keep: float = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.ssprop_keep
        if keep >= 1.0 or not torch.is_grad_enabled():
            return super().forward(x)
        x = pad_same(x, self.weight.shape[-2:], self.stride, self.dilation)
        return sparse_conv2d(
            x, self.weight, self.bias, self.stride, (0, 0), self.dilation, self.groups, keep
        )


# Exact original class -> its ssProp subclass.
_CONVERSIONS: dict[type, type] = {nn.Conv2d: SSPropConv2d, Conv2dSame: SSPropConv2dSame}


def _numeric_padding(
    x: torch.Tensor,
    padding: str | tuple[int, ...],
    kernel_size: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Turn 'valid'/'same' padding into numbers; asymmetric 'same' pads x explicitly
    (the extra row/column at the bottom/right, as ``F.conv2d(padding='same')`` does)."""
    if not isinstance(padding, str):
        return x, (int(padding[0]), int(padding[1]))
    if padding == "valid":
        return x, (0, 0)
    totals = [d * (k - 1) for d, k in zip(dilation, kernel_size)]  # (H, W)
    if all(t % 2 == 0 for t in totals):
        return x, (totals[0] // 2, totals[1] // 2)
    (th, tw) = totals
    x = F.pad(x, [tw // 2, tw - tw // 2, th // 2, th - th // 2])
    return x, (0, 0)


@dataclass
class SSPropController:
    """Sets the kept fraction of every converted convolution of one model."""

    modules: list[tuple[str, nn.Module]]
    unsupported: list[str] = field(default_factory=list)  # Conv2d subclasses left dense
    _keep: float = 1.0

    @property
    def keep(self) -> float:
        return self._keep

    @keep.setter
    def keep(self, value: float) -> None:
        self.set_keep(value)

    def set_keep(self, keep: float) -> None:
        """Keep fraction in (0, 1]; 1.0 restores exact dense gradients."""
        keep = float(keep)
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"ssProp keep must be in (0, 1], got {keep}")
        self._keep = keep
        for _, module in self.modules:
            module.ssprop_keep = keep


def enable_ssprop(model: nn.Module) -> SSPropController:
    """Make every supported Conv2d of ``model`` ssProp-capable (in place); keep starts at 1.0.

    ``nn.Conv2d`` and timm's ``Conv2dSame`` are converted by swapping their class to a
    subclass whose forward is the same; other Conv2d subclasses with a forward of their own
    (e.g. weight-standardised convs) are left dense and listed in ``unsupported``.
    Calling it again on the same model returns a controller for the same modules.
    Raises ``UserError`` when the model has no convolution ssProp can sparsify.
    """
    conversions = _CONVERSIONS
    sparse_classes = set(conversions.values())
    converted: list[tuple[str, nn.Module]] = []
    unsupported: list[str] = []
    for name, module in model.named_modules():
        if type(module) in sparse_classes:
            converted.append((name, module))
        elif type(module) in conversions:
            module.ssprop_original_class = type(module)
            module.__class__ = conversions[type(module)]
            converted.append((name, module))
        elif isinstance(module, nn.Conv2d):
            unsupported.append(name)
    if not converted:
        found = ", ".join(f"{name or '<model>'} ({type(model.get_submodule(name)).__name__})" for name in unsupported)
        raise UserError(
            f"--ssprop needs convolutions: {type(model).__name__} has no nn.Conv2d that ssProp can "
            f"sparsify; unsupported: {found or 'none (no convolution at all)'}; use --ssprop off"
        )
    controller = SSPropController(modules=converted, unsupported=unsupported)
    controller.set_keep(1.0)
    return controller


def disable_ssprop(model: nn.Module) -> None:
    """Undo ``enable_ssprop``: every converted convolution gets its original class back."""
    for module in model.modules():
        original = module.__dict__.get("ssprop_original_class")
        if original is not None:
            module.__class__ = original
            del module.ssprop_original_class
        module.__dict__.pop("ssprop_keep", None)
