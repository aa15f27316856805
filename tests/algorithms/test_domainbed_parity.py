"""DANN / CDANN against DomainBed's maths and hparam draws, on cases checked by hand.

The updates run on a tiny linear featurizer (x[N, 3] -> z[N, 4]), K = 3 classes, S = 2
source domains and a 2-layer discriminator (width 5, no dropout). Every expected loss is
written out below from the formulas of DomainBed's ``AbstractDANN.update``
(domainbed/algorithms.py), independently of dgsamp's code:

    z = x W_fᵀ + b_f                      u = z (DANN) or z + E[y] (CDANN)
    a = u W_1ᵀ + b_1,  o = ReLU(a) W_2ᵀ + b_2 (first S, or S + 1 in DA, columns)
    CE_i = logsumexp(o_i) − o_{i, d_i}
    L_dom = mean_i CE_i (DANN),  Σ_i CE_i / (n_{y_i} (max y + 1)) (CDANN)
    g_i = ∂CE_i/∂u_i = ((softmax(o_i) − e_{d_i}) W_2) ⊙ 1[a_i > 0] W_1   (closed form)
    R = mean_i ‖g_i‖²,  L_adv = L_dom + ρ R
    discriminator step: ∇_h L_adv;  generator step: ∇_{f,g} (L_cls − λ L_adv)

and the expected gradients are autograd's of these hand-written scalars. The hparam draws
are literal numbers computed with DomainBed's registry (domainbed/hparams_registry.py,
``random_hparams(alg, dataset, misc.seed_hash(hparams_seed, trial_seed))``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgsamp.algorithms.base import make_classifier
from dgsamp.algorithms.cdann import class_balance_weights
from dgsamp.backbones.factory import TimmFeaturizer
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, DATASETS, create_algorithm

NUM_CLASSES, NUM_DOMAINS, D_IN, D = 3, 2, 3, 4
LR_D, LR_G = 0.01, 0.02


class LinearFeaturizer(nn.Linear):
    """z = x W_fᵀ + b_f, ``x [N, 3] -> z [N, 4]``."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__(D_IN, D)


def build(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    hparams = {
        "lr_d": LR_D, "lr_g": LR_G, "beta1": 0.5, "mlp_width": 5, "mlp_depth": 2,
        "mlp_dropout": 0.0, "lambda": 0.7, "grad_penalty": 0.0, "d_steps_per_g_step": 1,
        **overrides,
    }
    resolved = resolve_hparams(ALGORITHMS.get(name), False, 0, hparams)
    algorithm = create_algorithm(name, LinearFeaturizer(), NUM_CLASSES, NUM_DOMAINS, resolved)
    return algorithm.train()


def batch(labels: tuple[list[int], list[int]], seed: int = 1) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(len(y), D_IN, generator=generator), torch.tensor(y)) for y in labels]


def snapshot(algorithm) -> dict[str, Tensor]:
    """Leaf copies of every parameter, named as in ``named_parameters``."""
    return {k: p.detach().clone().requires_grad_() for k, p in algorithm.named_parameters()}


def expected(
    p: dict[str, Tensor], minibatches, conditional: bool, rho: float, lam: float,
    targets: Tensor | None = None,
) -> dict[str, Tensor]:
    """DomainBed's losses, written out on the parameter copies ``p`` (see module docstring)."""
    x = torch.cat([xb for xb, _ in minibatches])
    y = torch.cat([yb for _, yb in minibatches])
    d = torch.cat([torch.full((len(yb),), i) for i, (_, yb) in enumerate(minibatches)])
    n_out = NUM_DOMAINS
    if targets is not None:  # DA: targets get domain S and their predicted class
        x = torch.cat([x, targets])
        d = torch.cat([d, torch.full((len(targets),), NUM_DOMAINS)])
        n_out += 1
    z = x @ p["featurizer.weight"].T + p["featurizer.bias"]
    class_logits = z @ p["classifier.weight"].T + p["classifier.bias"]
    n_src = len(y)
    ce_cls = torch.logsumexp(class_logits[:n_src], 1) - class_logits[:n_src].gather(1, y[:, None])[:, 0]
    class_loss = ce_cls.mean()
    y_all = torch.cat([y, class_logits[n_src:].detach().argmax(1)])
    u = z + p["class_embeddings.weight"][y_all] if conditional else z
    w1, b1 = p["discriminator.layers.0.weight"], p["discriminator.layers.0.bias"]
    w2, b2 = p["discriminator.layers.3.weight"][:n_out], p["discriminator.layers.3.bias"][:n_out]
    a = u @ w1.T + b1
    active = (a > 0).to(a.dtype)
    o = (a * active) @ w2.T + b2
    ce = torch.logsumexp(o, 1) - o.gather(1, d[:, None])[:, 0]
    if conditional:
        counts = torch.stack([(y_all == c).sum() for c in range(NUM_CLASSES)]).to(o.dtype)
        weights = 1.0 / (counts[y_all] * (int(y_all.max()) + 1))
        domain_loss = (weights * ce).sum()
    else:
        domain_loss = ce.mean()
    g = ((torch.softmax(o, 1) - F.one_hot(d, n_out).to(o.dtype)) @ w2) * active @ w1
    penalty = g.pow(2).sum(1).mean()
    adversarial = domain_loss + rho * penalty
    return {
        "class_loss": class_loss, "domain_loss": domain_loss, "grad_penalty": penalty,
        "disc_loss": adversarial, "loss": class_loss - lam * adversarial,
    }


