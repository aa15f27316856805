"""tllib's DA methods: DAN, JAN, CDAN, CDAN_E, DANN_BSP, CDAN_BSP, MCC and the unregistered TllibDANN.

Three kinds of evidence:

* the loss modules against numbers recorded from tllib's own modules (thuml/Transfer-Learning-
  Library @ c4aa59e: tllib/alignment/{dan,jan,dann,cdan,bsp}.py, tllib/self_training/mcc.py,
  tllib/modules/{kernels,grl,domain_discriminator}.py), run on the inputs of ``tllib_inputs``
  (n_s = n_t = 4: tllib needs equal batch sizes);
* one ``update`` of each method on a linear featurizer x[N, 3] -> z[N, 4], K = 3 classes,
  two source domains of 3 examples and one target of 4 (unequal sizes), whose loss and
  every parameter's gradient are written out below with plain torch ops;
* a real ``dgsamp train`` subprocess in domain adaptation with GradSamp switched on, and the
  refusal of a run without target data.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import Tensor, nn

from dgsamp.algorithms.bsp import batch_spectral_penalty
from dgsamp.algorithms.cdan import ConditionalDomainAdversarialLoss
from dgsamp.algorithms.dan import DAN_KERNELS
from dgsamp.algorithms.dann_tllib import TllibDANN
from dgsamp.algorithms.jan import JAN_KERNELS
from dgsamp.algorithms.mcc import minimum_class_confusion
from dgsamp.algorithms.mk_mmd import kernel_mmd
from dgsamp.algorithms.multilinear_map import (
    MultilinearMap,
    RandomizedMultilinearMap,
    conditioning_map,
)
from dgsamp.algorithms.tllib_discriminator import DomainAdversarialLoss, DomainDiscriminator
from dgsamp.algorithms.warm_start_grl import TllibWarmStartGRL
from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS
from tests.helpers import TINY_RUN, read_results, run_cli

torch.set_num_threads(1)
METHODS = ("DAN", "JAN", "CDAN", "CDAN_E", "DANN_BSP", "CDAN_BSP", "MCC")


def close(actual: Tensor, expected, tol: float = 1e-5) -> bool:
    expected = torch.as_tensor(expected, dtype=torch.float32).reshape(actual.shape)
    return torch.allclose(actual.detach().float(), expected, rtol=tol, atol=tol)


# ----------------------------------------------------------------- against tllib's modules


def tllib_inputs() -> tuple[Tensor, ...]:
    """The reference script's inputs: z_s, z_t [4, 3], logits_s, logits_t [4, 3], w_s, w_t [4]."""
    g = torch.Generator().manual_seed(0)
    z_s = torch.randn(4, 3, generator=g)
    z_t = torch.randn(4, 3, generator=g) + 0.5
    l_s, l_t = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    w_s, w_t = torch.rand(4, generator=g) + 0.5, torch.rand(4, generator=g) + 0.5
    return (*(t.requires_grad_() for t in (z_s, z_t, l_s, l_t)), w_s, w_t)


# tllib MultipleKernelMaximumMeanDiscrepancy([GaussianKernel(alpha=2 ** k) for k in range(-3, 2)],
# linear=...)(z_s, z_t): value, then the gradient of z_s
TLLIB_DAN = {
    True: (0.9358855485916138, [-0.34047079, -0.29673076, 0.08200875, 0.39279345, 0.32380605, -0.38715959,
                                -0.29620686, -0.43069234, -0.4101069, 0.24607633, 0.22567803, -0.54843819]),
    False: (1.0280787944793701, [-0.24609789, -0.12677738, 0.12869614, 0.10199807, 0.21454155, -0.18118125,
                                 0.11720192, -0.47177836, -0.42500696, 0.06195407, -0.02779824, -0.63700676]),
}
# tllib JointMultipleKernelMaximumMeanDiscrepancy((the five kernels above, (GaussianKernel(sigma=0.92,
# track_running_stats=False),)), linear=...)((z_s, softmax(l_s)), (z_t, softmax(l_t))): value, grads of z_s, l_s
TLLIB_JAN = {
    True: (0.924447238445282,
           [-0.29917726, -0.27543992, 0.06325804, 0.36884657, 0.2868042, -0.36394924, -0.27955613, -0.40117219,
            -0.33764711, 0.20973742, 0.24154808, -0.49731287],
           [0.04788121, -0.05756108, 0.00967987, 0.0003081, 0.05997001, -0.06027811, 0.07706363, -0.01744737,
            -0.05961628, 0.00904616, -0.00689711, -0.00214905]),
    False: (0.9356931447982788,
            [-0.20770118, -0.13200946, 0.09425572, 0.10968743, 0.17931691, -0.19850886, 0.07735228, -0.40607402,
             -0.34321156, 0.04811298, 0.00837627, -0.55072743],
            [0.05874021, -0.07021181, 0.01147159, 0.05114476, -0.02674895, -0.0243958, 0.08095747, 0.00144011,
             -0.08239759, 0.04405928, -0.0023848, -0.04167448]),
}


