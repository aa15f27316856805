"""CAD, CondCAD, Transfer, EQRM, RDM, URM and ERMPlusPlus against DomainBed's maths and draws.

The updates run on a tiny linear featurizer (x [N, 3] -> z [N, 4]), K = 3 classes and
S = 3 source domains of 4 examples. Every expected value is written out below from the
formulas of DomainBed's classes (domainbed/algorithms.py), independently of dgsamp's
code; expected gradients are autograd's of those hand-written scalars. The hparam draws
are literals computed with DomainBed's registry (domainbed/hparams_registry.py,
``random_hparams(alg, dataset, misc.seed_hash(hparams_seed, trial_seed=0))``, defaults
from ``default_hparams``).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.adrmx import supcon_lambda
from dgsamp.algorithms.cad import bottleneck_loss
from dgsamp.algorithms.eqrm import kde_quantile
from dgsamp.algorithms.ermplusplus import ERMPlusPlus
from dgsamp.backbones.factory import TimmFeaturizer
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, DATASETS, create_algorithm

NUM_CLASSES, D_IN, D = 3, 3, 4
LABELS = ([0, 1, 2, 1], [2, 0, 1, 1], [1, 2, 0, 0])
GENERATOR = ("featurizer.weight", "featurizer.bias", "classifier.weight", "classifier.bias")


class LinearFeaturizer(nn.Linear):
    """z = x W_fᵀ + b_f, ``x [N, 3] -> z [N, 4]``."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__(D_IN, D)


def build(name: str, featurizer: nn.Module | None = None, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    hparams = resolve_hparams(ALGORITHMS.get(name), False, 0, overrides)
    featurizer = featurizer if featurizer is not None else LinearFeaturizer()
    return create_algorithm(name, featurizer, NUM_CLASSES, len(LABELS), hparams).train()


def batch(labels=LABELS, seed: int = 1) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(len(y), D_IN, generator=generator), torch.tensor(y)) for y in labels]


def pooled(minibatches) -> tuple[Tensor, Tensor, Tensor]:
    """x [N, 3], y [N], domain [N]."""
    x = torch.cat([xb for xb, _ in minibatches])
    y = torch.cat([yb for _, yb in minibatches])
    d = torch.cat([torch.full((len(yb),), i) for i, (_, yb) in enumerate(minibatches)])
    return x, y, d


def snapshot(algorithm) -> dict[str, Tensor]:
    return {k: p.detach().clone().requires_grad_() for k, p in algorithm.named_parameters()}


def linear(p: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def assert_grads(algorithm, names, expected, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    params = dict(algorithm.named_parameters())
    for name, grad in zip(names, expected):
        torch.testing.assert_close(params[name].grad, grad, rtol=rtol, atol=atol, msg=name)


def flat(module: nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


# ------------------------------------------------------------------ CAD, CondCAD
def bottleneck_by_rows(z, y, d, tau: float, conditional: bool, flipped: bool) -> Tensor:
    """DomainBed's bn_loss read row by row: ℓ_i = ±(τ/0.07)(lse_{j∈T_i} s_ij − lse_{j∈B_i} s_ij),
    s = z zᵀ/τ with s_ii = 0, B_i the normaliser's set, T_i the target set; mean of finite ℓ_i."""
    s = z @ z.T / tau
    rows = []
    for i in range(len(y)):
        others = [j for j in range(len(y)) if j != i]
        positives = [j for j in others if y[j] == y[i]]
        if conditional:
            base, targets = positives, [j for j in positives if (d[j] != d[i]) == flipped]
            if not targets:
                continue
        else:
            if not positives:
                continue
            base, targets = others, [j for j in range(len(y)) if (d[j] != d[i]) == flipped]
        row = torch.cat([s[i, :i], s.new_zeros(1), s[i, i + 1 :]])  # the diagonal is zeroed
        value = torch.logsumexp(row[targets], 0) - torch.logsumexp(row[base], 0)
        loss = (tau / 0.07) * (-value if flipped else value)
        if torch.isfinite(loss):
            rows.append(loss)
    return torch.stack(rows).mean() if rows else z.new_zeros(())


@pytest.mark.parametrize(
    ("conditional", "flipped", "expected_logs"),
    [
        (False, True, [-math.log(2 / 4), -math.log(3 / 4), -math.log(3 / 4), -math.log(2 / 4), -math.log(2 / 4)]),
        (False, False, [math.log(3 / 4), math.log(2 / 4), math.log(2 / 4), math.log(3 / 4), math.log(3 / 4)]),
        (True, True, [0.0, -math.log(1 / 2), -math.log(1 / 2)]),
        (True, False, [math.log(1 / 2), math.log(1 / 2), 0.0, 0.0]),
    ],
    ids=["CAD", "CAD-not-flipped", "CondCAD", "CondCAD-not-flipped"],
)
def test_bottleneck_on_identical_features_counts_neighbours(conditional, flipped, expected_logs):
    """z = 0: every s_ij = 0, so each neighbour carries p = 1/|B_i| and ℓ_i = ±(τ/τ₀) log(|T_i|/|B_i|).

    y = (0, 0, 0, 1, 1), d = (0, 1, 1, 0, 0). CAD: B_i = the 4 others; flipped T_i = other
    domain (2, 3, 3, 2, 2 examples), not flipped T_i = same domain with i itself (3, 2, 2, 3, 3).
    CondCAD: B_i = same label; flipped keeps rows 0-2 (T = 2/2, 1/2, 1/2), not flipped rows
    1-4 (T = 1/2, 1/2, 1/1, 1/1); a row without targets is dropped.
    """
    y, d = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 1, 1, 0, 0])
    loss = bottleneck_loss(torch.zeros(5, 4), y, d, 0.1, conditional, flipped)
    torch.testing.assert_close(loss, torch.tensor((0.1 / 0.07) * sum(expected_logs) / len(expected_logs)))


@pytest.mark.parametrize("conditional", [False, True], ids=["CAD", "CondCAD"])
@pytest.mark.parametrize("flipped", [True, False], ids=["flipped", "not-flipped"])
def test_bottleneck_matches_domainbeds_rows_in_value_and_gradient(conditional, flipped):
    """Label 3 has no partner and label 4 lives in one domain: rows DomainBed drops."""
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 4, 2, 0, 3, 4])
    d = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 1])
    ours = bottleneck_loss(z, y, d, 0.05, conditional, flipped)
    theirs = bottleneck_by_rows(z, y, d, 0.05, conditional, flipped)
    torch.testing.assert_close(ours, theirs)
    grad_ours, grad_theirs = (torch.autograd.grad(v, z)[0] for v in (ours, theirs))
    torch.testing.assert_close(grad_ours, grad_theirs)
    assert torch.isfinite(grad_ours).all()