GENERATOR = ("featurizer.weight", "featurizer.bias", "classifier.weight", "classifier.bias")
DISCRIMINATOR = tuple(
    f"discriminator.layers.{i}.{kind}" for i in (0, 3) for kind in ("weight", "bias")
)


def assert_grads(algorithm, names, expected_grads) -> None:
    params = dict(algorithm.named_parameters())
    for name, grad in zip(names, expected_grads):
        torch.testing.assert_close(params[name].grad, grad, rtol=1e-5, atol=1e-7, msg=name)


def assert_adam_first_step(before: dict[str, Tensor], algorithm, names, lr: float) -> None:
    """First Adam step: m̂ = g, v̂ = g², so θ ← θ − lr · g / (|g| + 1e-8)."""
    params = dict(algorithm.named_parameters())
    for name in names:
        grad = params[name].grad
        torch.testing.assert_close(
            params[name].detach(), before[name].detach() - lr * grad / (grad.abs() + 1e-8),
            rtol=1e-5, atol=1e-6, msg=name,
        )


def assert_unchanged(before: dict[str, Tensor], algorithm, names) -> None:
    params = dict(algorithm.named_parameters())
    for name in names:
        assert torch.equal(params[name].detach(), before[name].detach()), name


LABELS = ([0, 1, 2, 1], [2, 0, 1])
ABSENT_BELOW_MAX = ([0, 2, 2], [2, 0])  # class 1 missing: normaliser max y + 1 = 3, not 2


# ------------------------------------------------------------------ generator step
@pytest.mark.parametrize("rho", [0.0, 0.3], ids=["no-penalty", "penalty"])
@pytest.mark.parametrize("name", ["DANN", "CDANN"])
def test_generator_step_matches_domainbed(name, rho):
    algorithm = build(name, grad_penalty=rho)
    minibatches = batch(LABELS)
    before = snapshot(algorithm)
    want = expected(before, minibatches, name == "CDANN", rho, 0.7)
    losses = algorithm.update(minibatches)  # step 1 with k = 1: 1 mod 2 = 1, not < 1: generator
    for key in ("loss", "class_loss", "disc_loss"):
        torch.testing.assert_close(losses[key], want[key].detach(), msg=key)
    # ρ = 0: dgsamp skips R (DomainBed computes it and multiplies it by 0) and reports 0
    penalty = want["grad_penalty"].detach() if rho > 0 else torch.tensor(0.0)
    torch.testing.assert_close(losses["grad_penalty"], penalty)
    grads = torch.autograd.grad(want["loss"], [before[k] for k in GENERATOR])
    assert_grads(algorithm, GENERATOR, grads)
    assert_adam_first_step(before, algorithm, GENERATOR, LR_G)
    names = DISCRIMINATOR + (("class_embeddings.weight",) if name == "CDANN" else ())
    assert_unchanged(before, algorithm, names)


# -------------------------------------------------------------- discriminator step
@pytest.mark.parametrize("rho", [0.0, 0.3], ids=["no-penalty", "penalty"])
@pytest.mark.parametrize("name", ["DANN", "CDANN"])
def test_discriminator_step_matches_domainbed(name, rho):
    algorithm = build(name, grad_penalty=rho)
    algorithm.steps.increment()  # the next update is step 2: 2 mod 2 = 0 < 1, discriminator
    minibatches = batch(LABELS)
    before = snapshot(algorithm)
    want = expected(before, minibatches, name == "CDANN", rho, 0.7)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["disc_loss"], want["disc_loss"].detach())
    if rho > 0:
        torch.testing.assert_close(losses["grad_penalty"], want["grad_penalty"].detach())
    names = DISCRIMINATOR + (("class_embeddings.weight",) if name == "CDANN" else ())
    grads = torch.autograd.grad(want["disc_loss"], [before[k] for k in names], retain_graph=True)
    assert_grads(algorithm, names, grads)
    assert_adam_first_step(before, algorithm, names, LR_D)
    assert_unchanged(before, algorithm, GENERATOR)
    if name == "CDANN" and rho > 0:  # the penalty reaches E through u = z + E[y]
        plain = torch.autograd.grad(want["domain_loss"], before["class_embeddings.weight"])[0]
        assert not torch.allclose(grads[-1], plain)


