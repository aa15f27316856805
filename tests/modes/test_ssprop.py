"""ssProp: exact dense gradients at keep=1, dense-on-kept/zero-elsewhere at keep<1, fewer
counted FLOPs, every conv flavour timm uses, and the keep schedules."""

from __future__ import annotations

import copy
import math

import pytest
import timm
import torch
from torch import nn

from dgsamp.errors import UserError
from dgsamp.metering.flops import count_flops, count_flops_by_op
from dgsamp.modes.ssprop.schedule import SSPropSchedule
from dgsamp.modes.ssprop.sparse_conv import (
    SSPropConv2d,
    SSPropConv2dSame,
    disable_ssprop,
    enable_ssprop,
    kept_count,
)

torch.set_num_threads(1)


def _plain_copy(module: nn.Module) -> nn.Module:
    """A copy of a converted conv with its original class (the dense reference)."""
    plain = copy.deepcopy(module)
    plain.__class__ = module.ssprop_original_class
    return plain


def _kept_mask(grad_out: torch.Tensor, keep: float, groups: int) -> torch.Tensor:
    """(C_out,) bool: the channels the ssProp rule keeps, computed independently here."""
    scores = grad_out.abs().mean(dim=(0, 2, 3))
    c_out = scores.numel()
    mask = torch.zeros(c_out, dtype=torch.bool)
    if groups == 1:
        mask[torch.topk(scores, kept_count(keep, c_out)).indices] = True
        return mask
    per_group = c_out // groups
    group_scores = scores.view(groups, per_group).mean(dim=1)
    kept_groups = torch.topk(group_scores, kept_count(keep, groups)).indices
    for g in kept_groups.tolist():
        mask[g * per_group : (g + 1) * per_group] = True
    return mask


def _grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    out = model(x)
    (out.square().mean() + out.sum()).backward()
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["resnet10t", "tf_efficientnet_lite0"])
def test_keep_one_reproduces_dense_gradients_exactly(name: str) -> None:
    torch.manual_seed(0)
    dense = timm.create_model(name, num_classes=4).train()
    sparse = copy.deepcopy(dense)
    x = torch.randn(2, 3, 32, 32)
    controller = enable_ssprop(sparse)
    assert controller.unsupported == []
    controller.set_keep(0.3)
    _grads(sparse, x)  # a sparse pass first: switching back must leave no trace
    controller.set_keep(1.0)
    dense_out, dense_grads = _grads(dense, x)
    sparse_out, sparse_grads = _grads(sparse, x)
    assert torch.equal(dense_out, sparse_out)
    assert dense_grads.keys() == sparse_grads.keys()
    for key, grad in dense_grads.items():
        assert torch.equal(grad, sparse_grads[key]), key