@pytest.mark.parametrize("linear", [True, False])
def test_mk_mmd_matches_tllib_dan(linear):
    z_s, z_t, *_ = tllib_inputs()
    loss = kernel_mmd([z_s], [z_t], [DAN_KERNELS], linear=linear)
    loss.backward()
    value, grad = TLLIB_DAN[linear]
    assert close(loss, value) and close(z_s.grad, grad)


@pytest.mark.parametrize("linear", [True, False])
def test_joint_mmd_matches_tllib_jan(linear):
    z_s, z_t, l_s, l_t, *_ = tllib_inputs()
    loss = kernel_mmd([z_s, l_s.softmax(1)], [z_t, l_t.softmax(1)], JAN_KERNELS, linear=linear)
    loss.backward()
    value, grad_z, grad_l = TLLIB_JAN[linear]
    assert close(loss, value) and close(z_s.grad, grad_z) and close(l_s.grad, grad_l)


def at_step(grl: TllibWarmStartGRL, step: int) -> None:
    """Set the warm start's step i through ``load_state_dict``, as a checkpoint would."""
    grl.load_state_dict({"steps.count": torch.tensor(step)})


def test_domain_adversarial_loss_matches_tllib_dann():
    z_s, z_t, _, _, w_s, w_t = tllib_inputs()
    torch.manual_seed(1)  # tllib: DomainDiscriminator(3, hidden_size=16) drawn after manual_seed(1)
    adversarial = DomainAdversarialLoss(DomainDiscriminator(3, hidden_size=16))
    at_step(adversarial.grl, 1000)
    loss = adversarial(z_s, z_t, w_s, w_t)
    loss.backward()
    # tllib DomainAdversarialLoss(discriminator), grl.iter_num = 1000, (z_s, z_t, w_s, w_t)
    assert close(loss, 0.7617364525794983)
    assert close(z_s.grad, [0.001389, -0.00825997, 0.00583752, 0.00217598, -0.00867767, 0.00313472,
                            -0.00693685, 0.01497559, 0.00184443, -0.00036891, -0.00117342, 0.0068576])
    assert close(adversarial.discriminator[6][0].bias.grad, [0.07439003])


# tllib ConditionalDomainAdversarialLoss(DomainDiscriminator(9, hidden_size=16) after manual_seed(2),
# entropy_conditioning=...), grl.iter_num = 1000, (l_s, z_s, l_t, z_t): value, gradient of z_s
TLLIB_CDAN = {
    False: (0.7897229790687561, [-0.00301396, -0.00042938, -0.00079693, -0.00375426, -0.00319141, -0.00377032,
                                 0.01014829, 0.00380082, 0.00748754, -0.00064721, -0.00686629, 0.00535622]),
    True: (0.787096381187439, [-0.00340844, -0.000605, -0.00097072, -0.00362566, -0.0031209, -0.00378527,
                               0.0101863, 0.00381738, 0.00750931, -0.00067406, -0.0069699, 0.00537197]),
}


@pytest.mark.parametrize("entropy", [False, True])
def test_conditional_adversarial_loss_matches_tllib_cdan(entropy):
    z_s, z_t, l_s, l_t, *_ = tllib_inputs()
    adversarial = ConditionalDomainAdversarialLoss(MultilinearMap(3, 3), entropy_conditioning=entropy)
    torch.manual_seed(2)
    adversarial.discriminator = DomainDiscriminator(9, hidden_size=16)
    at_step(adversarial.grl, 1000)
    loss = adversarial(z_s, z_t, l_s, l_t)
    loss.backward()
    value, grad = TLLIB_CDAN[entropy]
    assert close(loss, value) and close(z_s.grad, grad)


