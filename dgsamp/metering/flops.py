"""Counted FLOPs: hardware-independent compute of whatever a function runs.

``torch.utils.flop_counter.FlopCounterMode`` intercepts every ATen op dispatched while the
function runs (forward and, when the function calls ``backward()``, the backward too) and
adds up the FLOPs of the ops it has formulas for: matrix products, convolutions and their
backward (``aten.convolution_backward``, honouring which of input/weight gradients were
asked for), attention. Element-wise ops (activations, norms, optimizer arithmetic) are not
counted. A multiply-add counts as 2 FLOPs.

ssProp's reduced backward runs ``aten.convolution_backward`` on the kept channels only, so the
count falls with the keep fraction. Counting adds Python overhead per op: count a few steps
and scale, rather than every step.

Correction: PyTorch's built-in formula for the weight gradient of ``convolution_backward``
ignores ``groups`` and over-counts a grouped convolution's weight gradient ``groups``-fold
(a depthwise conv by C-fold, which made EfficientNet's backward look 40x its forward). We
count it with ``_conv_backward_flops`` below: each requested gradient (input, weight) of a
convolution costs what its forward costs, 2·N·prod(W.shape)·prod(output spatial).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import prod
from typing import Any, TypeVar

import torch
from torch.utils.flop_counter import FlopCounterMode

T = TypeVar("T")


def _conv_backward_flops(
    grad_out_shape: Sequence[int],
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: Sequence[bool],
    out_shape: Any = None,
    **kwargs: Any,
) -> int:
    """FLOPs of ``aten.convolution_backward``, correct for grouped convolutions.

    ``w_shape`` already holds the per-group channel count (C_out, C_in/g, kh, kw), so the
    forward's multiply-adds are N·prod(w_shape)·prod(spatial) with spatial the output's
    (or, for a transposed conv, the input's) spatial size. The input gradient and the weight
    gradient each cost as many.
    """
    spatial = (x_shape if transposed else grad_out_shape)[2:]
    one_pass = 2 * x_shape[0] * prod(w_shape) * prod(spatial)
    return one_pass * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


_CUSTOM_FORMULAS = {torch.ops.aten.convolution_backward: _conv_backward_flops}


def _flop_counter_mode() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=_CUSTOM_FORMULAS)


def count_flops(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn()`` and return (its result, the FLOPs it dispatched)."""
    with _flop_counter_mode() as mode:
        result = fn()
    return result, int(mode.get_total_flops())


def count_flops_by_op(fn: Callable[[], T]) -> tuple[T, dict[str, int]]:
    """Run ``fn()`` and return (its result, FLOPs per ATen op name, e.g. 'convolution_backward')."""
    with _flop_counter_mode() as mode:
        result = fn()
    per_op: dict[str, int] = {}
    for op, flops in mode.get_flop_counts().get("Global", {}).items():
        name = getattr(op, "__name__", str(op)).split(".")[0]
        per_op[name] = per_op.get(name, 0) + int(flops)
    return result, per_op


class FlopCounter:
    """Adds up the FLOPs of every function it runs: ``counter.run(fn)``, then ``counter.total``."""

    def __init__(self) -> None:
        self.total = 0
        self.calls = 0

    def run(self, fn: Callable[[], T]) -> T:
        result, flops = count_flops(fn)
        self.total += flops
        self.calls += 1
        return result

    def reset(self) -> None:
        self.total = 0
        self.calls = 0