def test_bottleneck_is_larger_when_features_reveal_the_domain():
    y = torch.tensor([0, 0, 1, 1] * 3)  # two examples of each class in each domain
    d = torch.arange(3).repeat_interleave(4)
    reveal_domain = 3.0 * F.one_hot(d, 4).float()
    reveal_label = 3.0 * F.one_hot(y, 4).float()
    for conditional in (False, True):
        assert bottleneck_loss(reveal_domain, y, d, 0.1, conditional, True) > bottleneck_loss(
            reveal_label, y, d, 0.1, conditional, True
        )


@pytest.mark.parametrize("name", ["CAD", "CondCAD"])
def test_cad_update_minimises_cross_entropy_plus_lambda_bottleneck(name):
    algorithm = build(name, lmbda=0.5, temperature=0.05, lr=0.01)
    minibatches = batch()
    x, y, d = pooled(minibatches)
    before = snapshot(algorithm)
    z = linear(before, "featurizer", x)
    class_loss = F.cross_entropy(linear(before, "classifier", z), y)
    bn_loss = bottleneck_by_rows(z, y, d, 0.05, name == "CondCAD", True)
    expected = class_loss + 0.5 * bn_loss
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["loss"], expected.detach())
    torch.testing.assert_close(losses["class_loss"], class_loss.detach())
    torch.testing.assert_close(losses["bn_loss"], bn_loss.detach())
    grads = torch.autograd.grad(expected, [before[k] for k in GENERATOR])
    assert_grads(algorithm, GENERATOR, grads, atol=1e-5)  # τ = 0.05: s_ij up to ~100


# ------------------------------------------------------------------------ Transfer
def risk_gap(head: nn.Module, z: Tensor, y: Tensor) -> Tensor:
    """max_d R_d − min_d R_d over the 3 domains of 4 examples."""
    risks = torch.stack([F.cross_entropy(head(zd), yd) for zd, yd in zip(z.split(4), y.split(4))])
    return risks.max() - risks.min()


def test_transfer_update_follows_domainbeds_four_steps():
    """Adam(f, g) on CE; the same Adam on λΓ(h'); h' ← g; k SGD ascent steps on λΓ(h')."""
    lr, lr_d, weight = 0.01, 0.05, 0.7
    algorithm = build("Transfer", lr=lr, lr_d=lr_d, t_lambda=weight, delta=100.0, d_steps_per_g=2)
    f, g, h = (copy.deepcopy(m) for m in (algorithm.featurizer, algorithm.classifier, algorithm.adv_classifier))
    torch.testing.assert_close(flat(h), flat(g))  # h' starts as a copy of g
    minibatches = batch()
    x, y, _ = pooled(minibatches)
    adam = torch.optim.Adam([*f.parameters(), *g.parameters()], lr=lr)
    class_loss = F.cross_entropy(g(f(x)), y)
    adam.zero_grad()
    class_loss.backward()
    adam.step()
    adam.zero_grad()
    (weight * risk_gap(h, f(x), y)).backward()
    adam.step()  # g has no gradient: only f moves
    h.load_state_dict(g.state_dict())
    sgd = torch.optim.SGD(h.parameters(), lr=lr_d)
    for _ in range(2):
        sgd.zero_grad()
        gap = weight * risk_gap(h, f(x).detach(), y)
        (-gap).backward()
        sgd.step()
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["loss"], class_loss.detach())
    torch.testing.assert_close(losses["gap"], gap.detach())
    for mine, theirs in ((algorithm.featurizer, f), (algorithm.classifier, g), (algorithm.adv_classifier, h)):
        torch.testing.assert_close(flat(mine), flat(theirs))
    assert not torch.equal(flat(algorithm.adv_classifier), flat(algorithm.classifier))