def test_randomized_map_matches_tllib_cdan():
    z_s, z_t, l_s, l_t, *_ = tllib_inputs()
    conditioning = RandomizedMultilinearMap(3, 3, output_dim=5)
    g = torch.Generator().manual_seed(4)
    conditioning.random_f.copy_(torch.randn(3, 5, generator=g))
    conditioning.random_g.copy_(torch.randn(3, 5, generator=g))
    adversarial = ConditionalDomainAdversarialLoss(conditioning, entropy_conditioning=False)
    torch.manual_seed(3)
    adversarial.discriminator = DomainDiscriminator(5, hidden_size=16)
    at_step(adversarial.grl, 1000)
    loss = adversarial(z_s, z_t, l_s, l_t)
    loss.backward()
    # tllib: randomized=True, randomized_dim=5, map.Rf / map.Rg replaced by the two draws above
    assert close(loss, 0.8036386966705322)
    assert close(z_s.grad, [-0.00585315, -0.0165556, 0.02112447, -0.00065229, 0.00166484, -0.00176604,
                            0.01706234, 0.01055846, 0.01386088, -0.0101315, -0.01087874, 0.01316673])
    # the random matrices are buffers: a checkpoint carries them
    assert {"map.random_f", "map.random_g"} <= set(adversarial.state_dict())


def test_auto_map_is_randomized_above_4096_inputs():
    assert isinstance(conditioning_map("auto", 256, 16, 1024), MultilinearMap)  # 4096
    auto = conditioning_map("auto", 256, 17, 1024)
    assert isinstance(auto, RandomizedMultilinearMap) and auto.output_dim == 1024
    assert isinstance(conditioning_map("randomized", 2, 2, 7), RandomizedMultilinearMap)
    assert isinstance(conditioning_map("full", 512, 65, 1024), MultilinearMap)


def test_batch_spectral_penalty_matches_tllib_bsp():
    z_s, z_t, *_ = tllib_inputs()
    loss = batch_spectral_penalty(z_s, z_t)
    loss.backward()
    # tllib BatchSpectralPenalizationLoss()(z_s, z_t)
    assert close(loss, 18.91290283203125)
    assert close(z_s.grad, [2.79317093, -0.96653914, -4.4562602, 1.73259532, -0.59954125, -2.7642045,
                            0.68804556, -0.23808889, -1.09771657, -0.26591995, 0.09201801, 0.42425206], 1e-4)


def test_minimum_class_confusion_matches_tllib_mcc():
    _, _, _, l_t, *_ = tllib_inputs()
    loss = minimum_class_confusion(l_t, temperature=2.5)
    loss.backward()
    # tllib MinimumClassConfusionLoss(temperature=2.5)(l_t)
    assert close(loss, 0.6566882729530334)
    assert close(l_t.grad, [0.00366193, 0.00150928, -0.00517121, 0.00385127, -0.00101802, -0.00283326,
                            -0.0085516, 0.0032584, 0.0052932, 0.00038661, -0.00291553, 0.00252892])


def test_warm_start_grl_follows_tllib_and_survives_a_checkpoint():
    grl = TllibWarmStartGRL()
    # tllib WarmStartGradientReverseLayer(alpha=1, lo=0, hi=1, max_iters=1000, auto_step=True):
    # the coefficient seen by its i-th forward (i counted from 0)
    for step, coefficient in [(0, 0.0), (1, 0.0004999999655410647), (500, 0.24491865932941437),
                              (1000, 0.46211716532707214), (3000, 0.9051482677459717)]:
        at_step(grl, step)
        x = torch.ones(2, requires_grad=True)
        grl(x).sum().backward()
        assert close(-x.grad, [coefficient] * 2, 1e-6), step
        assert grl.steps.value == step + 1 and int(grl.state_dict()["steps.count"]) == step + 1
        assert math.isclose(coefficient, 2 / (1 + math.exp(-step / 1000)) - 1, abs_tol=1e-7)  # the formula
    restored = TllibWarmStartGRL()
    restored.load_state_dict(grl.state_dict())
    assert restored.steps.value == 3001


# ------------------------------------------------------- one update against plain torch

