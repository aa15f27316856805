"""tllib's MCD, AFN, MDD, ADDA and FixMatch.

Each loss is checked against numbers recorded from tllib's own modules; each method takes one
update on a tiny case (a linear featurizer, dropout off, learning rate 0 so every step sees the
same weights) whose losses and per-optimizer-step gradients this file computes with plain torch
ops; ADDA's phases, FixMatch's strong view and a real domain-adaptation run with GradSamp follow.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from dgsamp.algorithms.afn import adaptive_feature_norm
from dgsamp.algorithms.fixmatch import confident_pseudo_label_loss
from dgsamp.algorithms.mcd import batch_entropy, classifier_discrepancy
from dgsamp.algorithms.mdd import margin_disparity_discrepancy
from dgsamp.algorithms.prediction_entropy import prediction_entropy
from dgsamp.algorithms.strong_augment import StrongAugment, input_normalisation
from dgsamp.backbones.factory import create_backbone
from dgsamp.config.resolve import parse_run_config
from dgsamp.errors import UserError
from dgsamp.hparams import resolve_hparams
from dgsamp.modes.base import RunShape
from dgsamp.registry import ALGORITHMS, MODES, create_algorithm
from tests.helpers import read_results, train_in_process

METHODS = ("MCD", "AFN", "MDD", "ADDA", "FixMatch")
NUM_CLASSES = 3


# --- the losses against tllib's modules ---------------------------------------------------
def reference_logits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four [6, 4] logit tensors fed to tllib below."""
    grid = torch.arange(24.0).view(6, 4)
    return (torch.sin(grid * 0.7) * 3, torch.cos(grid * 0.45) * 2,
            torch.sin(grid * 1.1 + 0.3) * 2.5, torch.cos(grid * 0.8 - 0.2) * 1.5)


def test_losses_match_the_numbers_tllib_computes():
    # Recorded from tllib @ c4aa59e (tllib/alignment/mcd.py classifier_discrepancy and entropy,
    # tllib/modules/entropy.py entropy(reduction="mean"), tllib/alignment/mdd.py
    # ClassificationMarginDisparityDiscrepancy(margin=4)(a, b, c, d),
    # tllib/self_training/pseudo_label.py ConfidenceBasedSelfTrainingLoss(0.9)(b, 2a)) on the
    # tensors of reference_logits().
    a, b, c, d = reference_logits()
    assert classifier_discrepancy(a.softmax(1), b.softmax(1)).item() == pytest.approx(0.250053346157074, rel=1e-6)
    assert batch_entropy(a.softmax(1)).item() == pytest.approx(1.4708962440490723, rel=1e-6)
    assert prediction_entropy(a.softmax(1)).mean().item() == pytest.approx(0.7320072054862976, rel=1e-6)
    assert margin_disparity_discrepancy(a, b, c, d, 4.0).item() == pytest.approx(-6.778458118438721, rel=1e-6)
    loss, mask = confident_pseudo_label_loss(b, a * 2, 0.9)
    assert loss.item() == pytest.approx(0.9258814454078674, rel=1e-6)
    assert mask.tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]


def test_feature_norm_loss_and_gradient_match_tllib():
    # tllib/normalization/afn.py @ c4aa59e, AdaptiveFeatureNorm(delta=1)(f): loss and ∂loss/∂f
    f = (torch.sin(torch.arange(15.0).view(5, 3) * 1.3) * 2 + 0.5).requires_grad_()
    loss = adaptive_feature_norm(f, 1.0)
    loss.backward()
    assert loss.item() == 1.0  # (‖f‖ − ‖f‖ − Δr)² = Δr² at the current step
    expected = [[-0.06866060197353363, -0.333294540643692, -0.21023915708065033],
                [0.19465400278568268, 0.2816675305366516, -0.20681698620319366],
                [-0.3354426324367523, -0.15289822220802307, 0.15524296462535858],
                [0.13680724799633026, -0.1790754646062851, -0.33047810196876526],
                [-0.16922327876091003, 0.3212360739707947, 0.167841836810112]]
    torch.testing.assert_close(f.grad, torch.tensor(expected), rtol=1e-5, atol=1e-7)