def test_transfer_projects_the_adversary_back_onto_the_delta_ball():
    """One ascent step from g leaves the ball; the projection puts h' at g + δ ∇/‖∇‖."""
    algorithm = build("Transfer", lr_d=0.5, delta=0.01, d_steps_per_g=1, t_lambda=1.0)
    minibatches = batch()
    x, y, _ = pooled(minibatches)
    algorithm.update(minibatches)
    head = copy.deepcopy(algorithm.classifier)
    with torch.no_grad():
        z = algorithm.featurizer(x)
    grads = torch.autograd.grad(risk_gap(head, z, y), list(head.parameters()))
    direction = torch.cat([grad.flatten() for grad in grads])
    offset = flat(algorithm.adv_classifier) - flat(algorithm.classifier)
    torch.testing.assert_close(offset.norm(), torch.tensor(0.01))
    torch.testing.assert_close(offset, 0.01 * direction / direction.norm(), rtol=1e-4, atol=1e-7)


def test_transfer_gda_trains_neither_featurizer_nor_classifier_as_in_domainbed():
    """gda (every DomainBed draw): the main optimizer is an SGD over h', which h' ← g undoes."""
    algorithm = build("Transfer", gda=True, d_steps_per_g=1, lr=0.1)
    featurizer, classifier = flat(algorithm.featurizer), flat(algorithm.classifier)
    for _ in range(2):
        losses = algorithm.update(batch())
    assert torch.equal(flat(algorithm.featurizer), featurizer)
    assert torch.equal(flat(algorithm.classifier), classifier)
    assert not torch.equal(flat(algorithm.adv_classifier), classifier)
    assert torch.isfinite(losses["gap"])


# ---------------------------------------------------------------------------- EQRM
def kde_cdf(value: Tensor, risks: Tensor) -> Tensor:
    """F(value) = 1/S Σ_d Φ((value − R_d) / h), h = 1.06 std(R) S^(−1/5), in float64."""
    r = risks.detach().double()
    bandwidth = 1.06 * r.std() * len(r) ** (-0.2)
    return (0.5 * (1 + torch.erf((value - r) / (bandwidth * math.sqrt(2))))).mean()


def domain_risks(p: dict[str, Tensor], minibatches) -> Tensor:
    return torch.stack([
        F.cross_entropy(linear(p, "classifier", linear(p, "featurizer", xb)), yb) for xb, yb in minibatches
    ])


def test_eqrm_is_erm_during_burn_in_then_the_kde_quantile_of_the_domain_risks():
    algorithm = build("EQRM", eqrm_burnin_iters=1.0, eqrm_quantile=0.8, eqrm_lr=1e-4, lr=0.01)
    minibatches = batch()
    first_risks = domain_risks(snapshot(algorithm), minibatches)
    first = algorithm.update(minibatches)  # step 0 < T = 1: the mean risk
    torch.testing.assert_close(first["loss"], first_risks.mean().detach())
    assert algorithm.optimizer.param_groups[0]["lr"] == 0.01
    risks = domain_risks(snapshot(algorithm), minibatches)
    second = algorithm.update(minibatches)  # step 1 = T: the quantile, Adam restarted
    assert abs(kde_cdf(second["loss"].double(), risks).item() - 0.8) < 1e-6
    torch.testing.assert_close(second["class_loss"], risks.mean().detach())
    assert all(group["lr"] == 1e-4 for group in algorithm.optimizer.param_groups)
    assert {int(state["step"]) for state in algorithm.optimizer.state.values()} == {1}


