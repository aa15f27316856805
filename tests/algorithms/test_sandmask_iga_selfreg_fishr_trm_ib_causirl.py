"""SANDMask, IGA, SelfReg, Fishr, TRM, IB_ERM, IB_IRM, CausIRL_CORAL, CausIRL_MMD.

Each algorithm's mechanism is checked against an independent computation written out in
this file from DomainBed's ``domainbed/algorithms.py`` (per-domain forward passes,
per-example autograd loops, explicit Hessians), on a tiny linear featurizer
(x [N, 5] -> z [N, 4]), K = 3 classes, S = 3 domains. The hparam draws are literal numbers
from DomainBed's own registry (``random_hparams(alg, dataset, misc.seed_hash(seed, 0))``).
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, autograd, nn

from dgsamp.algorithms.coral import coral_discrepancy
from dgsamp.algorithms.fishr import per_example_gradients
from dgsamp.algorithms.ib_erm import ib_penalty
from dgsamp.algorithms.mmd import KERNEL_BANDWIDTHS, mmd_discrepancy
from dgsamp.algorithms.sandmask import masked_mean_gradient, sand_mask
from dgsamp.algorithms.selfreg import class_segments, within_class_permutations
from dgsamp.algorithms.trm import neumann_inverse_hvp
from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, create_algorithm

D_IN, D, K, S = 5, 4, 3, 3
LABELS = ([0, 1, 2, 1, 0, 2], [2, 0, 1, 1, 2], [1, 2, 0, 0, 1, 2, 0])
MINE = ("SANDMask", "IGA", "SelfReg", "Fishr", "TRM", "IB_ERM", "IB_IRM", "CausIRL_CORAL", "CausIRL_MMD")


class TinyFeaturizer(nn.Linear):
    """z = x Wᵀ + b, ``x [N, 5] -> z [N, 4]``."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__(D_IN, D)