def test_gradient_penalty_enters_the_generator_loss_as_domainbed_does():
    """DomainBed adds ρR to disc_loss before gen_loss = L_cls − λ disc_loss: the featurizer's
    gradient carries −λρ ∂R/∂θ_f (second order through the discriminator's input)."""
    minibatches = batch(LABELS)
    with_penalty, without = build("DANN", grad_penalty=0.3), build("DANN", grad_penalty=0.0)
    before = snapshot(with_penalty)
    want = expected(before, minibatches, False, 0.3, 0.7)
    with_penalty.update(minibatches)
    without.update(minibatches)
    (penalty_grad,) = torch.autograd.grad(want["grad_penalty"], before["featurizer.weight"])
    assert penalty_grad.abs().sum() > 0
    difference = with_penalty.featurizer.weight.grad - without.featurizer.weight.grad
    torch.testing.assert_close(difference, -0.7 * 0.3 * penalty_grad, rtol=1e-4, atol=1e-7)


def test_grl_mode_descends_the_same_objectives_in_one_step():
    """grl: h gets ∇ L_adv, f gets ∇ (L_cls − λ L_adv), penalty included, in one step."""
    algorithm = build("CDANN", grad_penalty=0.3, dann_mode="grl")
    minibatches = batch(LABELS)
    before = snapshot(algorithm)
    want = expected(before, minibatches, True, 0.3, 0.7)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["loss"], want["loss"].detach())
    generator = torch.autograd.grad(want["loss"], [before[k] for k in GENERATOR], retain_graph=True)
    assert_grads(algorithm, GENERATOR, generator)
    names = (*DISCRIMINATOR, "class_embeddings.weight")
    assert_grads(algorithm, names, torch.autograd.grad(want["disc_loss"], [before[k] for k in names]))


def test_cdann_domain_adaptation_generator_step():
    """Targets: domain S, predicted class in E[y] and in the class-balance weights."""
    algorithm = build("CDANN", grad_penalty=0.3)
    minibatches = batch(LABELS)
    targets = torch.randn(4, D_IN, generator=torch.Generator().manual_seed(5))
    before = snapshot(algorithm)
    want = expected(before, minibatches, True, 0.3, 0.7, targets=targets)
    losses = algorithm.update(minibatches, [targets])
    torch.testing.assert_close(losses["loss"], want["loss"].detach())
    assert_grads(algorithm, GENERATOR, torch.autograd.grad(want["loss"], [before[k] for k in GENERATOR]))


# ------------------------------------------------------------------- class balance
def test_class_balance_divides_by_the_largest_label_plus_one():
    """DomainBed: y_counts = one_hot(y).sum(0) has max(y) + 1 entries, absent ones 0."""
    y = torch.tensor([0, 2, 2, 2, 0])  # n = (2, 0, 3); normaliser 3
    torch.testing.assert_close(
        class_balance_weights(y, NUM_CLASSES), torch.tensor([1 / 6, 1 / 9, 1 / 9, 1 / 9, 1 / 6])
    )
    y = torch.tensor([0, 1, 1, 1, 0])  # largest class absent: normaliser 2, weights sum to 1
    torch.testing.assert_close(
        class_balance_weights(y, NUM_CLASSES), torch.tensor([1 / 4, 1 / 6, 1 / 6, 1 / 6, 1 / 4])
    )
    y = torch.tensor([1, 1])
    torch.testing.assert_close(class_balance_weights(y, 5), torch.tensor([1 / 4, 1 / 4]))