K, D_IN, D = 3, 3, 4


class LinearFeaturizer(nn.Linear):
    """z = x W_fᵀ + b_f, ``x [N, 3] -> z [N, 4]``."""

    n_outputs = D

    def __init__(self) -> None:
        super().__init__(D_IN, D)


def build(name: str, **hparams):
    torch.manual_seed(0)
    cls = TllibDANN if name == "TllibDANN" else ALGORITHMS.get(name)
    values = resolve_hparams(cls, False, 0, {"lr": 0.01, **hparams})
    return cls(LinearFeaturizer(), K, 2, values).train()


def tiny_batches() -> tuple[list[tuple[Tensor, Tensor]], list[Tensor]]:
    g = torch.Generator().manual_seed(1)
    sources = [(torch.randn(3, D_IN, generator=g) + d, torch.randint(0, K, (3,), generator=g)) for d in range(2)]
    return sources, [torch.randn(4, D_IN, generator=g) - 1.0]


def reversed_gradient(z: Tensor, coefficient: float) -> Tensor:
    """z forward, −coefficient · ∂ backward, in plain ops."""
    return (1 + coefficient) * z.detach() - coefficient * z


def discriminate(p: dict[str, Tensor], prefix: str, u: Tensor) -> Tensor:
    """tllib's discriminator on u [N, F] in training mode: (Linear, batch-statistics BN, ReLU) x 2,
    Linear, sigmoid."""

    def norm(h: Tensor, i: int) -> Tensor:
        mean, var = h.mean(0), h.var(0, unbiased=False)
        return (h - mean) / torch.sqrt(var + 1e-5) * p[f"{prefix}.{i}.weight"] + p[f"{prefix}.{i}.bias"]

    h = torch.relu(norm(u @ p[f"{prefix}.0.weight"].T + p[f"{prefix}.0.bias"], 1))
    h = torch.relu(norm(h @ p[f"{prefix}.3.weight"].T + p[f"{prefix}.3.bias"], 4))
    return torch.sigmoid(h @ p[f"{prefix}.6.0.weight"].T + p[f"{prefix}.6.0.bias"]).flatten()


def gaussian_sum(a: Tensor, b: Tensor, sigma_squares: list) -> Tensor:
    distance = ((a - b) ** 2).sum()
    return sum(torch.exp(-distance / (2 * s2)) for s2 in sigma_squares)


def bandwidths(z: Tensor) -> list[Tensor]:
    mean_distance = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1).mean().detach()
    return [2.0**k * mean_distance for k in range(-3, 2)]