def build(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    hparams = resolve_hparams(ALGORITHMS.get(name), False, 0, {"lr": 1e-2, **overrides})
    return create_algorithm(name, TinyFeaturizer(), K, S, hparams).train()


def batches(labels=LABELS, seed: int = 1) -> list[tuple[Tensor, Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(len(y), D_IN, generator=generator), torch.tensor(y)) for y in labels]


def flat(tensors) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def adam_steps(algorithm) -> set[int]:
    return {int(state["step"]) for state in algorithm.optimizer.state.values()}


# ------------------------------------------------------------------ hparam draws
# DomainBed's draws of each algorithm's own hparams for hparams_seed 1 and 2 (trial_seed 0);
# they are the same for ColoredMNIST and PACS (no dataset-specific ranges).
DOMAINBED_DRAWS = {
    "SANDMask": {1: {"tau": 0.3934322275531539, "k": 1109.9255081776537},
                 2: {"tau": 0.9279779466604041, "k": 35969.756812328735}},
    "IGA": {1: {"penalty": 2400.017030810722}, 2: {"penalty": 1366.2264491895746}},
    "Fishr": {1: {"lambda": 809.251247284292, "penalty_anneal_iters": 4072, "ema": 0.9129082782560279},
              2: {"lambda": 1041.1361897826946, "penalty_anneal_iters": 1112, "ema": 0.9626854804302907}},
    "TRM": {1: {"cos_lambda": 2.2217779996347212e-05, "iters": 16, "groupdro_eta": 0.01297606872689568},
            2: {"cos_lambda": 0.00016702802878030182, "iters": 8, "groupdro_eta": 0.010738970103861833}},
    "IB_ERM": {1: {"ib_lambda": 2.661822006035993, "ib_penalty_anneal_iters": 1222},
               2: {"ib_lambda": 92801.8202459409, "ib_penalty_anneal_iters": 69}},
    "IB_IRM": {1: {"irm_lambda": 65030.52212762795, "irm_penalty_anneal_iters": 2,
                   "ib_lambda": 2.661822006035993, "ib_penalty_anneal_iters": 1222},
               2: {"irm_lambda": 15.27125896858225, "irm_penalty_anneal_iters": 1,
                   "ib_lambda": 92801.8202459409, "ib_penalty_anneal_iters": 69}},
    "CausIRL_CORAL": {1: {"mmd_gamma": 1.4227570299330277}, 2: {"mmd_gamma": 3.5146823420446407}},
    "CausIRL_MMD": {1: {"mmd_gamma": 1.4227570299330277}, 2: {"mmd_gamma": 3.5146823420446407}},
    "SelfReg": {1: {}, 2: {}},
}
DOMAINBED_DEFAULTS = {
    "SANDMask": {"tau": 1.0, "k": 10.0}, "IGA": {"penalty": 1000},
    "Fishr": {"lambda": 1000.0, "penalty_anneal_iters": 1500, "ema": 0.95},
    "TRM": {"cos_lambda": 1e-4, "iters": 200, "groupdro_eta": 1e-2},
    "IB_ERM": {"ib_lambda": 100.0, "ib_penalty_anneal_iters": 500},
    "IB_IRM": {"irm_lambda": 100.0, "irm_penalty_anneal_iters": 500, "ib_lambda": 100.0,
               "ib_penalty_anneal_iters": 500},
    "CausIRL_CORAL": {"mmd_gamma": 1.0}, "CausIRL_MMD": {"mmd_gamma": 1.0}, "SelfReg": {},
}


@pytest.mark.parametrize("small_images", [False, True], ids=["PACS", "ColoredMNIST"])
@pytest.mark.parametrize("name", MINE)
def test_hparams_equal_domainbeds(name, small_images):
    cls = ALGORITHMS.get(name)
    assert set(cls.HPARAMS) == set(DOMAINBED_DEFAULTS[name])
    assert {k: resolve_hparams(cls, small_images, 0)[k] for k in cls.HPARAMS} == DOMAINBED_DEFAULTS[name]
    for seed in (1, 2):
        drawn = resolve_hparams(cls, small_images, seed, trial_seed=0)
        want = DOMAINBED_DRAWS[name][seed]
        assert {k: drawn[k] for k in cls.HPARAMS} == want
        assert all(type(drawn[k]) is type(v) for k, v in want.items())


@pytest.mark.parametrize("name", MINE)
def test_paper_source_and_featurizer_passes_are_declared(name):
    cls = ALGORITHMS.get(name)
    assert "arXiv:" in cls.PAPER
    assert cls.SOURCE.startswith("DomainBed domainbed/algorithms.py @ 22002eaae419")
    # DomainBed calls the network once per domain in these, on the concatenation in the others
    per_domain = name in ("SANDMask", "IGA", "CausIRL_CORAL", "CausIRL_MMD")
    assert cls.PER_DOMAIN_PASSES is per_domain


# ------------------------------------------------------------------------- Fishr
def loop_gradients(classifier: nn.Module, z: Tensor, y: Tensor) -> Tensor:
    """[N, P] by one autograd call per example (create_graph), parameters in name order."""
    names = sorted(name for name, _ in classifier.named_parameters())
    params = dict(classifier.named_parameters())
    rows = []
    for i in range(z.shape[0]):
        loss = F.cross_entropy(classifier(z[i : i + 1]), y[i : i + 1])
        rows.append(flat(autograd.grad(loss, [params[n] for n in names], create_graph=True)))
    return torch.stack(rows)


def fishr_by_hand(grads: Tensor, sizes: list[int], previous: Tensor, ema: float):
    """(penalty, new moving average): biased variances, EMA with the 1/(1 − ema) correction."""
    variances = torch.stack([g.var(dim=0, unbiased=False) for g in grads.split(sizes)])
    average = ema * previous + (1 - ema) * variances
    smoothed = average / (1 - ema)
    centre = sum(smoothed[d] for d in range(len(sizes))) / len(sizes)
    penalty = sum(((smoothed[d] - centre) ** 2).mean() for d in range(len(sizes))) / len(sizes)
    return penalty, average


@pytest.mark.parametrize("nonlinear", [False, True], ids=["linear", "nonlinear"])
def test_fishr_per_example_gradients_equal_an_autograd_loop_in_value_and_gradient(nonlinear):
    torch.manual_seed(0)
    classifier = nn.Linear(8, K) if not nonlinear else nn.Sequential(
        nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, K)
    )
    z = torch.randn(7, 8, requires_grad=True)
    y = torch.randint(0, K, (7,))
    ours, theirs = per_example_gradients(classifier, z, y), loop_gradients(classifier, z, y)
    torch.testing.assert_close(ours, theirs)
    weights = torch.randn_like(ours)
    inputs = [z, *classifier.parameters()]
    for a, b in zip(autograd.grad((ours * weights).pow(2).sum(), inputs),
                    autograd.grad((theirs * weights).pow(2).sum(), inputs)):
        torch.testing.assert_close(a, b)
    detached = per_example_gradients(classifier, z, y, detach=True)
    assert not detached.requires_grad and torch.allclose(detached, ours)