# --- one update, computed here --------------------------------------------------------------
class LinearFeaturizer(nn.Module):
    """x [B, 4] -> z [B, 3]."""

    def __init__(self) -> None:
        super().__init__()
        self.n_outputs = 3
        self.linear = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


def build(name: str, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    cls = ALGORITHMS.get(name)
    hparams = resolve_hparams(cls, False, 0, {"lr": 1e-2, **overrides})
    return create_algorithm(name, LinearFeaturizer(), NUM_CLASSES, 2, hparams)


def frozen(algorithm):
    """Learning rate 0 (every step sees the initial weights) and dropout off."""
    for optimizer in algorithm.optimizers():
        for group in optimizer.param_groups:
            group["lr"] = 0.0
    for module in algorithm.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    algorithm.train()
    return algorithm


def record_steps(algorithm) -> list[tuple[str, list[Tensor | None]]]:
    """(optimizer attribute, gradients of its parameters) at every optimizer step."""
    calls: list[tuple[str, list[Tensor | None]]] = []
    for name, optimizer in vars(algorithm).items():
        if isinstance(optimizer, torch.optim.Optimizer):
            def hook(opt, args, kwargs, name=name):
                params = [p for group in opt.param_groups for p in group["params"]]
                calls.append((name, [None if p.grad is None else p.grad.clone() for p in params]))
            optimizer.register_step_pre_hook(hook)
    return calls


def params_of(optimizer) -> list[Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def assert_step(call, name: str, loss: Tensor, optimizer) -> None:
    """The recorded step ``call`` is ``optimizer``'s, with the gradient of ``loss``."""
    assert call[0] == name
    expected = torch.autograd.grad(loss, params_of(optimizer), retain_graph=True, allow_unused=True)
    for got, want in zip(call[1], expected, strict=True):
        want = torch.zeros_like(got) if want is None and got is not None else want
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def lin(x: Tensor, m: nn.Linear) -> Tensor:
    return x @ m.weight.T + m.bias


def bn(x: Tensor, m: nn.BatchNorm1d) -> Tensor:
    """Training-mode batch norm: the batch's mean and biased variance."""
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + m.eps) * m.weight + m.bias


def ce(logits: Tensor, y: Tensor) -> Tensor:
    return (logits.logsumexp(1) - logits.gather(1, y[:, None]).squeeze(1)).mean()


def softmax(logits: Tensor) -> Tensor:
    e = torch.exp(logits - logits.max(1, keepdim=True).values)
    return e / e.sum(1, keepdim=True)


def reversed_(f: Tensor, lam: float) -> Tensor:
    """Forward f, backward −λ · grad, with plain ops."""
    return (1 + lam) * f.detach() - lam * f


@pytest.fixture(scope="module")
def batches():
    g = torch.Generator().manual_seed(3)
    sources = [(torch.randn(3, 4, generator=g) + d, torch.tensor([0, 1, 2])) for d in range(2)]
    return sources, torch.randn(4, 4, generator=g) - 1


def test_mcd_update_takes_tllibs_three_steps(batches):
    sources, target = batches
    mcd = frozen(build("MCD", num_k=1, bottleneck_dim=5, trade_off=10.0, trade_off_entropy=0.01))
    calls = record_steps(mcd)
    losses = mcd.update(sources, [target])

    def head(z, h):
        z = torch.relu(bn(lin(z, h[1]), h[2]))
        return lin(torch.relu(bn(lin(z, h[5]), h[6])), h[8])

    x, y = torch.cat([sources[0][0], sources[1][0], target]), torch.cat([sources[0][1], sources[1][1]])
    z = lin(x, mcd.featurizer.linear)
    logits1, logits2 = head(z, mcd.classifier), head(z, mcd.second_classifier)
    p1, p2 = softmax(logits1[6:]), softmax(logits2[6:])
    class_loss = ce(logits1[:6], y) + ce(logits2[:6], y)
    entropy = -torch.log(p1.mean(0) + 1e-6).mean() - torch.log(p2.mean(0) + 1e-6).mean()
    discrepancy = (p1 - p2).abs().mean()
    source_objective = class_loss + 0.01 * entropy
    step_b = source_objective - 10.0 * discrepancy
    torch.testing.assert_close(losses["class_loss"], class_loss.detach())
    torch.testing.assert_close(losses["loss"], step_b.detach())
    torch.testing.assert_close(losses["discrepancy"], discrepancy.detach())
    assert [name for name, _ in calls] == [
        "generator_optimizer", "heads_optimizer", "heads_optimizer", "generator_optimizer"]
    assert_step(calls[0], "generator_optimizer", source_objective, mcd.generator_optimizer)  # (A)
    assert_step(calls[1], "heads_optimizer", source_objective, mcd.heads_optimizer)  # (A)
    assert_step(calls[2], "heads_optimizer", step_b, mcd.heads_optimizer)  # (B)
    assert_step(calls[3], "generator_optimizer", 10.0 * discrepancy, mcd.generator_optimizer)  # (C)


def test_afn_update(batches):
    sources, target = batches
    afn = frozen(build("AFN", bottleneck_dim=5, dropout_p=0.0, trade_off_norm=0.05, trade_off_entropy=0.1))
    calls = record_steps(afn)
    losses = afn.update(sources, [target])
    block, head = afn.classifier.bottleneck[0], afn.classifier.head

    def features(x):
        return torch.relu(bn(lin(lin(x, afn.featurizer.linear), block.fc), block.bn))

    x_s, y = torch.cat([sources[0][0], sources[1][0]]), torch.cat([sources[0][1], sources[1][1]])
    f_s, f_t = features(x_s), features(target)
    norm = sum(((f.norm(dim=1) - f.norm(dim=1).detach() - 1.0) ** 2).mean() for f in (f_s, f_t))
    p_t = softmax(lin(f_t, head))
    entropy = -(p_t * torch.log(p_t + 1e-5)).sum(1).mean()
    loss = ce(lin(f_s, head), y) + 0.05 * norm + 0.1 * entropy
    torch.testing.assert_close(losses["loss"], loss.detach())
    torch.testing.assert_close(losses["norm_loss"], torch.tensor(2.0))
    assert len(calls) == 1
    assert_step(calls[0], "optimizer", loss, afn.optimizer)


def test_mdd_update_with_the_warm_started_reversal(batches):
    sources, target = batches
    mdd = frozen(build("MDD", bottleneck_dim=5, margin=4.0, trade_off=1.0, grl_max_iters=1))
    mdd.update(sources, [target])  # i = 0: λ = 0
    calls = record_steps(mdd)
    losses = mdd.update(sources, [target])
    lam = 2 * 0.1 / (1 + math.exp(-1.0)) - 0.1  # tllib's warm start at i = 1, N = 1, hi = 0.1

    def head(f, h):
        return lin(torch.relu(lin(f, h[0])), h[3])

    bottleneck = mdd.classifier.bottleneck
    x, y = torch.cat([sources[0][0], sources[1][0], target]), torch.cat([sources[0][1], sources[1][1]])
    f = torch.relu(bn(lin(lin(x, mdd.featurizer.linear), bottleneck[0]), bottleneck[1]))
    logits, adversarial = head(f, mdd.classifier.head), head(reversed_(f, lam), mdd.adversarial_head)
    predicted = logits.argmax(1)
    source_term = -4.0 * ce(adversarial[:6], predicted[:6])
    p_t = softmax(adversarial[6:]).gather(1, predicted[6:, None]).squeeze(1)
    target_term = torch.log(torch.clamp(1 - p_t + 1e-6, max=1.0)).mean()
    loss = ce(logits[:6], y) - (source_term + target_term)
    torch.testing.assert_close(losses["loss"], loss.detach())
    torch.testing.assert_close(losses["transfer_loss"], -(source_term + target_term).detach())
    assert_step(calls[0], "optimizer", loss, mdd.optimizer)
    assert int(mdd.reversal.steps.count) == 2


def test_fixmatch_update_teaches_confident_weak_labels_to_the_strong_view(batches):
    sources, target = batches
    fixmatch = frozen(build("FixMatch", bottleneck_dim=5, trade_off=1.0))
    fixmatch.strong_view = lambda x: 0.5 * x.flip(1)  # a fixed stand-in; RandAugment is tested below
    bottleneck, head = fixmatch.classifier.bottleneck, fixmatch.classifier.head

    def logits_of(x):
        return lin(torch.relu(bn(lin(lin(x, fixmatch.featurizer.linear), bottleneck[0]), bottleneck[1])), head)

    confidence, pseudo = softmax(logits_of(target)).detach().max(1)
    threshold = confidence.sort().values[1].item()  # two of four weak predictions pass
    fixmatch.hparams["threshold"] = threshold
    calls = record_steps(fixmatch)
    losses = fixmatch.update(sources, [target])
    x_s, y = torch.cat([sources[0][0], sources[1][0]]), torch.cat([sources[0][1], sources[1][1]])
    strong = logits_of(0.5 * target.flip(1))
    per_example = strong.logsumexp(1) - strong.gather(1, pseudo[:, None]).squeeze(1)
    unlabeled = (per_example * (confidence > threshold).float()).mean()
    loss = ce(logits_of(x_s), y) + unlabeled
    torch.testing.assert_close(losses["loss"], loss.detach())
    assert losses["pseudo_label_ratio"].item() == 0.5
    assert_step(calls[0], "optimizer", loss, fixmatch.optimizer)


def test_adda_pretrains_then_adapts_a_target_encoder_against_the_frozen_source(batches):
    sources, target = batches
    adda = build("ADDA", bottleneck_dim=5, pretrain_steps=1, grl_max_iters=1)
    adda.train()
    assert not any(p.requires_grad for p in adda.source_encoder.parameters())
    assert not adda.source_encoder.training and adda.featurizer.training

    def snapshot(module):
        return {k: v.clone() for k, v in module.state_dict().items()}

    initial = snapshot(adda)
    first = adda.update(sources, [target])  # pre-training: source CE on featurizer, bottleneck, head
    after_first = snapshot(adda)
    assert first["transfer_loss"].item() == 0.0
    assert not torch.equal(after_first["classifier.head.weight"], initial["classifier.head.weight"])
    assert torch.equal(after_first["discriminator.0.weight"], initial["discriminator.0.weight"])
    adda.update(sources, [target])  # the switch: E_s := pre-trained E; λ = 0 at i = 0
    for key, value in adda.source_encoder.state_dict().items():
        layer, rest = key.split(".", 1)
        source_key = ("featurizer." if layer == "0" else "classifier.bottleneck.") + rest
        assert torch.equal(value, after_first[source_key]), key
    frozen_copy = snapshot(adda.source_encoder)
    adda.update(sources, [target])  # λ(1) > 0: the target encoder moves, the head does not
    assert not torch.equal(adda.featurizer.linear.weight, after_first["featurizer.linear.weight"])
    assert torch.equal(adda.classifier.head.weight, after_first["classifier.head.weight"])
    assert all(torch.equal(v, frozen_copy[k]) for k, v in adda.source_encoder.state_dict().items())
    assert int(adda.steps.count) == 3


def test_adda_adaptation_step_gradients(batches):
    sources, target = batches
    adda = frozen(build("ADDA", bottleneck_dim=5, pretrain_steps=0, grl_max_iters=1))
    adda.update(sources, [target])  # switch, λ = 0
    calls = record_steps(adda)
    losses = adda.update(sources, [target])
    lam = 2 * 2.0 / (1 + math.exp(-1.0)) - 2.0  # tllib's adda.py warm start (hi = 2) at i = 1, N = 1
    source_linear, source_bottleneck = adda.source_encoder[0].linear, adda.source_encoder[1]
    bn_eval = source_bottleneck[1]
    x_s = torch.cat([sources[0][0], sources[1][0]])
    h = lin(lin(x_s, source_linear), source_bottleneck[0])
    f_s = torch.relu((h - bn_eval.running_mean) / torch.sqrt(bn_eval.running_var + bn_eval.eps)
                     * bn_eval.weight + bn_eval.bias).detach()
    bottleneck = adda.classifier.bottleneck
    f_t = torch.relu(bn(lin(lin(target, adda.featurizer.linear), bottleneck[0]), bottleneck[1]))
    d_net = adda.discriminator
    u = reversed_(torch.cat([f_s, f_t]), lam)
    u = torch.relu(bn(lin(u, d_net[0]), d_net[1]))
    u = torch.relu(bn(lin(u, d_net[3]), d_net[4]))
    p = torch.sigmoid(lin(u, d_net[6][0])).squeeze(1)
    loss = 0.5 * (-torch.log(p[:6]).mean() - torch.log(1 - p[6:]).mean())
    torch.testing.assert_close(losses["transfer_loss"], loss.detach())
    assert [name for name, _ in calls] == ["adapt_optimizer"]
    assert_step(calls[0], "adapt_optimizer", loss, adda.adapt_optimizer)


def test_adda_resumes_in_the_adaptation_phase(batches):
    sources, target = batches
    original = build("ADDA", bottleneck_dim=5, pretrain_steps=1, grl_max_iters=1)
    original.train()
    for _ in range(2):
        original.update(sources, [target])
    resumed = build("ADDA", seed=1, bottleneck_dim=5, pretrain_steps=1, grl_max_iters=1)
    resumed.load_state_dict(original.state_dict())
    for mine, theirs in zip(resumed.optimizers(), original.optimizers(), strict=True):
        mine.load_state_dict(copy.deepcopy(theirs.state_dict()))  # not the same moment tensors
    resumed.train()
    assert resumed.steps.value == 2 and resumed.reversal.steps.value == 1
    expected, got = original.update(sources, [target]), resumed.update(sources, [target])
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    for (key, mine), theirs in zip(resumed.state_dict().items(), original.state_dict().values()):
        torch.testing.assert_close(mine, theirs, msg=key)


@pytest.mark.parametrize("name", METHODS)
def test_an_update_without_target_data_is_refused_in_one_line(name, batches):
    assert ALGORITHMS.get(name).ADAPTS_TO_UNLABELED  # `dgsamp list algorithms --verbose`: "used"
    with pytest.raises(UserError, match=f"^{name} adapts to unlabeled target data; run it with --task "):
        build(name).update(batches[0], None)


# --- FixMatch's strong view -------------------------------------------------------------------
MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def normalised_batch() -> Tensor:
    pixels = torch.randint(0, 256, (3, 3, 12, 12), generator=torch.Generator().manual_seed(0))
    return (pixels / 255.0 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_strong_view_is_torchvisions_randaugment_per_image_on_the_pixels():
    x = normalised_batch()
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    pixels = torch.round((x * std + mean) * 255).to(torch.uint8)
    torch.manual_seed(11)
    rand_augment = v2.RandAugment(num_ops=2, magnitude=10)
    expected = (torch.stack([rand_augment(image) for image in pixels]) / 255.0 - mean) / std
    torch.manual_seed(11)
    got = StrongAugment(MEAN, STD)(x)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, x, atol=1e-3)
    torch.manual_seed(12)
    assert not torch.equal(StrongAugment(MEAN, STD)(x), got)  # the draws follow torch's seed
    identity = StrongAugment(MEAN, STD, num_ops=0)(x)  # no op: only the uint8 round trip
    torch.testing.assert_close(identity, x, rtol=0, atol=0.5 / 255 / min(STD) + 1e-6)


def test_strong_view_refuses_two_channel_images():
    with pytest.raises(UserError, match="1- or 3-channel images"):
        StrongAugment((0.0, 0.0), (1.0, 1.0))(torch.zeros(2, 2, 8, 8))


def test_input_normalisation_is_the_one_the_backbone_factory_gives_the_trainer():
    backbone = create_backbone("test_convnext", (3, 32, 32), pretrained="none")
    assert input_normalisation(backbone.featurizer, 3) == (backbone.mean, backbone.std)
    mnist = create_backbone("mnist_cnn", (1, 28, 28), pretrained="none")
    assert input_normalisation(mnist.featurizer, 1) == (mnist.mean, mnist.std) == ((0.0,), (1.0,))


# --- real runs --------------------------------------------------------------------------------
def test_domain_adaptation_run_with_a_gradsamp_epoch(tmp_path):
    """One real run for the group (the others' updates are checked above and, in a loop over
    every algorithm, by test_algorithms.py): ADDA, the method with the most state, pre-trains in
    epoch 1, adapts to the sketch target in epoch 2, and GradSamp samples epoch 3."""
    run_dir = tmp_path / "ADDA"
    code = train_in_process(
        run_dir, "--algorithm", "ADDA", "--task", "domain_adaptation", "--test_envs", "3", "--epochs", "3",
        "--gradsamp", "periodic", "--gradsamp_period", "3", "--hparams", json.dumps({"pretrain_steps": 2}),
    )
    assert code == 0
    records = read_results(run_dir)
    assert [r["epoch_kind"] for r in records] == ["backprop", "backprop", "gradsamp"]
    assert records[0]["transfer_loss"] == 0.0 and records[1]["transfer_loss"] > 0.0  # the phases
    assert (run_dir / "done").exists()


def test_a_domain_generalization_run_is_refused_with_exit_2(tmp_path, capsys):
    # refused while the flags are resolved (NEEDS_TARGET), before the run directory exists
    assert train_in_process(tmp_path / "run", "--algorithm", "MCD", "--epochs", "1") == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "dgsamp: error: MCD adapts to unlabeled target data: give --source and --target "
        "(or --task domain_adaptation with --test_envs)"]
    assert not (tmp_path / "run").exists()


