"""Fish, MLDG, MTL, SagNet, ARM, RSC, SD, ANDMask: each one's mechanism, on tiny networks.

Expected values are written out from DomainBed's update rules (domainbed/algorithms.py @
22002ea, unchanged through b93c22a) on a linear featurizer x[N, 3] -> z[N, 4] (a 3x3
convolution for ARM), K = 3 classes, S = 3 domains, independently of dgsamp's code. The
hparam draws are literal numbers from DomainBed's registry (hparams_registry.py,
``random_hparams(alg, dataset, misc.seed_hash(hparams_seed, 0))``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import Conv2dSame
from torch import Tensor, autograd, nn

from dgsamp.algorithms.andmask import and_masked_gradient
from dgsamp.algorithms.rsc import numpy_percentile
from dgsamp.algorithms.sagnet import randomize
from dgsamp.backbones.factory import TimmFeaturizer
from dgsamp.backbones.mnist_cnn import MNISTCNN
from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, DATASETS, create_algorithm

K, D_IN, D, LR = 3, 3, 4, 0.01


class LinearFeaturizer(nn.Linear):
    """z = x W_fᵀ + b_f, ``x [N, 3] -> z [N, 4]``."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__(D_IN, D)


class NormFeaturizer(nn.Module):
    """Linear then BatchNorm1d (running statistics, an integer counter)."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(D_IN, D)
        self.norm = nn.BatchNorm1d(D)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.linear(x))


class ConvFeaturizer(nn.Module):
    """x [N, 3, H, W] -> mean over pixels of ReLU(conv3x3(x)) [N, 4]."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, D, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x)).mean(dim=(2, 3))


def build(name: str, featurizer: nn.Module | None = None, num_domains: int = 3, seed: int = 0, **hp):
    torch.manual_seed(seed)
    hparams = resolve_hparams(ALGORITHMS.get(name), False, 0, {"lr": LR, **hp})
    featurizer = LinearFeaturizer() if featurizer is None else featurizer
    return create_algorithm(name, featurizer, K, num_domains, hparams).train()


def batches(sizes=(4, 4, 4), seed: int = 1, image: bool = False) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    shape = (3, 6, 6) if image else (D_IN,)
    return [(torch.randn(n, *shape, generator=generator), torch.randint(0, K, (n,), generator=generator))
            for n in sizes]


def cat(minibatches) -> tuple[Tensor, Tensor]:
    return torch.cat([x for x, _ in minibatches]), torch.cat([y for _, y in minibatches])


def leaves(algorithm) -> dict[str, Tensor]:
    return {k: p.detach().clone().requires_grad_() for k, p in algorithm.named_parameters()}


def linear_logits(p: dict[str, Tensor], x: Tensor) -> Tensor:
    z = x @ p["featurizer.weight"].T + p["featurizer.bias"]
    return z @ p["classifier.weight"].T + p["classifier.bias"]


def adam_first_step(value: Tensor, grad: Tensor, lr: float = LR) -> Tensor:
    """A fresh Adam's first step (no weight decay): m̂ = g, v̂ = g², θ − lr g / (|g| + 1e-8)."""
    return value - lr * grad / (grad.abs() + 1e-8)


def assert_grads_and_first_step(algorithm, before: dict[str, Tensor], grads: dict[str, Tensor]) -> None:
    for name, param in algorithm.named_parameters():
        torch.testing.assert_close(param.grad, grads[name], msg=name)
        torch.testing.assert_close(param.detach(), adam_first_step(before[name].detach(), grads[name]), msg=name)


# ------------------------------------------------------------------------------------ SD
def test_sd_penalty_is_lambda_times_mean_squared_logit():
    algorithm = build("SD", sd_reg=0.3)
    minibatches = batches()
    before = leaves(algorithm)
    x, y = cat(minibatches)
    logits = linear_logits(before, x)
    penalty = logits.pow(2).sum() / (len(y) * K)
    objective = F.cross_entropy(logits, y) + 0.3 * penalty
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["penalty"], penalty.detach())
    torch.testing.assert_close(losses["loss"], objective.detach())
    grads = dict(zip(before, autograd.grad(objective, list(before.values()))))
    assert_grads_and_first_step(algorithm, before, grads)