def test_fishr_penalty_is_the_variance_of_per_example_gradients_with_the_ema():
    algorithm = build("Fishr", penalty_anneal_iters=2, **{"lambda": 10.0, "ema": 0.9})
    sizes = [len(y) for y in LABELS]
    previous = torch.zeros(S, D * K + K)
    for step in range(3):
        minibatches = batches(seed=step)
        f0, g0 = copy.deepcopy(algorithm.featurizer), copy.deepcopy(algorithm.classifier)
        x, y = torch.cat([x for x, _ in minibatches]), torch.cat([y for _, y in minibatches])
        z = f0(x)
        penalty, previous = fishr_by_hand(loop_gradients(g0, z, y), sizes, previous, 0.9)
        nll = F.cross_entropy(g0(z), y)
        losses = algorithm.update(minibatches)
        torch.testing.assert_close(losses["penalty"], penalty.detach())
        torch.testing.assert_close(algorithm.ema_variances, previous.detach())
        previous = previous.detach()
        if step < 2:  # annealing: β = 0, the objective is the CE
            assert torch.equal(losses["loss"], losses["class_loss"]) and adam_steps(algorithm) == {step + 1}
            continue
        # t = 2 = penalty_anneal_iters: β = λ, fresh Adam, and the penalty trains f and g
        torch.testing.assert_close(losses["loss"], (nll + 10.0 * penalty).detach())
        assert adam_steps(algorithm) == {1}
        want = autograd.grad(nll + 10.0 * penalty, [f0.weight, g0.weight])
        torch.testing.assert_close(algorithm.featurizer.weight.grad, want[0])
        torch.testing.assert_close(algorithm.classifier.weight.grad, want[1])
        plain = autograd.grad(F.cross_entropy(g0(f0(x)), y), f0.weight)[0]
        assert not torch.allclose(plain, want[0])


# ------------------------------------------------------------------------- IGA
def domain_gradients(featurizer, classifier, minibatches) -> tuple[list[Tensor], list[tuple]]:
    """Per-domain risks and their gradients, one forward pass per domain (as DomainBed)."""
    params = [*featurizer.parameters(), *classifier.parameters()]
    risks = [F.cross_entropy(classifier(featurizer(x)), y) for x, y in minibatches]
    return risks, [autograd.grad(r, params, create_graph=True) for r in risks]


def test_iga_penalty_vanishes_when_the_domains_agree():
    x, y = batches()[0]
    losses = build("IGA").update([(x, y)] * S)
    assert losses["penalty"].abs() < 1e-12
    assert torch.allclose(losses["loss"], losses["class_loss"])