def expected_terms(name: str, p: dict[str, Tensor], hp: dict, grl_coefficient: float, x_s, y_s, x_t):
    """(loss, class loss, {term: value}) of one step, from the parameters p by name."""
    z_s = x_s @ p["featurizer.weight"].T + p["featurizer.bias"]
    z_t = x_t @ p["featurizer.weight"].T + p["featurizer.bias"]
    logits_s = z_s @ p["classifier.weight"].T + p["classifier.bias"]
    logits_t = z_t @ p["classifier.weight"].T + p["classifier.bias"]
    class_loss = -torch.log_softmax(logits_s, 1)[torch.arange(len(y_s)), y_s].mean()
    n_s, n_t = len(z_s), len(z_t)
    terms: dict[str, tuple[float, Tensor]] = {}
    if name == "DAN":  # linear estimate over max(n_s, n_t) = 6 cyclic pairs
        s2 = bandwidths(torch.cat([z_s, z_t]))
        m = max(n_s, n_t)
        total = sum(
            gaussian_sum(z_s[i % n_s], z_s[(i + 1) % n_s], s2) + gaussian_sum(z_t[i % n_t], z_t[(i + 1) % n_t], s2)
            - gaussian_sum(z_s[i % n_s], z_t[(i + 1) % n_t], s2) - gaussian_sum(z_s[(i + 1) % n_s], z_t[i % n_t], s2)
            for i in range(m)
        )
        terms["transfer_loss"] = (hp["trade_off"], total / m + 2 / (n_s - 1))
    if name == "JAN":  # quadratic estimate, kernel on features times kernel on probabilities
        s2 = bandwidths(torch.cat([z_s, z_t]))
        a_s, a_t = torch.softmax(logits_s, 1), torch.softmax(logits_t, 1)

        def k(za, pa, zb, pb):
            return gaussian_sum(za, zb, s2) * gaussian_sum(pa, pb, [0.92**2])

        ss = sum(k(z_s[i], a_s[i], z_s[j], a_s[j]) for i in range(n_s) for j in range(n_s) if i != j)
        tt = sum(k(z_t[i], a_t[i], z_t[j], a_t[j]) for i in range(n_t) for j in range(n_t) if i != j)
        st = sum(k(z_s[i], a_s[i], z_t[j], a_t[j]) for i in range(n_s) for j in range(n_t))
        jmmd = ss / (n_s * (n_s - 1)) + tt / (n_t * (n_t - 1)) - 2 * st / (n_s * n_t) + 2 / (n_s - 1)
        terms["transfer_loss"] = (hp["trade_off"], jmmd)
    if name in ("TllibDANN", "DANN_BSP"):
        d = discriminate(p, "domain_adversarial.discriminator",
                         reversed_gradient(torch.cat([z_s, z_t]), grl_coefficient))
        adversarial = 0.5 * (-torch.log(d[:n_s]).mean() - torch.log(1 - d[n_s:]).mean())
        terms["transfer_loss"] = (hp["trade_off"], adversarial)
    if name in ("CDAN", "CDAN_E", "CDAN_BSP"):
        g = torch.softmax(torch.cat([logits_s, logits_t]), 1).detach()
        f = reversed_gradient(torch.cat([z_s, z_t]), grl_coefficient)
        u = torch.einsum("nk,nd->nkd", g, f).reshape(n_s + n_t, K * D)
        d = discriminate(p, "domain_adversarial.discriminator", u)
        labels = torch.cat([torch.ones(n_s), torch.zeros(n_t)])
        bce = -(labels * torch.log(d) + (1 - labels) * torch.log(1 - d))
        if name == "CDAN_E":
            entropy = -(g * torch.log(g + 1e-5)).sum(1)
            w = 1 + torch.exp(-entropy)
            bce = bce * w / w.sum() * (n_s + n_t)
        terms["transfer_loss"] = (hp["trade_off"], bce.mean())
    if name in ("DANN_BSP", "CDAN_BSP"):  # σ_1² = the largest eigenvalue of ZᵀZ
        penalty = torch.linalg.eigvalsh(z_s.T @ z_s)[-1] + torch.linalg.eigvalsh(z_t.T @ z_t)[-1]
        terms["bsp_loss"] = (hp["trade_off_bsp"], penalty)
    if name == "MCC":
        probabilities = torch.softmax(logits_t / hp["temperature"], 1)
        entropy = -(probabilities * torch.log(probabilities + 1e-5)).sum(1).detach()
        w = (1 + torch.exp(-entropy)) * n_t / (1 + torch.exp(-entropy)).sum()
        confusion = torch.zeros(K, K)
        for i in range(n_t):
            confusion = confusion + w[i] * torch.outer(probabilities[i], probabilities[i])
        normalised = confusion / confusion.sum(0, keepdim=True)  # column sums (C is symmetric)
        terms["transfer_loss"] = (hp["trade_off"], (normalised.sum() - normalised.trace()) / K)
    loss = class_loss + sum(weight * value for weight, value in terms.values())
    return loss, class_loss, terms


@pytest.mark.parametrize("name", [*METHODS, "TllibDANN"])
def test_one_update_has_the_written_out_loss_and_gradients(name):
    overrides = {"trade_off": 0.7}  # not 1, so a missing weight shows
    if name.endswith("BSP"):
        overrides["trade_off_bsp"] = 0.05  # tllib's 2e-4 would hide the term in the gradients
    algorithm = build(name, **overrides)
    grl = getattr(getattr(algorithm, "domain_adversarial", None), "grl", None)
    coefficient = 0.0
    if grl is not None:  # resume the warm start at step 1000, where the reversal is 0.46 (tllib)
        at_step(grl, 1000)
        coefficient = 2 / (1 + math.exp(-1.0)) - 1
    start = copy.deepcopy(algorithm)
    sources, targets = tiny_batches()
    losses = algorithm.update(sources, targets)

    parameters = {n: q.detach().clone().requires_grad_() for n, q in start.named_parameters()}
    x_s, y_s = torch.cat([x for x, _ in sources]), torch.cat([y for _, y in sources])
    loss, class_loss, terms = expected_terms(name, parameters, algorithm.hparams, coefficient, x_s, y_s, targets[0])
    assert set(losses) == {"loss", "class_loss", *terms}
    assert close(losses["loss"], loss) and close(losses["class_loss"], class_loss)
    for term, (_, value) in terms.items():
        assert close(losses[term], value), term
    expected = torch.autograd.grad(loss, list(parameters.values()), allow_unused=True)
    for (parameter_name, parameter), grad in zip(algorithm.named_parameters(), expected, strict=True):
        grad = torch.zeros_like(parameter) if grad is None else grad
        assert close(parameter.grad, grad, 1e-4), parameter_name
    if grl is not None:
        assert grl.steps.value == 1001  # one forward, one step of the warm start
    assert all(not t.requires_grad for t in losses.values())