def test_eqrm_quantile_gradient_reaches_the_extreme_risks_and_the_bandwidth():
    """DomainBed returns a·lo + b·hi of the bisection's first bracket [R_min + h z_α, R_max + h z_α]:
    ∂q/∂R = a e_min + b e_max + z_α ∂h/∂R, b = (q − lo) / (hi − lo)."""
    risks = torch.tensor([0.9, 0.3, 1.4, 0.6], requires_grad=True)
    alpha = 0.75
    quantile = kde_quantile(risks, torch.tensor(alpha, dtype=torch.float64))
    assert quantile.dtype == torch.float64
    assert abs(kde_cdf(quantile.detach(), risks).item() - alpha) < 1e-7
    (grad,) = torch.autograd.grad(quantile, risks)
    bandwidth = 1.06 * risks.std() * 4 ** (-0.2)
    (bandwidth_grad,) = torch.autograd.grad(bandwidth, risks)
    z_alpha = math.sqrt(2) * torch.erfinv(torch.tensor(2 * alpha - 1, dtype=torch.float64))
    lo = 0.3 + bandwidth.detach().double() * z_alpha
    hi = 1.4 + bandwidth.detach().double() * z_alpha
    b = (quantile.detach() - lo) / (hi - lo)
    expected = torch.tensor([0.0, 1.0, 0.0, 0.0]) * (1 - b) + torch.tensor([0.0, 0.0, 1.0, 0.0]) * b
    expected = expected + z_alpha * bandwidth_grad.double()
    torch.testing.assert_close(grad.double(), expected, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- RDM
def rdm_kernel(u: Tensor, v: Tensor) -> Tensor:
    """Σ_g exp(−g d), d = max(v² − 2uv + u², 1e-30): DomainBed expands the square (its rounding
    matters at g = 1000)."""
    distances = (v.pow(2)[None, :] - 2 * u[:, None] * v[None, :] + u.pow(2)[:, None]).clamp_min(1e-30)
    return sum(torch.exp(-g * distances) for g in (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0))


def test_rdm_matches_the_worst_domains_loss_distribution_after_the_anneal():
    algorithm = build(
        "RDM", rdm_penalty_anneal_iters=1, rdm_lambda=2.0, variance_weight=0.5, rdm_lr=1e-3, lr=0.01
    )
    minibatches = batch()
    first = algorithm.update(minibatches)  # step 0 < T = 1: penalties weighted 0
    torch.testing.assert_close(first["loss"], first["class_loss"])
    before = snapshot(algorithm)
    x, y, _ = pooled(minibatches)
    losses = F.cross_entropy(linear(before, "classifier", linear(before, "featurizer", x)), y, reduction="none")
    per_domain = losses.view(3, 4)
    risks = per_domain.mean(1)
    worst = per_domain[int(risks.argmax())]
    matching = rdm_kernel(worst, worst).mean() + rdm_kernel(losses, losses).mean() - 2 * rdm_kernel(worst, losses).mean()
    variance = losses.var() + worst.var()
    expected = risks.mean() + 2.0 * matching + 0.5 * variance
    second = algorithm.update(minibatches)
    torch.testing.assert_close(second["matching_penalty"], matching.detach(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(second["variance_penalty"], variance.detach())
    torch.testing.assert_close(second["loss"], expected.detach(), rtol=1e-4, atol=1e-6)
    grads = torch.autograd.grad(expected, [before[k] for k in GENERATOR])
    assert_grads(algorithm, GENERATOR, grads, rtol=1e-4, atol=2e-4)  # g = 1000 amplifies rounding
    assert all(group["lr"] == 1e-3 for group in algorithm.optimizer.param_groups)
    assert {int(state["step"]) for state in algorithm.optimizer.state.values()} == {1}


def test_rdm_needs_equal_domain_batches():
    with pytest.raises(ValueError, match="equal per-domain batch sizes"):
        build("RDM").update(batch(([0, 1, 2], [0, 1], [2, 1, 0])))


# ----------------------------------------------------------------------------- URM
def discriminator(p: dict[str, Tensor], u: Tensor) -> Tensor:
    """h(u) [N] for the default h: Linear(4, 100), LeakyReLU, Linear(100, 100), LeakyReLU, Linear(100, 1)."""
    hidden = F.leaky_relu(linear(p, "discriminator.dense1", u))
    hidden = F.leaky_relu(linear(p, "discriminator.dense2", hidden))
    return linear(p, "discriminator.output", hidden)[:, 0]


DISCRIMINATOR = tuple(
    f"discriminator.{layer}.{kind}" for layer in ("dense1", "dense2", "output") for kind in ("weight", "bias")
)


def test_urm_pushes_tanh_features_towards_uniform_noise():
    """Generator: CE + λ BCE(h(z), 1); then h: BCE(h(u), 1) + λ BCE(h(z), 0), u = 2·U[0, 1) − 1."""
    weight = 0.3
    algorithm = build("URM", urm_adv_lambda=weight, lr=0.01, urm_discriminator_lr=0.02)
    minibatches = batch()
    x, y, _ = pooled(minibatches)
    before = snapshot(algorithm)
    z = torch.tanh(linear(before, "featurizer", x))
    class_loss = F.cross_entropy(linear(before, "classifier", z), y)
    gen_loss = F.softplus(-discriminator(before, z)).mean()  # BCE with target 1
    expected = class_loss + weight * gen_loss
    torch.manual_seed(5)
    noise = 2 * torch.rand(12, D) - 1  # the update's only draw
    disc_loss = F.softplus(-discriminator(before, noise)).mean() + weight * F.softplus(
        discriminator(before, z.detach())
    ).mean()
    torch.manual_seed(5)
    losses = algorithm.update(minibatches)
    for key, value in (("loss", expected), ("gen_loss", gen_loss), ("disc_loss", disc_loss)):
        torch.testing.assert_close(losses[key], value.detach(), msg=key)
    assert_grads(algorithm, GENERATOR, torch.autograd.grad(expected, [before[k] for k in GENERATOR], retain_graph=True))
    assert_grads(algorithm, DISCRIMINATOR, torch.autograd.grad(disc_loss, [before[k] for k in DISCRIMINATOR]))


def test_urm_soft_targets_are_drawn_after_the_noise():
    eps, weight = 0.2, 0.1
    algorithm = build("URM", urm_discriminator_label_smoothing=eps, urm_generator_output="relu")
    minibatches = batch()
    x, _, _ = pooled(minibatches)
    before = snapshot(algorithm)
    z = torch.relu(linear(before, "featurizer", x)).detach()
    torch.manual_seed(7)
    noise = torch.rand(12, D)  # relu: U[0, 1)
    noise_target = (1.0 - (1 - eps)) * torch.rand(12) + (1 - eps)
    feature_target = eps * torch.rand(12)
    expected = F.binary_cross_entropy_with_logits(discriminator(before, noise), noise_target) + weight * (
        F.binary_cross_entropy_with_logits(discriminator(before, z), feature_target)
    )
    torch.manual_seed(7)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["disc_loss"], expected.detach())


@pytest.mark.parametrize(("output", "low", "high"), [("tanh", -1, 1), ("sigmoid", 0, 1), ("relu", 0, None)])
def test_urm_predicts_through_the_output_activation(output, low, high):
    algorithm = build("URM", urm_generator_output=output)
    x = 5 * torch.randn(20, D_IN)
    z = algorithm.features(x)
    assert z.min() >= low and (high is None or z.max() <= high)
    torch.testing.assert_close(algorithm.predict(x), algorithm.classifier(z))


# --------------------------------------------------------------------- ERMPlusPlus
def test_ermplusplus_probes_linearly_then_fine_tunes():
    """Steps 1 .. T_lp + 1 move only g (Adam at ``linear_lr``); then f and g with a fresh Adam."""
    algorithm = build("ERMPlusPlus", linear_steps=2, linear_lr=0.01, lr=0.02)
    featurizer = flat(algorithm.featurizer)
    for _ in range(3):
        classifier = flat(algorithm.classifier)
        algorithm.update(batch())
        assert torch.equal(flat(algorithm.featurizer), featurizer)
        assert not torch.equal(flat(algorithm.classifier), classifier)
    assert not algorithm.optimizer.state
    algorithm.update(batch())
    assert not torch.equal(flat(algorithm.featurizer), featurizer)
    assert {int(state["step"]) for state in algorithm.optimizer.state.values()} == {1}


def test_ermplusplus_predicts_with_the_mean_of_the_weights_since_the_start(monkeypatch):
    """θ̄_t = θ_t before the start s, then the mean of θ_{s−1} .. θ_t (s = 600 in DomainBed)."""
    monkeypatch.setattr(ERMPlusPlus, "AVERAGE_START", 3)
    algorithm = build("ERMPlusPlus", linear_steps=0, lr=0.05)
    history = []
    for step in range(1, 6):
        algorithm.update(batch(seed=step))
        history.append(torch.cat([flat(algorithm.featurizer), flat(algorithm.classifier)]))
        average = torch.cat([flat(algorithm.average["featurizer"]), flat(algorithm.average["classifier"])])
        expected = history[-1] if step < 3 else torch.stack(history[1:]).mean(0)
        torch.testing.assert_close(average, expected)
    x = torch.randn(5, D_IN)
    torch.testing.assert_close(algorithm.predict(x), algorithm.average["classifier"](algorithm.average["featurizer"](x)))
    assert not torch.allclose(algorithm.predict(x), algorithm.classifier(algorithm.featurizer(x)))


class NormalisedFeaturizer(nn.Sequential):
    """Linear(3, 4) then BatchNorm1d(4): running statistics to average and refresh."""

    n_outputs = D

    def __init__(self, freeze_bn: bool = False) -> None:
        super().__init__(nn.Linear(D_IN, D), nn.BatchNorm1d(D))
        self.freeze_bn = freeze_bn


@pytest.mark.parametrize("freeze_bn", [False, True], ids=["refresh", "frozen-bn"])
def test_ermplusplus_average_sees_the_batch_for_its_batchnorm_statistics(freeze_bn):
    """After copying θ, DomainBed runs θ̄ once in train mode on x (unless BatchNorm is frozen)."""
    algorithm = build("ERMPlusPlus", featurizer=NormalisedFeaturizer(freeze_bn), linear_steps=0)
    minibatches = batch()
    x, _, _ = pooled(minibatches)
    algorithm.update(minibatches)
    network, average = algorithm.featurizer[1], algorithm.average["featurizer"][1]
    with torch.no_grad():
        batch_mean = algorithm.featurizer[0](x).mean(0)  # θ̄'s Linear equals θ's after the copy
    refreshed = 0.9 * network.running_mean + 0.1 * batch_mean
    torch.testing.assert_close(average.running_mean, network.running_mean if freeze_bn else refreshed)


# --------------------------------------------------------------------------- ADRMX
def supcon_by_rows(z: Tensor, y: Tensor, d: Tensor, lam: float = 0.5, tau: float = 0.07) -> Tensor:
    """DomainBed's SupConLossLambda read example by example (its loop over i)."""
    u = F.normalize(z, dim=1)
    s = u @ u.T / tau
    total, skipped = z.new_zeros(()), 0
    for i in range(len(y)):
        others = [j for j in range(len(y)) if j != i]
        weight = {j: lam if d[j] == d[i] else 1 - lam for j in others}
        terms = {j: weight[j] * torch.exp(s[j, i]) for j in others}
        denominator = torch.stack(list(terms.values())).sum() + 1e-5
        positives = [j for j in others if y[j] == y[i]]
        if not positives:
            skipped += 1
            continue
        total = total - torch.stack([torch.log(terms[j] / denominator + 1e-5) for j in positives]).sum() / len(positives)
    return total / (len(y) - skipped + 1)


def test_adrmx_supcon_matches_domainbeds_loop_in_value_and_gradient():
    """Label 3 has a single example: DomainBed skips its NaN row and divides by N − 1 + 1."""
    z = torch.randn(9, 4, generator=torch.Generator().manual_seed(2), requires_grad=True)
    y = torch.tensor([0, 1, 0, 2, 1, 2, 0, 3, 1])
    d = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    ours, theirs = supcon_lambda(z, y, d), supcon_by_rows(z, y, d)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.autograd.grad(ours, z)[0], torch.autograd.grad(theirs, z)[0])


def remix_pairs(y: Tensor, num_classes: int) -> tuple[list[int], list[int]]:
    """DomainBed's draws: per class, randperm(n_c) on the CPU generator, first two entries."""
    first, second = [], []
    for c in range(num_classes):
        order = torch.randperm(int((y == c).sum()))
        if len(order) >= 2:
            first.append(int(order[0]))
            second.append(int(order[1]))
    return first, second


def test_adrmx_generator_step_matches_domainbeds_objective():
    """L = CE(g_1(z_l)) + CE(g_2(z)) + μ_d CE(g_d(z_d)) + μ_r L_rmx + μ_c SupCon − μ_h L_h, with the
    remix pairs taken as batch positions (DomainBed's indexing)."""
    algorithm = build("ADRMX", d_steps_per_g_step=1, mlp_depth=3, mlp_width=16, disc_lambda=0.75)
    # update 1: 1 mod (1 + k) = 1, not < k = 1: a generator step
    minibatches = batch()
    x, y, d = pooled(minibatches)
    before = snapshot(algorithm)

    def call(name: str, inputs: Tensor) -> Tensor:  # module ``name`` on the snapshot's weights
        weights = {k[len(name) + 1 :]: v for k, v in before.items() if k.startswith(name + ".")}
        return torch.func.functional_call(getattr(algorithm, name), weights, (inputs,))

    z_label, z_domain = call("featurizer", x), call("featurizer_domain", x)
    z = z_label - z_domain
    disc_loss = F.cross_entropy(call("discriminator", z), d)
    torch.manual_seed(11)
    first, second = remix_pairs(y, NUM_CLASSES)
    remix = sum(
        F.cross_entropy(call("classifier", (z[a] + z_domain[b])[None]), y[a][None]) for a, b in zip(first, second)
    ) / NUM_CLASSES
    expected = (
        F.cross_entropy(call("classifier", z_label), y) + F.cross_entropy(call("classifier_label_2", z), y)
        + F.cross_entropy(call("classifier_domain", z_domain), d) + remix
        + supcon_by_rows(z_label, y, d) + supcon_by_rows(z, y, d) - 0.75 * disc_loss
    )
    torch.manual_seed(11)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["loss"], expected.detach())
    torch.testing.assert_close(losses["disc_loss"], disc_loss.detach())
    names = [k for k in before if not k.startswith("discriminator.")]
    assert_grads(algorithm, names, torch.autograd.grad(expected, [before[k] for k in names]), atol=1e-6)
    for key in (k for k in before if k.startswith("discriminator.")):  # h is not stepped
        assert torch.equal(dict(algorithm.named_parameters())[key], before[key].detach()), key