PASSES = pytest.mark.parametrize("per_domain", [False, True], ids=["joint", "per-domain"])


@PASSES
def test_iga_penalty_and_gradient_equal_domainbeds(per_domain):
    algorithm = build("IGA", penalty=100.0)
    algorithm.per_domain_passes = per_domain
    minibatches = batches()
    f0, g0 = copy.deepcopy(algorithm.featurizer), copy.deepcopy(algorithm.classifier)
    risks, grads = domain_gradients(f0, g0, minibatches)
    mean_grad = [sum(g[p] for g in grads).detach() / S for p in range(len(grads[0]))]
    penalty = sum((g[p] - mean_grad[p]).pow(2).sum() for g in grads for p in range(len(mean_grad)))
    objective = sum(risks) / S + 100.0 * penalty
    losses = algorithm.update(minibatches)
    assert losses["penalty"] > 1e-4
    torch.testing.assert_close(losses["penalty"], penalty.detach())
    torch.testing.assert_close(losses["loss"], objective.detach())
    want = autograd.grad(objective, [*f0.parameters(), *g0.parameters()])
    got = [p.grad for p in [*algorithm.featurizer.parameters(), *algorithm.classifier.parameters()]]
    for a, b in zip(got, want):  # joint: one matmul over all domains, other rounding
        torch.testing.assert_close(a, b, rtol=1e-4 if not per_domain else 1.3e-6, atol=1e-5)


# --------------------------------------------------------------------- SANDMask
def test_sand_mask_follows_sign_agreement_and_tanh_on_hand_built_gradients():
    grads = torch.tensor([  # S = 3 domains, 5 entries
        [1.0, 1.0, 2.0, 0.5, 0.0],
        [2.0, -1.0, 2.0, 0.1, 0.0],
        [3.0, 2.0, 2.0, 0.3, 0.0],
    ])
    tau, k = 0.5, 0.1
    # entry 0: a = 1, σ² = 1 -> tanh(0.1 · 0.5); entry 1: a = 1/3 < τ -> 0;
    # entry 2: σ² = 0, a = 1 -> tanh(+inf) = 1; entry 3: a = 1, σ² = 0.04 -> tanh(1.25);
    # entry 4: all zero: a = 0 -> tanh(-inf) -> 0
    want = torch.tensor([math.tanh(0.05), 0.0, 1.0, math.tanh(0.1 / 0.04 * 0.5), 0.0])
    torch.testing.assert_close(sand_mask(grads, tau, k), want)
    mean = grads.mean(0)
    torch.testing.assert_close(masked_mean_gradient(grads, tau, k), want * mean / (1e-10 + want.mean()))
    # τ = 1: agreeing entries with σ² > 0 give tanh(0) = 0; σ² = 0 gives ∞ · 0 = NaN -> 1e-17
    torch.testing.assert_close(sand_mask(grads, 1.0, k), torch.tensor([0.0, 0.0, 1e-17, 0.0, 0.0]))
    # one domain: the variance is NaN -> 1e-17, agreement 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # var() of one row
        torch.testing.assert_close(sand_mask(grads[:1, :1], 0.5, 1e-17), torch.tensor([math.tanh(0.5)]))


@PASSES
def test_sandmask_steps_on_the_masked_mean_of_per_domain_gradients(per_domain):
    algorithm = build("SANDMask", tau=0.4, k=1.0)
    algorithm.per_domain_passes = per_domain
    minibatches = batches()
    f0, g0 = copy.deepcopy(algorithm.featurizer), copy.deepcopy(algorithm.classifier)
    _, grads = domain_gradients(f0, g0, minibatches)
    algorithm.update(minibatches)
    params = [*algorithm.featurizer.parameters(), *algorithm.classifier.parameters()]
    for p, per_domain in zip(params, zip(*grads)):
        g = torch.stack(per_domain).detach()
        agreement = g.sign().sum(0).abs() / S
        variance = ((g - g.mean(0)) ** 2).sum(0) / (S - 1)
        mask = torch.tanh(1.0 / variance * (agreement - 0.4)).clamp_min(0)
        torch.testing.assert_close(p.grad, mask * g.mean(0) / (1e-10 + mask.mean()))


