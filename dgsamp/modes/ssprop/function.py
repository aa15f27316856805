"""The autograd function behind ssProp: conv2d with a channel-sparse backward.

See ``dgsamp.modes.ssprop.sparse_conv`` for the rule. Shapes: x (N, C_in, H, W), weight (C_out, C_in/g, kh, kw),
bias (C_out,) or None, grad_out (N, C_out, H', W').

The backward keeps x's memory format (contiguous or channels_last), so a channels_last model
stays channels_last end to end instead of paying layout conversions in every convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kept_count(keep: float, total: int) -> int:
    """k = max(1, ⌊keep·total⌋), robust to float round-off (0.29·100 -> 29)."""
    return max(1, min(total, math.floor(keep * total + 1e-9)))


class _SparseConv2dFunction(torch.autograd.Function):
    """conv2d whose backward keeps only the top-scoring output channels (or groups)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, keep):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.conv_args = (stride, padding, dilation, groups)
        ctx.keep = keep
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv_args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        layout = _memory_format(x)
        grad_out = grad_out.contiguous(memory_format=layout)
        c_out = weight.shape[0]
        scores = grad_out.abs().mean(dim=(0, 2, 3))  # (C_out,)

        if groups == 1:
            k = kept_count(ctx.keep, c_out)
            out_idx = torch.topk(scores, k, sorted=False).indices.sort().values
            in_idx = None
            sub_groups = 1
        else:
            out_per_group = c_out // groups
            in_per_group = x.shape[1] // groups
            k_groups = kept_count(ctx.keep, groups)
            group_scores = scores.view(groups, out_per_group).mean(dim=1)
            kept_groups = torch.topk(group_scores, k_groups, sorted=False).indices.sort().values
            out_idx = _expand_groups(kept_groups, out_per_group)
            in_idx = _expand_groups(kept_groups, in_per_group)
            sub_groups = k_groups

        # index_select returns contiguous tensors: restore the layout the kernels expect.
        weight_layout = _memory_format(weight)
        x_kept = x if in_idx is None else x.index_select(1, in_idx).contiguous(memory_format=layout)
        grad_out_kept = grad_out.index_select(1, out_idx).contiguous(memory_format=layout)
        grad_x_kept, grad_w_kept, _ = torch.ops.aten.convolution_backward(
            grad_out_kept,
            x_kept,
            weight.index_select(0, out_idx).contiguous(memory_format=weight_layout),
            None,
            list(stride),
            list(padding),
            list(dilation),
            False,
            [0, 0],
            sub_groups,
            [need_x, need_w, False],
        )

        grad_x = grad_w = grad_b = None
        if need_x:
            if in_idx is None:
                grad_x = grad_x_kept
            else:
                grad_x = torch.zeros_like(x, memory_format=layout).index_copy_(1, in_idx, grad_x_kept)
        if need_w:
            grad_w = torch.zeros_like(weight, memory_format=weight_layout)
            grad_w.index_copy_(0, out_idx, grad_w_kept)
        if need_b and ctx.has_bias:
            kept_bias_grad = grad_out_kept.sum(dim=(0, 2, 3))
            grad_b = grad_out.new_zeros(c_out).index_copy_(0, out_idx, kept_bias_grad)
        return grad_x, grad_w, grad_b, None, None, None, None, None


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last if x is laid out that way (and not also plain contiguous), else contiguous."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _expand_groups(groups: torch.Tensor, per_group: int) -> torch.Tensor:
    """Channel indices of the given groups: (k_g,) -> (k_g·per_group,), in order."""
    offsets = torch.arange(per_group, device=groups.device)
    return (groups[:, None] * per_group + offsets).reshape(-1)


def sparse_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    keep: float,
) -> torch.Tensor:
    """``F.conv2d`` (numeric padding only) with the ssProp backward at ``keep`` < 1.

    Under autocast the inputs are cast as autocast would cast them for conv2d, outside the
    custom function, so the backward runs in one dtype and autograd casts gradients back.
    """
    device_type = x.device.type
    if _autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast(device_type=device_type, enabled=False):
            return _SparseConv2dFunction.apply(
                x, weight, bias, stride, padding, dilation, groups, keep
            )
    return _SparseConv2dFunction.apply(x, weight, bias, stride, padding, dilation, groups, keep)


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return device_type == "cuda" and torch.is_autocast_enabled()