def test_adrmx_alternates_discriminator_and_generator_steps():
    """k = 2: update t trains h when t mod 3 < 2 (t = 1, 3, 4, ...), the rest at t = 2, 5, ..."""
    algorithm = build("ADRMX")
    rest = lambda: torch.cat([flat(algorithm.featurizer), flat(algorithm.featurizer_domain), flat(algorithm.classifier)])  # noqa: E731
    for t in range(1, 6):
        before, disc = rest(), flat(algorithm.discriminator)
        algorithm.update(batch(seed=t))
        generator_step = t % 3 == 2
        assert torch.equal(rest(), before) != generator_step, t
        assert torch.equal(flat(algorithm.discriminator), disc) == generator_step, t
    assert isinstance(algorithm.classifier, nn.Sequential)  # DomainBed's nonlinear g_1, always


class TinyTimm(nn.Linear):
    """Stands in for a timm model (``num_features``) inside a TimmFeaturizer."""

    num_features = D

    def __init__(self) -> None:
        super().__init__(D_IN, D)


def test_adrmx_domain_featurizer_copies_pretrained_weights_and_redraws_others():
    timm_like = build("ADRMX", featurizer=TimmFeaturizer(TinyTimm()))
    assert torch.equal(flat(timm_like.featurizer_domain), flat(timm_like.featurizer))
    plain = build("ADRMX")
    assert not torch.equal(flat(plain.featurizer_domain), flat(plain.featurizer))