def test_sandmask_at_domainbeds_default_tau_never_moves():
    algorithm = build("SANDMask")  # τ = 1
    before = copy.deepcopy(algorithm.state_dict())
    for seed in range(2):
        algorithm.update(batches(seed=seed))
    for key, value in algorithm.state_dict().items():
        assert torch.equal(value, before[key]), key


# ---------------------------------------------------------------------- SelfReg
def test_selfreg_class_segments_follow_domainbeds_scan():
    assert class_segments([0, 0, 1, 2, 2]) == [(0, 2), (2, 3), (3, 5)]
    assert class_segments([1, 1, 2]) == [(0, 0), (0, 2), (2, 3)]  # no class 0: empty first
    torch.manual_seed(0)
    first, second = within_class_permutations(class_segments([0, 0, 0, 1, 1, 2, 2, 2, 2]))
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    assert torch.equal(labels[first], labels) and torch.equal(labels[second], labels)
    assert sorted(first.tolist()) == list(range(9))


@pytest.mark.parametrize("labels", [LABELS, ([1, 2, 1], [2, 1, 2, 1], [1, 1, 2])], ids=["all", "no-0"])
def test_selfreg_terms_equal_domainbeds(labels):
    algorithm = build("SelfReg")
    minibatches = batches(labels)
    f0, c0, g0 = (copy.deepcopy(m) for m in (algorithm.featurizer, algorithm.cdpl, algorithm.classifier))
    projection_before = copy.deepcopy(algorithm.cdpl.state_dict())
    np.random.seed(5)
    torch.manual_seed(5)
    losses = algorithm.update(minibatches)
    # by hand, DomainBed's order: λ, sort, forward, then per class randperm(n) twice
    np.random.seed(5)
    torch.manual_seed(5)
    lam = np.random.beta(0.5, 0.5)
    y = torch.cat([y for _, y in minibatches])
    y, order = torch.sort(y)
    x = torch.cat([x for x, _ in minibatches])[order]
    z = f0(x)
    p, o = c0(z), g0(z)
    perm_a, perm_b = torch.zeros(len(y), dtype=torch.long), torch.zeros(len(y), dtype=torch.long)
    start, previous, ends = 0, 0, []
    for i, label in enumerate(y.tolist()):
        if label != previous:
            ends.append(i)
            previous = label
    for end in [*ends, len(y)]:
        perm_a[start:end] = torch.randperm(end - start) + start
        perm_b[start:end] = torch.randperm(end - start) + start
        start = end
    mse = lambda a, b: ((a - b) ** 2).mean()  # noqa: E731
    terms = {
        "ind_logit": mse(o, o[perm_a]),
        "hdl_logit": mse(o, lam * o[perm_a] + (1 - lam) * o[perm_b]),
        "ind_feat": 0.3 * mse(z, p[perm_a]),
        "hdl_feat": 0.3 * mse(z, lam * p[perm_a] + (1 - lam) * p[perm_b]),
    }
    ce = F.cross_entropy(o, y)
    loss = ce + min(ce.item(), 1.0) * (
        lam * (terms["ind_logit"] + terms["ind_feat"]) + (1 - lam) * (terms["hdl_logit"] + terms["hdl_feat"])
    )
    for key, value in terms.items():
        torch.testing.assert_close(losses[key], value.detach(), msg=key)
    torch.testing.assert_close(losses["class_loss"], ce.detach())
    torch.testing.assert_close(losses["loss"], loss.detach())
    torch.testing.assert_close(algorithm.featurizer.weight.grad, autograd.grad(loss, f0.weight)[0])
    for key, value in algorithm.cdpl.state_dict().items():  # the projection is never trained
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, projection_before[key]), key