@pytest.mark.parametrize("rho", [0.0, 0.3], ids=["no-penalty", "penalty"])
def test_cdann_update_with_a_class_absent_from_the_batch(rho):
    algorithm = build("CDANN", grad_penalty=rho)
    algorithm.steps.increment()  # discriminator step
    minibatches = batch(ABSENT_BELOW_MAX)
    before = snapshot(algorithm)
    want = expected(before, minibatches, True, rho, 0.7)
    # the weights, by hand: classes 0, 2 have 2, 3 examples; max label + 1 = 3
    x = torch.cat([xb for xb, _ in minibatches]) @ before["featurizer.weight"].T + before["featurizer.bias"]
    u = x + before["class_embeddings.weight"][torch.tensor([0, 2, 2, 2, 0])]
    o = algorithm.discriminator(u)[:, :NUM_DOMAINS]
    ce = F.cross_entropy(o, torch.tensor([0, 0, 0, 1, 1]), reduction="none")
    by_hand = (ce * torch.tensor([1 / 6, 1 / 9, 1 / 9, 1 / 9, 1 / 6])).sum()
    torch.testing.assert_close(want["domain_loss"], by_hand)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["disc_loss"], want["disc_loss"].detach())
    names = (*DISCRIMINATOR, "class_embeddings.weight")
    assert_grads(algorithm, names, torch.autograd.grad(want["disc_loss"], [before[k] for k in names]))


# ------------------------------------------------------------------ hparam draws
KEYS = (
    "lambda", "weight_decay_d", "d_steps_per_g_step", "grad_penalty", "beta1", "mlp_width",
    "mlp_depth", "mlp_dropout", "lr", "weight_decay", "batch_size", "lr_g", "lr_d",
    "weight_decay_g", "resnet_dropout", "nonlinear_classifier",
)
# DomainBed's domainbed/hparams_registry.py, random_hparams("DANN" or "CDANN", dataset,
# misc.seed_hash(hparams_seed, trial_seed=0)), values in the order of KEYS.
DOMAINBED_DRAWS = {
    ("ColoredMNIST", 1): (3.500347568342894, 0.00010096814830489473, 7, 3.044417571888086, 0.5, 255, 4, 0.5, 0.00011906162909279594, 0.0, 372, 0.0015950807441571075, 6.700771289296927e-05, 0.0, 0.5, False),
    ("ColoredMNIST", 2): (4.897901613852408, 0.004188460570199925, 4, 0.01335094495658484, 0.5, 497, 5, 0.1, 0.0003207929136369226, 0.0, 126, 0.0003449196897514815, 6.269632842201235e-05, 0.0, 0.5, False),
    ("ColoredMNIST", 3): (5.799279554067501, 0.0007192670864814079, 1, 0.014671596537776381, 0.0, 829, 3, 0.1, 0.00040753017105436845, 0.0, 259, 0.0004352976370350016, 0.0014762022871228908, 0.0, 0.0, False),
    ("PACS", 1): (3.500347568342894, 0.00010096814830489473, 7, 3.044417571888086, 0.5, 255, 4, 0.5, 2.7028930742148706e-05, 0.00044832883881609976, 39, 0.00018927227584350511, 1.7562793545765942e-05, 0.003716490191663224, 0.5, False),
    ("PACS", 2): (4.897901613852408, 0.004188460570199925, 4, 0.01335094495658484, 0.5, 497, 5, 0.1, 5.6841898471378446e-05, 0.005100223533962902, 25, 6.001896336251345e-05, 1.6708273725848326e-05, 0.001945932555373509, 0.5, False),
    ("PACS", 3): (5.799279554067501, 0.0007192670864814079, 1, 0.014671596537776381, 0.0, 829, 3, 0.1, 6.801736841150391e-05, 1.046949588651311e-05, 34, 7.146439677737871e-05, 0.00017859093269619145, 0.0022082825455376582, 0.0, False),
    ("DomainNet", 1): (3.500347568342894, 0.00010096814830489473, 7, 3.044417571888086, 0.5, 255, 4, 0.5, 2.7028930742148706e-05, 0.00044832883881609976, 28, 0.00018927227584350511, 1.7562793545765942e-05, 0.003716490191663224, 0.5, False),
    ("DomainNet", 2): (4.897901613852408, 0.004188460570199925, 4, 0.01335094495658484, 0.5, 497, 5, 0.1, 5.6841898471378446e-05, 0.005100223533962902, 20, 6.001896336251345e-05, 1.6708273725848326e-05, 0.001945932555373509, 0.5, False),
    ("DomainNet", 3): (5.799279554067501, 0.0007192670864814079, 1, 0.014671596537776381, 0.0, 829, 3, 0.1, 6.801736841150391e-05, 1.046949588651311e-05, 25, 7.146439677737871e-05, 0.00017859093269619145, 0.0022082825455376582, 0.0, False),
}
# DomainBed's default_hparams (hparams_seed 0), same order.
DOMAINBED_DEFAULTS = {
    "ColoredMNIST": (1.0, 0.0, 1, 0.0, 0.5, 256, 3, 0.0, 1e-3, 0.0, 64, 1e-3, 1e-3, 0.0, 0.0, False),
    "PACS": (1.0, 0.0, 1, 0.0, 0.5, 256, 3, 0.0, 5e-5, 0.0, 32, 5e-5, 5e-5, 0.0, 0.0, False),
    "DomainNet": (1.0, 0.0, 1, 0.0, 0.5, 256, 3, 0.0, 5e-5, 0.0, 32, 5e-5, 5e-5, 0.0, 0.0, False),
}