@pytest.mark.parametrize("name", METHODS)
def test_every_method_is_registered_as_adapting_with_tllib_defaults(name):
    cls = ALGORITHMS.get(name)
    assert cls.ADAPTS_TO_UNLABELED is True and cls.flops_cycle == 1 and "tllib" in cls.SOURCE
    hparams = resolve_hparams(cls, False, 0)
    assert hparams["trade_off"] == 1.0  # every tllib script's --trade-off default
    if name == "MCC":
        assert hparams["temperature"] == 2.5
    if name.endswith("BSP"):
        assert hparams["trade_off_bsp"] == 2e-4
    drawn = resolve_hparams(cls, False, 3)  # a random-search draw stays valid
    assert 0.1 <= drawn["trade_off"] <= 10


def test_an_update_without_target_batches_is_refused():
    sources, _ = tiny_batches()
    for name in METHODS:
        with pytest.raises(UserError, match="--task domain_adaptation"):
            build(name).update(sources, None)


def test_gradsamp_moves_every_parameter_but_not_the_warm_start():
    """GradSamp's sampler (dgsamp.modes.gradsamp) after two recorded epochs of CDAN_BSP."""
    from dgsamp.modes.gradsamp.sampler import GradSampler, make_generator

    algorithm = build("CDAN_BSP")
    sampler = GradSampler(list(algorithm.parameters()), "layer", 1.0)
    sources, targets = tiny_batches()
    sampler.record()
    for _ in range(2):
        algorithm.update(sources, targets)
        sampler.record()
    before = copy.deepcopy(algorithm.state_dict())
    sampler.step(make_generator("cpu", 0))
    after = algorithm.state_dict()
    for name, parameter in algorithm.named_parameters():
        assert not torch.equal(before[name], parameter.detach()), name  # discriminator included
    assert int(after["domain_adversarial.grl.steps.count"]) == 2 == algorithm.domain_adversarial.grl.steps.value


# ------------------------------------------------------------------------- real runs


def test_train_domain_adaptation_with_gradsamp_in_a_subprocess(tmp_path):
    """CDAN_BSP (discriminator, warm-start GRL, spectral penalty) trains on PACSMini with the
    target's unlabelled in-split; epoch 3 is a GradSamp epoch, which takes no update step."""
    run_dir = tmp_path / "run"
    argv = [*TINY_RUN, "--epochs", "3", "--algorithm", "CDAN_BSP", "--task", "domain_adaptation",
            "--test_envs", "0", "--gradsamp", "periodic", "--gradsamp_period", "3", "--output_dir", str(run_dir)]
    result = run_cli("train", *argv)
    assert result.returncode == 0, result.stderr
    records = read_results(run_dir)
    assert [r["epoch_kind"] for r in records] == ["backprop", "backprop", "gradsamp"]
    for record in records[:2]:
        assert math.isfinite(record["transfer_loss"]) and record["bsp_loss"] > 0
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert int(checkpoint["parts"]["algorithm"]["domain_adversarial.grl.steps.count"]) == 4  # 2 x 2 steps

    refused = run_cli("train", *[a if a != "domain_adaptation" else "domain_generalization" for a in argv[:-1]],
                      str(tmp_path / "dg"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "dgsamp: error: CDAN_BSP adapts to unlabeled target data: give --source and --target "
        "(or --task domain_adaptation with --test_envs)"]