# -------------------------------------------------------------------------- TRM
def neumann_by_hand(weight: Tensor, bias: Tensor, z: Tensor, y: Tensor, v: Tensor) -> Tensor:
    """DomainBed's series with the explicit Hessian: u = 2v_1 + v_2 + … (stop once max|u| > 10)."""
    hessian = torch.autograd.functional.hessian(
        lambda w: F.cross_entropy(z @ w.view(K, -1).T + bias, y), weight.detach().flatten()
    )
    v = v - hessian @ v
    u = 2 * v
    for _ in range(9):
        if u.abs().max() > 10:
            break
        v = v - hessian @ v
        u = u + v
    return u


@pytest.mark.parametrize("scale", [0.01, 50.0], ids=["ten-terms", "stops-early"])
def test_trm_neumann_series_is_domainbeds(scale):
    torch.manual_seed(0)
    head, z, y = nn.Linear(D, K), torch.randn(6, D), torch.randint(0, K, (6,))
    v = torch.randn(K * D) * scale
    want = neumann_by_hand(head.weight, head.bias.detach(), z, y, v)
    torch.testing.assert_close(neumann_inverse_hvp(head, z, y, v), want)
    assert (want.abs().max() > 10) == (scale > 1)


def test_trm_is_erm_before_iters():
    trm, erm = build("TRM", iters=3), build("ERM")
    minibatches = batches()
    for _ in range(3):
        losses = trm.update(minibatches)
        erm.update(minibatches)
        assert losses["trm_loss"] == 0
    for (name, a), (_, b) in zip(trm.featurizer.named_parameters(), erm.featurizer.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)


def test_trm_step_fits_heads_updates_alpha_and_descends_domainbeds_objective():
    eta, cos = 0.1, 0.5
    algorithm = build("TRM", iters=0, groupdro_eta=eta, cos_lambda=cos)
    minibatches = batches()
    f0, g0 = copy.deepcopy(algorithm.featurizer), copy.deepcopy(algorithm.classifier)
    heads = copy.deepcopy(algorithm.heads)
    losses = algorithm.update(minibatches)
    x, y = torch.cat([x for x, _ in minibatches]), torch.cat([y for _, y in minibatches])
    zs, ys = f0(x).split([len(y) for y in LABELS]), y.split([len(y) for y in LABELS])
    for j in range(S):  # 30 SGD steps (lr 0.1) of head j on its domain's detached features
        for _ in range(30):
            grads = autograd.grad(F.cross_entropy(heads[j](zs[j].detach()), ys[j]), list(heads[j].parameters()))
            with torch.no_grad():
                for p, g in zip(heads[j].parameters(), grads):
                    p -= 0.1 * g
        torch.testing.assert_close(algorithm.heads[j].weight, heads[j].weight)
    assert torch.equal(algorithm.heads[S].weight, heads[S].weight)  # DomainBed's unused head
    alpha0 = (torch.ones(S, S) - torch.eye(S)) / (S - 1)
    alpha1 = {}
    value, descended = 0.0, 0.0
    for q in range(S):
        h = heads[q]
        risk = [F.cross_entropy(h(zs[i]), ys[i]) for i in range(S)]
        grad_q = autograd.grad(risk[q], h.weight, create_graph=True)[0].flatten()
        transfer = sum(alpha0[q, i] * risk[i] for i in range(S) if i != q)
        grad_p = autograd.grad(transfer, h.weight, retain_graph=True)[0].flatten()
        u = neumann_by_hand(h.weight, h.bias.detach(), zs[q].detach(), ys[q], grad_p)
        for i in range(S):
            if i != q:
                alpha1[q, i] = alpha0[q, i] * torch.exp(eta * alpha0[q, i] * risk[i].detach())
        value = value + transfer - cos * (u @ grad_q)
        # DomainBed's gradient of the transfer term sees α after the update (alias of alpha.data)
        descended = descended + sum(alpha1[q, i] * risk[i] for i in range(S) if i != q) - cos * (u @ grad_q)
    want_alpha = torch.stack([torch.stack([alpha1.get((q, i), torch.tensor(0.0)) for i in range(S)]) for q in range(S)])
    torch.testing.assert_close(algorithm.alpha, want_alpha)
    torch.testing.assert_close(losses["trm_loss"], (value / S).detach())
    nll = F.cross_entropy(g0(torch.cat(zs)), y)
    torch.testing.assert_close(losses["class_loss"], nll.detach())
    want = autograd.grad(nll + descended / S, f0.weight, retain_graph=True)[0]
    torch.testing.assert_close(algorithm.featurizer.weight.grad, want)
    with_alpha0 = autograd.grad(nll + value / S, f0.weight)[0]
    assert not torch.allclose(with_alpha0, want, rtol=1e-4, atol=1e-6)