def resolve_for(algorithm: str, dataset: str, hparams_seed: int) -> dict:
    small = DATASETS.get(dataset).SMALL_IMAGES
    return resolve_hparams(ALGORITHMS.get(algorithm), small, hparams_seed, trial_seed=0, dataset=dataset)


@pytest.mark.parametrize("algorithm", ["DANN", "CDANN"])
@pytest.mark.parametrize(("dataset", "hparams_seed"), sorted(DOMAINBED_DRAWS))
def test_hparam_draws_equal_domainbeds(algorithm, dataset, hparams_seed):
    drawn = resolve_for(algorithm, dataset, hparams_seed)
    got = tuple(drawn[k] for k in KEYS)
    assert got == DOMAINBED_DRAWS[dataset, hparams_seed]
    assert [type(v) for v in got] == [type(v) for v in DOMAINBED_DRAWS[dataset, hparams_seed]]


@pytest.mark.parametrize("dataset", sorted(DOMAINBED_DEFAULTS))
def test_hparam_defaults_equal_domainbeds(dataset):
    defaults = resolve_for("DANN", dataset, 0)
    assert tuple(defaults[k] for k in KEYS) == DOMAINBED_DEFAULTS[dataset]


def test_domainnet_batch_size_draws_from_its_own_range():
    """2^U(3, 5) on DomainNet, 2^U(3, 5.5) on other image datasets (same RandomState)."""
    erm = ALGORITHMS.get("ERM")
    for seed in range(1, 30):
        domainnet = resolve_hparams(erm, False, seed, dataset="DomainNet")["batch_size"]
        generic = resolve_hparams(erm, False, seed)["batch_size"]
        assert 8 <= domainnet < 32 and domainnet <= generic
    assert resolve_hparams(erm, False, 0, dataset="DomainNet")["batch_size"] == 32


# ------------------------------------------------------- classifier and dropout
def test_nonlinear_classifier_is_domainbeds():
    """networks.Classifier(D, K, is_nonlinear=True): D -> D//2 -> D//4 -> K with ReLUs."""
    classifier = make_classifier(8, 3, nonlinear=True)
    shapes = [(m.in_features, m.out_features) for m in classifier if isinstance(m, nn.Linear)]
    assert shapes == [(8, 4), (4, 2), (2, 3)]
    assert [type(m) for m in classifier] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    assert isinstance(make_classifier(8, 3), nn.Linear)
    algorithm = build("DANN", nonlinear_classifier=True)
    assert isinstance(algorithm.classifier, nn.Sequential)
    assert algorithm.predict(torch.randn(2, D_IN)).shape == (2, NUM_CLASSES)
    assert isinstance(build("DANN").classifier, nn.Linear)


class PooledFeatures(nn.Module):
    """Stands in for a timm model: ``num_features`` and pooled features of ones."""

    num_features = 64

    def forward(self, x: Tensor) -> Tensor:
        return torch.ones(x.shape[0], self.num_features)


def test_resnet_dropout_drops_the_timm_featurizers_pooled_features():
    featurizer = TimmFeaturizer(PooledFeatures())
    hparams = resolve_hparams(ALGORITHMS.get("ERM"), False, 0, {"resnet_dropout": 0.5})
    algorithm = create_algorithm("ERM", featurizer, NUM_CLASSES, NUM_DOMAINS, hparams)
    assert featurizer.feature_dropout.p == 0.5
    torch.manual_seed(0)
    z = algorithm.train().featurizer(torch.zeros(8, 3, 4, 4))
    assert set(z.unique().tolist()) == {0.0, 2.0}  # inverted dropout: kept units × 1/(1 − p)
    assert torch.equal(algorithm.eval().featurizer(torch.zeros(8, 3, 4, 4)), torch.ones(8, 64))
    default = TimmFeaturizer(PooledFeatures())
    create_algorithm("ERM", default, NUM_CLASSES, NUM_DOMAINS, resolve_hparams(ALGORITHMS.get("ERM"), False, 0))
    assert default.feature_dropout.p == 0.0
    assert torch.equal(default.train()(torch.zeros(2, 3, 4, 4)), torch.ones(2, 64))