def test_gradsamp_never_moves_addas_frozen_source_encoder(batches):
    """The real GradSamp mode, set up on ADDA as the trainer does, with its epoch hooks."""
    sources, target = batches
    adda = build("ADDA", bottleneck_dim=5, pretrain_steps=1, grl_max_iters=1)
    adda.train()
    config = parse_run_config(["--protocol", "dgsamp", "--algorithm", "ADDA", "--source", "P", "--target", "S", "--epochs", "4",
                               "--gradsamp", "periodic",
                               "--gradsamp_period", "3"])
    gradsamp = MODES.get("gradsamp")(config.modes["gradsamp"], RunShape(4, 0))
    gradsamp.setup(adda, torch.device("cpu"))
    sampled = {id(p) for p in gradsamp.sampler.parameters}
    assert not sampled & {id(p) for p in adda.source_encoder.parameters()}
    assert sampled == {id(p) for p in adda.parameters() if not any(p is q for q in adda.source_encoder.parameters())}
    gradsamp.sampler.record()
    adda.update(sources, [target])  # epoch 1: pre-training
    adda.update(sources, [target])  # the switch (λ = 0)
    gradsamp.sampler.record()
    adda.update(sources, [target])  # epoch 2: adaptation, the head stands still
    gradsamp.sampler.record()
    before = {k: v.clone() for k, v in adda.state_dict().items()}
    gradsamp.run_epoch(adda, None)  # epoch 3: sampled
    after = adda.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("source_encoder.") for k in moved)
    assert "classifier.head.weight" not in moved  # its last change was 0: N(0, 0)
    assert {"discriminator.0.weight", "featurizer.linear.weight"} <= moved