def test_trm_refuses_a_nonlinear_classifier():
    with pytest.raises(UserError, match="linear"):
        build("TRM", nonlinear_classifier=True)


# ------------------------------------------------------------------------- IB
def test_ib_penalty_is_the_mean_feature_variance_per_domain():
    features = torch.tensor([[0.0, 0.0], [2.0, 4.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    # domain 1: unbiased variances (2, 8) -> 5; domain 2: constant -> 0; mean 2.5
    torch.testing.assert_close(ib_penalty(features, [2, 3]), torch.tensor(2.5))


def test_ib_erm_switches_on_its_penalty_after_the_anneal_and_resets_adam():
    algorithm = build("IB_ERM", ib_lambda=10.0, ib_penalty_anneal_iters=1)
    minibatches = batches()
    sizes = [len(y) for y in LABELS]
    first = algorithm.update(minibatches)
    assert torch.equal(first["loss"], first["class_loss"])
    f0 = copy.deepcopy(algorithm.featurizer)
    second = algorithm.update(minibatches)
    x = torch.cat([x for x, _ in minibatches])
    torch.testing.assert_close(second["ib_penalty"], ib_penalty(f0(x), sizes).detach())
    torch.testing.assert_close(second["loss"], second["class_loss"] + 10.0 * second["ib_penalty"])
    assert adam_steps(algorithm) == {1}


def test_ib_irm_runs_both_schedules_and_resets_adam_at_each_jump():
    algorithm = build("IB_IRM", irm_lambda=3.0, irm_penalty_anneal_iters=1, ib_lambda=10.0, ib_penalty_anneal_iters=2)
    minibatches = batches()
    weights, steps = [], []
    for _ in range(4):
        losses = algorithm.update(minibatches)
        extra = losses["loss"] - losses["class_loss"]
        for irm_w, ib_w in ((1.0, 0.0), (3.0, 0.0), (3.0, 10.0)):
            if torch.allclose(extra, irm_w * losses["irm_penalty"] + ib_w * losses["ib_penalty"], atol=1e-6):
                weights.append((irm_w, ib_w))
                break
        steps.append(adam_steps(algorithm))
    assert weights == [(1.0, 0.0), (3.0, 0.0), (3.0, 10.0), (3.0, 10.0)]
    assert steps == [{1}, {1}, {1}, {2}]


# ---------------------------------------------------------------------- CausIRL
def identity_causirl(name: str, **overrides):
    algorithm = build(name, **overrides)
    with torch.no_grad():
        algorithm.featurizer.weight.copy_(torch.eye(D, D_IN))
        algorithm.featurizer.bias.zero_()
    return algorithm


def halves_batch(sizes: list[int], seed: int, head: float, tail: float):
    """Inputs whose features (x[:, :4] under the identity featurizer) are ``head`` before each
    domain's random cut and ``tail`` after it; the cuts are NumPy's draws after ``seed``."""
    np.random.seed(seed)
    cuts = [np.random.randint(0, n) for n in sizes]
    minibatches = []
    for n, cut in zip(sizes, cuts):
        x = torch.full((n, D_IN), tail)
        x[:cut] = head
        minibatches.append((x, torch.arange(n) % K))
    return minibatches, cuts


@pytest.mark.parametrize("name", ["CausIRL_CORAL", "CausIRL_MMD"])
def test_causirl_penalty_is_the_discrepancy_between_the_random_halves(name):
    sizes = [6, 5, 7]
    minibatches, cuts = halves_batch(sizes, seed=3, head=0.0, tail=1.0)
    assert sum(cuts) > 1 and sum(n - c for n, c in zip(sizes, cuts)) > 1
    algorithm = identity_causirl(name)
    np.random.seed(3)
    losses = algorithm.update(minibatches)
    # heads all 0, tails all 1: equal (zero) covariances, mean gap 1 in each of D features
    if name == "CausIRL_CORAL":
        want = torch.tensor(1.0)  # 1/D ‖μ_A − μ_B‖² = 1
    else:  # k(A,A) = k(B,B) = 7 kernels of exp(0); k(A,B) = Σ_γ exp(−γ D)
        want = torch.tensor(14.0 - 2 * sum(math.exp(-g * D) for g in KERNEL_BANDWIDTHS))
    torch.testing.assert_close(losses["penalty"], want)
    torch.testing.assert_close(losses["loss"], losses["class_loss"] + losses["penalty"])


@PASSES
@pytest.mark.parametrize("name", ["CausIRL_CORAL", "CausIRL_MMD"])
def test_causirl_penalty_uses_numpys_cuts_in_domain_order(name, per_domain):
    algorithm = identity_causirl(name, mmd_gamma=2.0)
    algorithm.per_domain_passes = per_domain
    minibatches = batches()
    np.random.seed(11)
    cuts = [np.random.randint(0, len(y)) for y in LABELS]
    z = [x[:, :D] for x, _ in minibatches]
    first = torch.cat([zd[:c] for zd, c in zip(z, cuts)])
    second = torch.cat([zd[c:] for zd, c in zip(z, cuts)])
    discrepancy = coral_discrepancy if name == "CausIRL_CORAL" else mmd_discrepancy
    np.random.seed(11)
    losses = algorithm.update(minibatches)
    torch.testing.assert_close(losses["penalty"], discrepancy(first, second))
    torch.testing.assert_close(losses["loss"], losses["class_loss"] + 2.0 * losses["penalty"])


def test_causirl_penalty_is_zero_when_a_half_has_fewer_than_two_rows():
    algorithm = identity_causirl("CausIRL_CORAL")
    losses = algorithm.update([(torch.randn(2, D_IN), torch.tensor([0, 1]))])  # cut 0 or 1
    assert losses["penalty"] == 0 and torch.equal(losses["loss"], losses["class_loss"])


# ----------------------------------------------------------------------- resume
@pytest.mark.parametrize(
    ("name", "overrides"),
    [("Fishr", {"penalty_anneal_iters": 3}), ("TRM", {"iters": 1}), ("IB_IRM", {"irm_penalty_anneal_iters": 3})],
)
def test_state_dict_carries_the_ema_alpha_heads_and_counters(name, overrides):
    original = build(name, seed=0, **overrides)
    for seed in range(2):
        original.update(batches(seed=seed))
    resumed = build(name, seed=1, **overrides)
    resumed.load_state_dict(copy.deepcopy(original.state_dict()))
    resumed.optimizer.load_state_dict(copy.deepcopy(original.optimizer.state_dict()))
    for seed in range(2, 4):
        a, b = original.update(batches(seed=seed)), resumed.update(batches(seed=seed))
        for key in a:
            torch.testing.assert_close(a[key], b[key], msg=key)