CONV_CASES = {
    "plain_bias_stride_dilation": dict(in_channels=6, out_channels=10, kernel_size=3, stride=2, padding=2, dilation=2),
    "no_bias_1x1": dict(in_channels=5, out_channels=8, kernel_size=1, bias=False),
    "depthwise": dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8),
    "depthwise_multiplier": dict(in_channels=4, out_channels=8, kernel_size=3, padding=1, groups=4),
    "grouped": dict(in_channels=6, out_channels=12, kernel_size=3, padding=1, groups=3),
    "reflect_padding": dict(in_channels=3, out_channels=7, kernel_size=3, padding=1, padding_mode="reflect"),
    "same_even_kernel": dict(in_channels=3, out_channels=6, kernel_size=2, padding="same"),
    "valid": dict(in_channels=3, out_channels=6, kernel_size=3, padding="valid", bias=False),
}


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("case", sorted(CONV_CASES))
@pytest.mark.parametrize("keep", [0.5, 0.2])
def test_sparse_backward_is_dense_on_kept_channels_and_zero_elsewhere(case: str, keep: float) -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(**CONV_CASES[case])
    x = torch.randn(3, conv.in_channels, 9, 9)
    controller = enable_ssprop(conv)
    controller.set_keep(keep)
    plain = _plain_copy(conv)

    x_sparse = x.clone().requires_grad_(True)
    y = conv(x_sparse)
    grad_out = torch.randn_like(y) * torch.linspace(0.1, 2.0, y.shape[1]).view(1, -1, 1, 1)
    y.backward(grad_out)

    x_dense = x.clone().requires_grad_(True)
    y_dense = plain(x_dense)
    assert torch.equal(y.detach(), y_dense.detach()), "forward must be unchanged"
    y_dense.backward(grad_out)

    kept = _kept_mask(grad_out, keep, conv.groups)
    expected_kept = kept_count(keep, conv.groups) * (conv.out_channels // conv.groups)
    assert int(kept.sum()) == (expected_kept if conv.groups > 1 else kept_count(keep, conv.out_channels))
    torch.testing.assert_close(conv.weight.grad[kept], plain.weight.grad[kept], rtol=1e-4, atol=1e-5)
    assert torch.count_nonzero(conv.weight.grad[~kept]) == 0
    if conv.bias is not None:
        torch.testing.assert_close(conv.bias.grad[kept], plain.bias.grad[kept], rtol=1e-4, atol=1e-5)
        assert torch.count_nonzero(conv.bias.grad[~kept]) == 0

    # the input gradient is the dense one of the kept channels' upstream gradient only
    x_masked = x.clone().requires_grad_(True)
    plain(x_masked).backward(grad_out * kept.view(1, -1, 1, 1))
    torch.testing.assert_close(x_sparse.grad, x_masked.grad, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(x_sparse.grad, x_dense.grad), "dropping channels must matter"


@pytest.mark.parametrize("name", ["resnet10t", "tf_efficientnet_lite0"])
def test_every_layer_of_a_timm_cnn_follows_the_rule(name: str) -> None:
    """Each conv's weight gradient, given the upstream gradient it really received, is the dense
    one on the kept channels and zero on the others (covers Conv2dSame and depthwise convs)."""
    torch.manual_seed(2)
    model = timm.create_model(name, num_classes=4).train()
    controller = enable_ssprop(model)
    controller.set_keep(0.25)
    inputs: dict[str, torch.Tensor] = {}
    upstream: dict[str, torch.Tensor] = {}

    def capture(layer_name: str):
        def hook(module, args, output):
            inputs[layer_name] = args[0].detach()
            output.register_hook(lambda g: upstream.__setitem__(layer_name, g.detach()))

        return hook

    handles = [m.register_forward_hook(capture(n)) for n, m in controller.modules]
    x = torch.randn(2, 3, 32, 32)
    _grads(model, x)
    for handle in handles:
        handle.remove()

    kinds = {type(m) for _, m in controller.modules}
    assert SSPropConv2d in kinds
    if name == "tf_efficientnet_lite0":
        assert SSPropConv2dSame in kinds
        assert any(m.groups > 1 for _, m in controller.modules)
    for layer_name, module in controller.modules:
        plain = _plain_copy(module)
        plain.zero_grad(set_to_none=True)
        kept = _kept_mask(upstream[layer_name], 0.25, module.groups)
        (plain(inputs[layer_name]) * upstream[layer_name] * kept.view(1, -1, 1, 1)).sum().backward()
        torch.testing.assert_close(module.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-5, msg=layer_name)
        assert torch.count_nonzero(module.weight.grad[~kept]) == 0, layer_name
        assert int(kept.sum()) < module.out_channels or module.out_channels == 1


def test_fewer_counted_flops_in_proportion_to_kept_channels() -> None:
    torch.manual_seed(3)
    conv = nn.Conv2d(16, 32, 3, padding=1)
    enable_ssprop(conv)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)

    def step() -> None:
        conv(x).square().sum().backward()

    conv.ssprop_keep = 1.0
    _, dense = count_flops_by_op(step)
    conv.ssprop_keep = 0.25
    _, sparse = count_flops_by_op(step)
    assert dense["convolution"] == sparse["convolution"] == 2 * 2 * 32 * 16 * 9 * 64
    assert dense["convolution_backward"] == 2 * dense["convolution"]  # input + weight grads
    assert sparse["convolution_backward"] * 4 == dense["convolution_backward"]  # k = 8 of 32


@pytest.mark.parametrize("name", ["resnet10t", "tf_efficientnet_lite0"])
def test_timm_cnn_counts_fewer_flops_at_low_keep(name: str) -> None:
    torch.manual_seed(4)
    model = timm.create_model(name, num_classes=4).train()
    controller = enable_ssprop(model)
    x = torch.randn(2, 3, 32, 32)
    step = lambda: model(x).sum().backward()  # noqa: E731
    _, forward_only = count_flops(lambda: model(x))
    _, dense = count_flops(step)
    controller.set_keep(0.2)
    _, sparse = count_flops(step)
    dense_backward, sparse_backward = dense - forward_only, sparse - forward_only
    # dense backward ~ 2x forward (the stem has no input gradient); sparse ~ keep x that
    assert 1.8 * forward_only < dense_backward <= 2 * forward_only
    assert sparse_backward < 0.3 * dense_backward


def test_bf16_autocast_backward_runs_and_keeps_dtypes() -> None:
    torch.manual_seed(5)
    conv = nn.Conv2d(4, 8, 3, padding=1)
    enable_ssprop(conv).set_keep(0.5)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    y.float().square().sum().backward()
    assert conv.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
    zero_rows = (conv.weight.grad.flatten(1).abs().sum(1) == 0).sum()
    assert int(zero_rows) == 4


def test_enable_and_disable_keep_state_dict_keys_and_restore_classes() -> None:
    model = timm.create_model("tf_efficientnet_lite0", num_classes=3)
    keys = list(model.state_dict())
    original = {n: type(m) for n, m in model.named_modules()}
    controller = enable_ssprop(model)
    assert list(model.state_dict()) == keys
    assert enable_ssprop(model).modules == controller.modules  # idempotent
    controller.keep = 0.5
    assert all(m.ssprop_keep == 0.5 for _, m in controller.modules)
    disable_ssprop(model)
    assert {n: type(m) for n, m in model.named_modules()} == original
    assert not any("ssprop_keep" in m.__dict__ for m in model.modules())
    assert list(model.state_dict()) == keys


def test_invalid_keep_and_kept_count_rounding() -> None:
    controller = enable_ssprop(nn.Conv2d(2, 4, 1))
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            controller.set_keep(bad)
    assert kept_count(0.29, 100) == 29
    assert kept_count(0.01, 10) == 1
    assert kept_count(1.0, 7) == 7


# ---------------------------------------------------------------- schedules


def test_schedule_shapes() -> None:
    epochs = 11
    lin = SSPropSchedule("linear", keep=0.8, keep_min=0.2, warmup=0, interleave=False, epochs=epochs)
    assert lin.keep(1) == pytest.approx(0.8) and lin.keep(11) == pytest.approx(0.2)
    assert lin.keep(6) == pytest.approx(0.5)
    cos = SSPropSchedule("cosine", keep=0.8, keep_min=0.2, warmup=0, interleave=False, epochs=epochs)
    assert cos.keep(1) == pytest.approx(0.8) and cos.keep(11) == pytest.approx(0.2)
    assert cos.keep(6) == pytest.approx(0.5)
    assert cos.keep(3) == pytest.approx(0.2 + 0.3 * (1 + math.cos(math.pi * 0.2)))
    bar = SSPropSchedule("bar", keep=0.8, keep_min=0.2, warmup=0, interleave=False, epochs=10)
    assert [bar.keep(e) for e in range(1, 11)] == [0.8] * 5 + [0.2] * 5
    const = SSPropSchedule("constant", keep=0.3, keep_min=0.9, warmup=0, interleave=False, epochs=4)
    assert [const.keep(e) for e in range(1, 5)] == [0.3] * 4
    off = SSPropSchedule("off", keep=0.3, keep_min=0.1, warmup=0, interleave=True, epochs=4)
    assert [off.keep(e) for e in range(1, 5)] == [1.0] * 4


def test_schedule_warmup_and_interleave_follow_the_paper() -> None:
    schedule = SSPropSchedule("constant", keep=0.2, keep_min=0.2, warmup=2, interleave=True, epochs=8)
    assert [schedule.keep(e) for e in range(1, 9)] == [1.0, 1.0, 1.0, 0.2, 1.0, 0.2, 1.0, 0.2]
    paper_default = SSPropSchedule("constant", keep=0.2, keep_min=0.2, warmup=0, interleave=True, epochs=100)
    assert paper_default.mean_keep() == pytest.approx(0.6)  # 40% fewer backward conv FLOPs


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kind="sparse"),
        dict(kind="constant", keep=0.0),
        dict(kind="constant", keep=1.2),
        dict(kind="linear", keep=0.3, keep_min=0.5),
        dict(kind="cosine", keep=0.3, keep_min=0.0),
        dict(kind="constant", warmup=-1),
        dict(kind="bar", epochs=0),
    ],
)
def test_schedule_validation_raises_user_error(kwargs: dict) -> None:
    with pytest.raises(UserError):
        SSPropSchedule(**kwargs)


