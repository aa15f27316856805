"""Counted FLOPs: exact counts for known shapes, backward included, grouped convs corrected."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dgsamp.metering.flops import FlopCounter, count_flops, count_flops_by_op

torch.set_num_threads(1)


def test_count_flops_returns_the_result_and_matmul_flops() -> None:
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    result, flops = count_flops(lambda: a @ b)
    assert torch.equal(result, a @ b)
    assert flops == 2 * 8 * 16 * 4


def test_backward_is_counted() -> None:
    layer = nn.Linear(16, 4, bias=False)
    x = torch.randn(8, 16, requires_grad=True)
    _, forward = count_flops(lambda: layer(x))
    _, both = count_flops(lambda: layer(x).sum().backward())
    assert forward == 2 * 8 * 16 * 4
    assert both == 3 * forward  # grad of input and of weight each cost one forward


def test_grouped_conv_backward_is_counted_correctly() -> None:
    """PyTorch's own formula counts a grouped conv's weight gradient `groups`-fold; ours
    counts each requested gradient as one forward's worth."""
    conv = nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False)  # depthwise
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    forward_expected = 2 * 2 * 32 * 1 * 9 * 64
    _, ops = count_flops_by_op(lambda: conv(x).sum().backward())
    assert ops["convolution"] == forward_expected
    assert ops["convolution_backward"] == 2 * forward_expected
    with FlopCounterMode(display=False) as builtin:
        conv(x).sum().backward()
    assert builtin.get_total_flops() > 10 * forward_expected  # the over-count we correct

    # no input gradient requested: only the weight gradient is counted
    x_const = torch.randn(2, 32, 8, 8)
    _, ops = count_flops_by_op(lambda: conv(x_const).sum().backward())
    assert ops["convolution_backward"] == forward_expected


def test_flop_counter_accumulates() -> None:
    counter = FlopCounter()
    a = torch.randn(4, 4)
    assert torch.equal(counter.run(lambda: a @ a), a @ a)
    counter.run(lambda: a @ a)
    assert counter.total == 2 * 2 * 4 * 4 * 4 and counter.calls == 2
    counter.reset()
    assert counter.total == 0 and counter.calls == 0