# ------------------------------------------------------------- per-domain passes
@pytest.mark.parametrize("per_domain", [True, False], ids=["per-domain", "joint"])
def test_eqrm_and_transfer_pass_each_domain_alone_when_asked(per_domain):
    """DomainBed calls the network once per domain in EQRM's risks and Transfer's gap:
    BatchNorm then normalises each domain with its own statistics."""
    minibatches = batch()
    eqrm = build("EQRM", featurizer=NormalisedFeaturizer())
    eqrm.per_domain_passes = per_domain
    transfer = build("Transfer", featurizer=NormalisedFeaturizer(), d_steps_per_g=1, lr=0.01)
    transfer.per_domain_passes = per_domain

    def risks(featurizer, head) -> Tensor:
        if per_domain:
            return torch.stack([F.cross_entropy(head(featurizer(xb)), yb) for xb, yb in minibatches])
        x, y, _ = pooled(minibatches)
        return F.cross_entropy(head(featurizer(x)), y, reduction="none").view(3, 4).mean(1)

    with torch.no_grad():
        expected = risks(eqrm.featurizer, eqrm.classifier).mean()
    torch.testing.assert_close(eqrm.update(minibatches)["class_loss"], expected)
    gap = transfer.update(minibatches)["gap"]
    with torch.no_grad():  # k = 1: the gap of h' = g (after the outer steps), before its ascent
        expected = risks(transfer.featurizer, transfer.classifier)
    torch.testing.assert_close(gap, expected.max() - expected.min())