def test_channels_last_gives_the_same_gradients_as_contiguous() -> None:
    """A channels_last model and input get the contiguous run's ssProp gradients, and the input
    gradient keeps the channels_last layout (dense and grouped convs). Eval mode: batch-2
    BatchNorm on 1x1 maps would amplify float round-off between the two layouts."""
    torch.manual_seed(6)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=4).eval()
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    enable_ssprop(model).set_keep(0.3)
    enable_ssprop(model_cl).set_keep(0.3)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    x_cl = x.detach().clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out, grads = _grads(model, x)
    out_cl, grads_cl = _grads(model_cl, x_cl)
    torch.testing.assert_close(out_cl, out, rtol=1e-4, atol=1e-5)
    for key, grad in grads.items():
        torch.testing.assert_close(grads_cl[key], grad, rtol=1e-4, atol=1e-5, msg=key)
    torch.testing.assert_close(x_cl.grad, x.grad, rtol=1e-4, atol=1e-5)
    assert x_cl.grad.is_contiguous(memory_format=torch.channels_last)
    # The gradient each conv's backward hands upstream is channels_last too (a leaf's .grad
    # would be re-laid out by autograd, so look at a non-leaf input): dense and depthwise paths.
    for groups in (1, 8):
        conv = nn.Conv2d(8, 8, 3, padding=1, groups=groups)
        conv_cl = copy.deepcopy(conv).to(memory_format=torch.channels_last)
        enable_ssprop(conv).set_keep(0.25)
        enable_ssprop(conv_cl).set_keep(0.25)
        y = torch.randn(2, 8, 6, 6)
        seen: dict[str, torch.Tensor] = {}
        for label, module, layout in (("plain", conv, torch.contiguous_format), ("cl", conv_cl, torch.channels_last)):
            leaf = y.contiguous(memory_format=layout).requires_grad_(True)
            hidden = leaf * 1.0
            hidden.register_hook(lambda g, label=label, seen=seen: seen.__setitem__(label, g))
            module(hidden).square().sum().backward()
        torch.testing.assert_close(seen["cl"], seen["plain"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(conv_cl.weight.grad, conv.weight.grad, rtol=1e-4, atol=1e-5)
        assert seen["cl"].is_contiguous(memory_format=torch.channels_last), groups


def test_model_without_convertible_convs_is_a_user_error() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with pytest.raises(UserError, match=r"--ssprop needs convolutions: Sequential has no nn\.Conv2d"):
        enable_ssprop(mlp)
    from timm.layers import StdConv2d

    weight_standardised = nn.Sequential(StdConv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(UserError, match=r"unsupported: 0 \(StdConv2d\)"):
        enable_ssprop(weight_standardised)
    assert type(weight_standardised[0]) is StdConv2d  # left untouched