# ----------------------------------------------------------------------------------- RSC
@pytest.mark.parametrize("n", [1, 2, 6, 7, 64, 1024])
def test_numpy_percentile_is_numpys(n):
    values = torch.randn(5, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    for percent in (0.0, 12.5, 50.0, (1 - 1 / 3) * 100, (1 - 0.2094505390443353) * 100, 100.0):
        want = np.percentile(values.numpy(), percent, axis=1)
        assert np.array_equal(numpy_percentile(values, percent).numpy(), want), percent


class Scale(nn.Module):
    """z = x ⊙ s, s [6] initialised to ones."""

    n_outputs = 6

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(6))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def test_rsc_mutes_the_top_gradient_features_of_the_most_affected_examples():
    """g(z) = W z with W[0] decreasing, W[1] increasing: the true-class logit gradient of
    example i is W[y_i], so p_f = 1/3 of D = 6 mutes features {0, 1} (class 0) or {4, 5}
    (class 1); p_b = 1/3 of N = 6 keeps the mute on the 2 examples that lose most confidence."""
    torch.manual_seed(0)
    algorithm = create_algorithm("RSC", Scale(), 2, 2, resolve_hparams(ALGORITHMS.get("RSC"), False, 0, {"lr": LR}))
    weight = torch.tensor([[0.6, 0.5, 0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    with torch.no_grad():
        algorithm.classifier.weight.copy_(weight)
        algorithm.classifier.bias.zero_()
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(6, 6, generator=generator) + 0.5
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    muted_features = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.float32)[y]
    confidence = F.softmax(x @ weight.T, 1)[range(6), y]
    drop = confidence - F.softmax((x * muted_features) @ weight.T, 1)[range(6), y]
    mask = torch.ones(6, 6)
    top_two = drop.argsort()[-2:]
    assert drop.sort().values[-3] < drop.sort().values[-2]  # no tie at the cut
    mask[top_two] = muted_features[top_two]
    w = weight.clone().requires_grad_()
    expected = F.cross_entropy((x * mask) @ w.T, y)
    losses = algorithm.update([(x[:3], y[:3]), (x[3:], y[3:])])
    torch.testing.assert_close(losses["loss"], expected.detach())
    (grad,) = autograd.grad(expected, w)
    torch.testing.assert_close(algorithm.classifier.weight.grad, grad)
    # the featurizer gets gradient only through the features left unmuted
    scale_grad = ((F.softmax((x * mask) @ weight.T, 1) - F.one_hot(y, 2)) @ weight * mask * x).sum(0) / 6
    torch.testing.assert_close(algorithm.featurizer.scale.grad, scale_grad)


# ------------------------------------------------------------------------------- ANDMask
def test_and_mask_keeps_only_entries_whose_signs_agree():
    grads = torch.tensor([[0.3, 0.2, -0.1, 0.0], [0.6, -0.4, -0.2, 0.0], [0.9, 0.5, -0.3, 0.0]])
    mean = torch.tensor([0.6, 0.3 / 3, -0.2, 0.0])
    # τ = 1: column 1 disagrees (|mean sign| = 1/3), column 3 has no sign: half the entries survive
    torch.testing.assert_close(and_masked_gradient(grads, 1.0), mean * torch.tensor([1.0, 0, 1, 0]) / 0.5)
    # τ = 0.3: a 2-to-1 vote (1/3 ≥ 0.3) is enough
    torch.testing.assert_close(and_masked_gradient(grads, 0.3), mean * torch.tensor([1.0, 1, 1, 0]) / 0.75)
    opposite = torch.tensor([[1.0, -2.0], [-1.0, 2.0]])
    assert torch.equal(and_masked_gradient(opposite, 1.0), torch.zeros(2))  # no agreement: no step


def test_andmask_update_steps_on_the_masked_mean_of_per_domain_gradients():
    algorithm = build("ANDMask", tau=0.6)
    minibatches = batches()
    before = leaves(algorithm)
    per_domain = [
        autograd.grad(F.cross_entropy(linear_logits(before, x), y), list(before.values()))
        for x, y in minibatches
    ]
    grads = {}
    for i, name in enumerate(before):
        stacked = torch.stack([g[i] for g in per_domain])  # [S, *shape]
        agree = (stacked.sign().sum(0) / 3).abs() >= 0.6
        kept = agree.float().sum() / agree.numel()
        grads[name] = torch.where(agree, stacked.sum(0) / 3, 0.0) / (1e-10 + kept)
    assert any(not bool((g != 0).all()) for g in grads.values())  # something was masked
    losses = algorithm.update(minibatches)
    risks = [F.cross_entropy(linear_logits(before, x), y) for x, y in minibatches]
    torch.testing.assert_close(losses["loss"], torch.stack(risks).mean().detach())
    assert_grads_and_first_step(algorithm, before, grads)


# ----------------------------------------------------------------------------------- MTL
def test_mtl_tracks_each_domains_embedding_as_a_moving_average():
    """E_d ← α mean(f(x_d)) + (1 − α) E_d with α = mtl_ema weighting the new batch mean."""
    algorithm = build("MTL", mtl_ema=0.9)
    minibatches = batches((4, 5, 3))
    assert algorithm.classifier.in_features == 2 * D and torch.equal(algorithm.embeddings, torch.zeros(3, D))
    expected = torch.zeros(3, D)
    for _ in range(2):
        with torch.no_grad():
            means = torch.stack([algorithm.featurizer(x).mean(0) for x, _ in minibatches])
        expected = 0.9 * means + 0.1 * expected
        algorithm.update(minibatches)
        torch.testing.assert_close(algorithm.embeddings, expected)


def test_mtl_classifies_features_next_to_standard_normal_noise_as_domainbed_does():
    """DomainBed's ``.normal_()`` overwrites the embedding: g sees [z, ε], ε ~ N(0, I),
    one draw per domain in order during ``update`` and one per ``predict``."""
    algorithm = build("MTL")
    minibatches = batches((4, 5, 3))
    p = leaves(algorithm)

    def logits(x: Tensor, noise: Tensor) -> Tensor:
        z = x @ p["featurizer.weight"].T + p["featurizer.bias"]
        return torch.cat([z, noise], 1) @ p["classifier.weight"].T + p["classifier.bias"]

    torch.manual_seed(7)
    want = sum(F.cross_entropy(logits(x, torch.randn(len(x), D)), y) for x, y in minibatches)
    torch.manual_seed(7)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["loss"], want.detach())  # a sum over domains, not a mean
    grads = dict(zip(p, autograd.grad(want, list(p.values()))))
    assert_grads_and_first_step(algorithm, p, grads)
    x = minibatches[0][0]
    algorithm.embeddings.fill_(5.0)  # tracked, never read
    torch.manual_seed(8)
    got = algorithm.predict(x)
    torch.manual_seed(8)
    p = leaves(algorithm)
    torch.testing.assert_close(got, logits(x, torch.randn(len(x), D)))


# -------------------------------------------------------------------------------- SagNet
def test_sagnet_style_randomization_mixes_each_examples_mean_and_variance():
    z = torch.randn(6, 16, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(3)
    out = randomize(z, "style")
    torch.manual_seed(3)
    alpha, swap = torch.rand(6, 1), torch.randperm(6)  # DomainBed's draw order
    mean, var = z.mean(1, keepdim=True), z.var(1, keepdim=True)
    mixed_mean = alpha * mean + (1 - alpha) * mean[swap]
    mixed_var = alpha * var + (1 - alpha) * var[swap]
    want = (z - mean) / (var + 1e-5).sqrt() * (mixed_var + 1e-5).sqrt() + mixed_mean
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(out.mean(1, keepdim=True), mixed_mean, atol=1e-5, rtol=1e-5)


def test_sagnet_content_randomization_swaps_content_and_keeps_the_own_style():
    z = torch.randn(6, 16, generator=torch.Generator().manual_seed(2)).requires_grad_()
    torch.manual_seed(3)
    out = randomize(z, "content")
    torch.manual_seed(3)
    _, swap = torch.rand(6, 1), torch.randperm(6)
    mean, var = z.mean(1, keepdim=True), z.var(1, keepdim=True)
    content = ((z - mean) / (var + 1e-5).sqrt()).detach()[swap]  # no gradient through content
    want = content * (var + 1e-5).sqrt() + mean
    torch.testing.assert_close(out, want)
    weights = torch.randn(6, 16, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(autograd.grad((out * weights).sum(), z)[0],
                               autograd.grad((want * weights).sum(), z)[0])


def test_sagnet_content_loss_and_the_adversary_moving_only_the_featurizer():
    minibatches = batches()
    x, y = cat(minibatches)
    algorithm = build("SagNet", sag_w_adv=0.0)
    assert len(algorithm.optimizers()) == 3
    start = copy.deepcopy(algorithm)
    adversarial = copy.deepcopy(algorithm)
    adversarial.hparams["sag_w_adv"] = 2.0
    torch.manual_seed(5)
    losses = algorithm.update(minibatches)
    torch.manual_seed(5)
    with torch.no_grad():
        want = F.cross_entropy(start.classifier(randomize(start.featurizer(x), "style")), y)
    torch.testing.assert_close(losses["class_loss"], want)
    torch.manual_seed(5)
    adversarial.update(minibatches)
    for module in ("classifier", "style_classifier"):  # the adversary's step moves f only
        for a, b in zip(getattr(algorithm, module).parameters(), getattr(adversarial, module).parameters()):
            assert torch.equal(a, b), module
    assert not torch.equal(algorithm.featurizer.weight, adversarial.featurizer.weight)
    for a, b in zip(algorithm.style_classifier.parameters(), start.style_classifier.parameters()):
        assert not torch.equal(a, b)


# ---------------------------------------------------------------------------------- Fish
def test_fish_trains_a_copy_on_each_domain_then_interpolates_every_state_tensor():
    """DomainBed: a clone of θ takes one Adam step per domain (its Adam state persisting
    across updates), then θ ← θ + ε(θ̃ − θ) for every state_dict entry, buffers included."""
    algorithm = build("Fish", featurizer=NormFeaturizer(), meta_lr=0.3)
    assert algorithm.optimizers() == [algorithm.optimizer]
    minibatches = batches((4, 5, 3))
    clone = copy.deepcopy(algorithm)
    inner = torch.optim.Adam(clone.parameters(), lr=LR)
    for step in range(2):
        clone.load_state_dict(algorithm.state_dict())
        start = {k: v.clone() for k, v in algorithm.state_dict().items()}
        for x, y in minibatches:
            loss = F.cross_entropy(clone.predict(x), y)
            inner.zero_grad()
            loss.backward()
            inner.step()
        losses = algorithm.update(minibatches)
        torch.testing.assert_close(losses["loss"], loss.detach())
        for name, value in algorithm.state_dict().items():
            want = (start[name] + 0.3 * (clone.state_dict()[name] - start[name])).to(value.dtype)
            torch.testing.assert_close(value, want, msg=f"step {step}: {name}")
    # the clone's BatchNorm counted 3 batches: 0 + 0.3 · 3 = 0.9, copied back truncated to 0
    assert int(algorithm.featurizer.norm.num_batches_tracked) == 0
    assert not torch.equal(algorithm.featurizer.norm.running_mean, torch.zeros(D))


# ---------------------------------------------------------------------------------- MLDG
def test_mldg_meta_test_term_uses_only_the_held_out_domain():
    """n_meta_test = 1: π = randperm(3); π[2] is the meta-test domain of both pairs."""
    base = build("MLDG", n_meta_test=1)
    minibatches = batches()
    torch.manual_seed(11)
    order = torch.randperm(3).tolist()

    def run(changed: int | None) -> dict[str, Tensor]:
        data = list(minibatches)
        if changed is not None:
            data[changed] = (data[changed][0] + 1.0, data[changed][1])
        torch.manual_seed(11)
        return copy.deepcopy(base).update(data)

    reference, test_changed, train_changed = run(None), run(order[2]), run(order[0])
    torch.testing.assert_close(test_changed["class_loss"], reference["class_loss"])
    assert not torch.allclose(test_changed["meta_test_loss"], reference["meta_test_loss"])
    assert not torch.allclose(test_changed["loss"], reference["loss"])
    assert not torch.allclose(train_changed["class_loss"], reference["class_loss"])


def test_mldg_update_is_domainbeds_first_order_meta_gradient():
    """Per pair (i, j): G_i at θ, θ' = fresh Adam's step on G_i, G_j at θ'; θ steps on
    1/S Σ (G_i + β G_j), batches cut to the pair's common size."""
    algorithm = build("MLDG", n_meta_test=1, mldg_beta=0.7)
    minibatches = batches((5, 4, 3))
    p = leaves(algorithm)
    torch.manual_seed(11)
    order = torch.randperm(3).tolist()
    total = mldg_gradient(p, minibatches, [(order[0], order[2]), (order[1], order[2])], beta=0.7)
    torch.manual_seed(11)
    algorithm.update(minibatches)
    assert_grads_and_first_step(algorithm, p, total)


def mldg_gradient(p: dict[str, Tensor], minibatches, index_pairs, beta: float) -> dict[str, Tensor]:
    """1/S Σ_(i,j) (G_i + β G_j): G_i at θ = p, G_j at θ' = a fresh Adam's first step on G_i."""
    total = {k: torch.zeros_like(v) for k, v in p.items()}
    for i, j in index_pairs:
        n = min(len(minibatches[i][1]), len(minibatches[j][1]))
        (xi, yi), (xj, yj) = [(x[:n], y[:n]) for x, y in (minibatches[i], minibatches[j])]
        grads_i = autograd.grad(F.cross_entropy(linear_logits(p, xi), yi), list(p.values()))
        stepped = {k: adam_first_step(v.detach(), g).requires_grad_() for (k, v), g in zip(p.items(), grads_i)}
        grads_j = autograd.grad(F.cross_entropy(linear_logits(stepped, xj), yj), list(stepped.values()))
        for name, gi, gj in zip(p, grads_i, grads_j):
            total[name] += gi / len(minibatches) + beta * gj / len(minibatches)
    return total


def test_mldg_random_pairs_of_domainbed_7df6f06():
    """n_meta_test = 0 (``--protocol domainbed2020``): pairs (π_k, π_{k+1 mod 3}) for k = 0, 1, 2,
    as 7df6f06's random_pairs_of_minibatches; θ steps on 1/S Σ (G_i + β G_j) over all three."""
    algorithm = build("MLDG", n_meta_test=0, mldg_beta=0.7)
    minibatches = batches((5, 4, 3))
    p = leaves(algorithm)
    torch.manual_seed(11)
    order = torch.randperm(3).tolist()
    total = mldg_gradient(p, minibatches, [(order[k], order[(k + 1) % 3]) for k in range(3)], beta=0.7)
    torch.manual_seed(11)
    algorithm.update(minibatches)
    assert_grads_and_first_step(algorithm, p, total)


def test_mldg_pairs_as_7df6f06_under_the_domainbed2020_protocol():
    mldg = ALGORITHMS.get("MLDG")
    assert resolve_hparams(mldg, False, 0, registry="domainbed2020", algorithm="MLDG")["n_meta_test"] == 0
    assert resolve_hparams(mldg, False, 3, registry="domainbed2020", algorithm="MLDG")["n_meta_test"] == 0
    assert resolve_hparams(mldg, False, 0, registry="domainbed", algorithm="MLDG")["n_meta_test"] == 2
    overridden = resolve_hparams(mldg, False, 0, {"n_meta_test": 1}, registry="domainbed2020", algorithm="MLDG")
    assert overridden["n_meta_test"] == 1


# ----------------------------------------------------------------------------------- ARM
def test_arm_widens_the_first_convolution_as_domainbeds_resnet():
    featurizer = ConvFeaturizer()
    original = featurizer.conv.weight.detach().clone()
    algorithm = build("ARM", featurizer=featurizer)
    conv = algorithm.featurizer.network.conv
    assert conv.in_channels == 4 and conv.weight.shape == (D, 4, 3, 3)
    assert torch.equal(conv.weight[:, :3], original) and torch.equal(conv.weight[:, 3], original[:, 0])
    timm_featurizer = TimmFeaturizer(timm.create_model("test_convnext", pretrained=False, num_classes=0))
    build("ARM", featurizer=timm_featurizer)
    assert timm_featurizer.network.stem[0].in_channels == 4  # timm's pretrained_cfg["first_conv"]
    same = nn.Sequential(Conv2dSame(3, 8, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    same.n_outputs = 8
    arm = build("ARM", featurizer=same)
    assert type(same[0]) is Conv2dSame and same[0].in_channels == 4
    assert arm.predict(torch.randn(2, 3, 7, 7)).shape == (2, K)
    mnist = build("ARM", featurizer=MNISTCNN(2))
    assert mnist.featurizer.network.body[0].in_channels == 3
    with pytest.raises(UserError, match="2-D convolution"):
        build("ARM")  # a linear featurizer


def test_arm_adapts_each_support_set_to_its_mean_context():
    algorithm = build("ARM", featurizer=ConvFeaturizer(), batch_size=2).eval()
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        context = algorithm.featurizer.context(x)  # [4, 1, 6, 6]
        groups = torch.cat([context[:2].mean(0, keepdim=True).expand(2, -1, -1, -1),
                            context[2:].mean(0, keepdim=True).expand(2, -1, -1, -1)])
        want = algorithm.classifier(algorithm.featurizer.network(torch.cat([x, groups], 1)))
        torch.testing.assert_close(algorithm.predict(x), want)
        other = x.clone()
        other[3] += 1.0
        changed = algorithm.predict(other)
        torch.testing.assert_close(changed[:2], want[:2])  # another support set: unaffected
        assert not torch.allclose(changed[2], want[2])  # same set: x_2 is read in a new context
        odd = algorithm.predict(x[:3])  # 3 is not a multiple of 2: one set of all 3
        other_odd = x[:3].clone()
        other_odd[2] += 1.0
        assert not torch.allclose(algorithm.predict(other_odd)[0], odd[0])


def test_arm_never_trains_its_context_net():
    """DomainBed builds ERM's Adam before the ContextNet: only its BatchNorm statistics move."""
    algorithm = build("ARM", featurizer=ConvFeaturizer(), batch_size=4)
    context = copy.deepcopy(algorithm.featurizer.context.state_dict())
    conv = algorithm.featurizer.network.conv.weight.detach().clone()
    algorithm.update(batches((4, 4, 4), image=True))
    for name, value in algorithm.featurizer.context.state_dict().items():
        moved = not torch.equal(value, context[name])
        assert moved == ("running" in name or "num_batches" in name), name
    assert all(p.grad is None for p in algorithm.featurizer.context.parameters())
    assert not torch.equal(algorithm.featurizer.network.conv.weight, conv)
    trained = {id(p) for group in algorithm.optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for n, p in algorithm.named_parameters() if ".context." not in n}


# ------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("name", ["ANDMask", "ARM", "Fish", "MLDG", "MTL", "RSC", "SagNet", "SD"])
def test_resuming_from_state_dict_continues_identically(name):
    image = name == "ARM"
    make = ConvFeaturizer if image else NormFeaturizer
    minibatches = batches(image=image)
    original = build(name, featurizer=make(), batch_size=4)
    for _ in range(2):
        original.update(minibatches)
    resumed = build(name, featurizer=make(), seed=1, batch_size=4)
    resumed.load_state_dict(copy.deepcopy(original.state_dict()))
    for mine, theirs in zip(resumed.optimizers(), original.optimizers(), strict=True):
        mine.load_state_dict(copy.deepcopy(theirs.state_dict()))
    for algorithm in (original, resumed):
        torch.manual_seed(7)
        algorithm.history = [algorithm.update(minibatches) for _ in range(2)]
    for a, b in zip(original.history, resumed.history):
        for key in a:
            torch.testing.assert_close(a[key], b[key], msg=key)


# ------------------------------------------------------------------------ hparam draws
# DomainBed's draws of each algorithm's own hparams for hparams_seed 0 (defaults), 1, 2
# (trial_seed 0); its registry does not make them depend on the dataset.
OWN_DRAWS = {
    "Fish": {"meta_lr": (0.5, 0.5, 0.05)},
    "MLDG": {"mldg_beta": (1.0, 5.4211455811356215, 1.2856569611986444), "n_meta_test": (2, 1, 2)},
    "MTL": {"mtl_ema": (0.99, 0.99, 0.9)},
    "SagNet": {"sag_w_adv": (0.1, 0.010638215739319792, 1.6594429511632758)},
    "RSC": {
        "rsc_f_drop_factor": (1 / 3, 0.4041248591083744, 0.2094505390443353),
        "rsc_b_drop_factor": (1 / 3, 0.2581555339499306, 0.051525091695097336),
    },
    "SD": {"sd_reg": (0.1, 0.00032197228403631824, 0.00223132088910956)},
    "ANDMask": {"tau": (1.0, 0.6967161137765769, 0.9639889733302021)},  # DomainBed's default: int 1
    "ARM": {},
}
# batch_size: ARM's own branch (8 on every image dataset) precedes DomainNet's range.
BATCH_SIZES = {
    ("ARM", "ColoredMNIST"): (64, 372, 126), ("ARM", "PACS"): (8, 8, 8), ("ARM", "DomainNet"): (8, 8, 8),
    ("SD", "ColoredMNIST"): (64, 372, 126), ("SD", "PACS"): (32, 39, 25), ("SD", "DomainNet"): (32, 28, 20),
}


@pytest.mark.parametrize("dataset", ["ColoredMNIST", "PACS", "DomainNet"])
@pytest.mark.parametrize("name", sorted(OWN_DRAWS))
def test_hparam_defaults_and_draws_equal_domainbeds(name, dataset):
    small = DATASETS.get(dataset).SMALL_IMAGES
    for seed in (0, 1, 2):
        drawn = resolve_hparams(ALGORITHMS.get(name), small, seed, trial_seed=0, dataset=dataset)
        for key, values in OWN_DRAWS[name].items():
            assert drawn[key] == values[seed] and type(drawn[key]) is type(values[seed]), (key, seed)
        if (name, dataset) in BATCH_SIZES:
            assert drawn["batch_size"] == BATCH_SIZES[name, dataset][seed], seed


def test_algorithms_name_their_paper_and_source():
    for name in OWN_DRAWS:
        cls = ALGORITHMS.get(name)
        assert "arXiv:" in cls.PAPER and cls.SOURCE.startswith("DomainBed domainbed/algorithms.py @ 22002ea")