# ---------------------------------------------------------------- checkpoint resume
@pytest.mark.parametrize(
    ("name", "overrides"),
    [("EQRM", {"eqrm_burnin_iters": 2.0}), ("RDM", {"rdm_penalty_anneal_iters": 2}),
     ("ERMPlusPlus", {"linear_steps": 1}), ("Transfer", {"d_steps_per_g": 2}), ("URM", {}), ("ADRMX", {})],
)
def test_resuming_from_state_dict_continues_identically(name, overrides, monkeypatch):
    monkeypatch.setattr(ERMPlusPlus, "AVERAGE_START", 3)
    original = build(name, lr=0.01, **overrides)
    for step in range(2):
        original.update(batch(seed=step))
    resumed = build(name, seed=1, lr=0.01, **overrides)
    resumed.load_state_dict(copy.deepcopy(original.state_dict()))
    for mine, theirs in zip(resumed.optimizers(), original.optimizers()):
        mine.load_state_dict(copy.deepcopy(theirs.state_dict()))
    for step in range(2, 5):
        torch.manual_seed(step)
        expected = original.update(batch(seed=step))
        torch.manual_seed(step)
        got = resumed.update(batch(seed=step))
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], msg=f"{key} at step {step}")


# ------------------------------------------------------------------ hparam draws
# DomainBed's registry: algorithm -> (dataset, hparams_seed) -> values of KEYS[algorithm]
# (hparams_seed 0: default_hparams). CondCAD shares CAD's block. DomainBed's defaults
# eqrm_burnin_iters = 2500 and urm_discriminator_label_smoothing = 0 are ints; dgsamp
# keeps them floats, the type of their draws.
KEYS = {
    "CAD": ("lmbda", "temperature", "is_normalized", "is_project", "is_flipped"),
    "Transfer": ("t_lambda", "delta", "d_steps_per_g", "weight_decay_d", "gda", "beta1", "lr_d"),
    "EQRM": ("eqrm_quantile", "eqrm_burnin_iters", "eqrm_lr"),
    "RDM": ("rdm_lambda", "rdm_penalty_anneal_iters", "variance_weight", "rdm_lr", "batch_size"),
    "URM": (
        "urm", "urm_adv_lambda", "urm_discriminator_label_smoothing", "urm_discriminator_optimizer",
        "urm_discriminator_hidden_layers", "urm_generator_output", "urm_discriminator_lr",
    ),
    "ERMPlusPlus": ("linear_lr", "linear_steps", "lars"),
    "ADRMX": (
        "cnt_lambda", "dclf_lambda", "disc_lambda", "rmxd_lambda", "d_steps_per_g_step", "beta1",
        "mlp_width", "mlp_depth", "mlp_dropout", "lr",
    ),
}
DOMAINBED = {
    "CAD": {
        ("ColoredMNIST", 0): (0.1, 0.1, False, False, True),
        ("ColoredMNIST", 1): (0.1, 0.05, False, False, True),
        ("ColoredMNIST", 2): (10.0, 0.05, False, False, True),
        ("PACS", 0): (0.1, 0.1, False, False, True),
        ("PACS", 1): (0.1, 0.05, False, False, True),
        ("PACS", 2): (10.0, 0.05, False, False, True),
        ("DomainNet", 1): (0.1, 0.05, False, False, True),
        ("DomainNet", 2): (10.0, 0.05, False, False, True),
    },
    "Transfer": {
        ("ColoredMNIST", 0): (1.0, 2.0, 10, 0.0, False, 0.5, 0.001),
        ("ColoredMNIST", 1): (0.26535225943004515, 2.702212143805776, 1, 0.00010096814830489473, True, 0.5, 6.700771289296927e-05),
        ("ColoredMNIST", 2): (5.089108187638736, 2.3521685892612245, 2, 0.004188460570199925, True, 0.5, 6.269632842201235e-05),
        ("PACS", 0): (1.0, 2.0, 10, 0.0, False, 0.5, 0.001),
        ("PACS", 1): (0.26535225943004515, 2.702212143805776, 1, 0.00010096814830489473, True, 0.5, 6.700771289296927e-05),
        ("PACS", 2): (5.089108187638736, 2.3521685892612245, 2, 0.004188460570199925, True, 0.5, 6.269632842201235e-05),
    },
    "EQRM": {
        ("ColoredMNIST", 0): (0.75, 2500, 1e-06),
        ("ColoredMNIST", 1): (0.7335553271795177, 423.2761238000087, 4.377815305398272e-06),
        ("ColoredMNIST", 2): (0.6663353715339043, 467.39317410840124, 8.013188299579912e-07),
        ("PACS", 0): (0.75, 2500, 1e-06),
        ("PACS", 1): (0.7335553271795177, 423.2761238000087, 4.377815305398272e-06),
        ("PACS", 2): (0.6663353715339043, 467.39317410840124, 8.013188299579912e-07),
    },
    "RDM": {
        ("ColoredMNIST", 0): (5.0, 1500, 0.004, 1.5e-05, 64),
        ("ColoredMNIST", 1): (9.313185094706313, 1092, 0.004685630281242425, 1.5055122785774706e-05, 372),
        ("ColoredMNIST", 2): (4.73581064135701, 969, 0.006969174961934709, 1.985627108877548e-05, 126),
        ("PACS", 0): (5.0, 1500, 0.004, 1.5e-05, 88),
        ("PACS", 1): (9.375622813369375, 1092, 0.004685630281242425, 1.5055122785774706e-05, 97),
        ("PACS", 2): (5.214373310324555, 969, 0.006969174961934709, 1.985627108877548e-05, 89),
        ("DomainNet", 0): (0.5, 2400, 0.0, 1.5e-05, 40),
        ("DomainNet", 1): (0.9375622813369375, 1730, 0.0, 1.5055122785774706e-05, 57),
        ("DomainNet", 2): (0.5214373310324555, 1633, 0.0, 1.985627108877548e-05, 49),
        ("TerraIncognita", 0): (5.0, 1500, 0.0, 1.5e-05, 40),
        ("TerraIncognita", 1): (9.375622813369375, 1092, 0.0, 1.5055122785774706e-05, 57),
        ("TerraIncognita", 2): (5.214373310324555, 969, 0.0, 1.985627108877548e-05, 49),
        ("OfficeHome", 0): (5.0, 1500, 0.0, 1.5e-05, 88),
        ("OfficeHome", 1): (9.313185094706313, 1092, 0.0, 1.5055122785774706e-05, 97),
        ("OfficeHome", 2): (4.73581064135701, 969, 0.0, 1.985627108877548e-05, 89),
    },
    "URM": {
        ("ColoredMNIST", 0): ("adversarial", 0.1, 0, "adam", 1, "tanh", 0.001),
        ("ColoredMNIST", 1): ("adversarial", 0.15952849736568256, 0.0, "adam", 1, "relu", 0.00023824488158279828),
        ("ColoredMNIST", 2): ("adversarial", 0.10490906143755695, 0.0, "adam", 1, "tanh", 2.4360576369499922e-05),
        ("PACS", 0): ("adversarial", 0.1, 0, "adam", 1, "tanh", 5e-05),
        ("PACS", 1): ("adversarial", 0.15952849736568256, 0.0, "adam", 1, "relu", 2.557217597200596e-05),
        ("PACS", 2): ("adversarial", 0.10490906143755695, 0.0, "adam", 1, "tanh", 4.6239770467284755e-06),
    },
    "ERMPlusPlus": {
        ("ColoredMNIST", 0): (5e-05, 500, False),
        ("ColoredMNIST", 1): (2.7696523567489467e-05, 500, False),
        ("PACS", 0): (5e-05, 500, False),
        ("PACS", 1): (2.7696523567489467e-05, 500, False),
        ("PACS", 2): (1.1039970429388095e-05, 500, False),
    },
    "ADRMX": {  # DomainBed draws mlp_dropout as the integer 0 (r.choice([0])); dgsamp: 0.0
        ("ColoredMNIST", 0): (1.0, 1.0, 0.75, 1.0, 2, 0.5, 256, 9, 0.0, 0.003),
        ("ColoredMNIST", 1): (1.0, 1.0, 0.75, 1.0, 2, 0.5, 256, 9, 0, 0.001),
        ("ColoredMNIST", 2): (1.0, 1.0, 0.75, 1.0, 2, 0.5, 256, 10, 0, 0.0005),
        ("PACS", 0): (1.0, 1.0, 0.75, 1.0, 2, 0.5, 256, 9, 0.0, 3e-05),
        ("PACS", 1): (1.0, 1.0, 0.75, 1.0, 2, 0.5, 256, 9, 0, 3e-05),
        ("PACS", 2): (1.0, 1.0, 0.75, 1.0, 2, 0.5, 256, 10, 0, 2e-05),
    },
}
CASES = [
    pytest.param(name, dataset, seed, id=f"{name}-{dataset}-{seed}")
    for block, table in DOMAINBED.items()
    for (dataset, seed) in table
    for name in ((block, "CondCAD") if block == "CAD" else (block,))
]


@pytest.mark.parametrize(("name", "dataset", "hparams_seed"), CASES)
def test_hparams_equal_domainbeds(name, dataset, hparams_seed):
    block = "CAD" if name == "CondCAD" else name
    small = DATASETS.get(dataset).SMALL_IMAGES
    drawn = resolve_hparams(ALGORITHMS.get(name), small, hparams_seed, trial_seed=0, dataset=dataset)
    got = tuple(drawn[key] for key in KEYS[block])
    expected = DOMAINBED[block][dataset, hparams_seed]
    assert got == expected
    if hparams_seed > 0:
        integer_zero = {i for i, key in enumerate(KEYS[block]) if block == "ADRMX" and key == "mlp_dropout"}
        types = [(type(v), type(w)) for i, (v, w) in enumerate(zip(got, expected)) if i not in integer_zero]
        assert all(mine is theirs for mine, theirs in types)
