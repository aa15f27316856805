"""The weight-averaging modes (EMA, SMA, SWAD): their math on toy models, SWAD's window on a
scripted loss curve, flags, labels and selection; then through the real trainer and CLI:
resume after SIGKILL and composition with GradSamp, ssProp and non-ERM algorithms."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgsamp.config import parse_run_config
from dgsamp.data.training_data import DomainTensors
from dgsamp.errors import UserError
from dgsamp.leaderboard.runs import variant_from_args
from dgsamp.modes.averaging.batchnorm import recompute_batchnorm
from dgsamp.modes.averaging.ema import EMAMode, decay_at
from dgsamp.modes.averaging.sma import SMAMode
from dgsamp.modes.averaging.swad import SWADMode
from dgsamp.modes.averaging.valley import LossValley
from dgsamp.modes.base import EpochPlan, RunShape
from dgsamp.tracking.schema import best_training_domain_record
from dgsamp.training.evaluation import Evaluation, evaluate
from tests.helpers import (
    TINY_RUN,
    read_results,
    run_whole_and_killed,
    train_in_process,
    without_timing,
)


class Toy(nn.Module):
    """A tiny 'algorithm': Linear(3, 4) -> BatchNorm1d(4), with an optimizer attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.optimizer = torch.optim.SGD(self.parameters(), lr=0.1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def set_weights(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Give every floating state entry fresh values (what an optimizer step would do)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.randn(value.shape, generator=generator))
    return {k: v.clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------ SWAD's window (LossValley)
def test_loss_valley_opens_at_the_converged_minimum_and_closes_past_the_tolerance():
    curve = [1.0, 0.8, 0.6, 0.5, 0.55, 0.52, 0.6, 0.58, 0.62, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    valley = LossValley(n_converge=3, n_tolerance=6, tolerance_ratio=0.3)
    joined = [valley.add(loss) for loss in curve]
    # segment 3 (0.5) is the first whose loss the next two do not beat
    assert valley.start == 3 and valley.threshold == pytest.approx(1.3 * (0.5 + 0.55 + 0.52) / 3)
    # a segment joins once the six losses from it are known and their minimum is under 0.680
    assert joined[:8] == [[]] * 8
    assert joined[8:14] == [[3], [4], [5], [6], [7], [8]]
    assert joined[14:] == [[], []] and valley.end == 9  # 0.9 .. 1.4 all above: the valley closed
    assert valley.dead and list(valley.undecided) == [] and valley.finish() == []


def test_loss_valley_keeps_only_segments_that_can_still_join():
    valley = LossValley(3, 6, 0.3)
    for loss in (1.0, 0.8, 0.6):
        valley.add(loss)
    assert list(valley.undecided) == [1, 2]  # segment 0 can no longer start the window
    valley.add(0.7)
    assert not valley.converged and list(valley.undecided) == [2, 3]
    valley.add(0.65)
    assert valley.start == 2 and list(valley.undecided) == [2, 3, 4]  # decided 6 losses after each


def test_loss_valley_at_the_end_of_training_judges_the_rest_on_the_losses_there_are():
    open_valley = LossValley(3, 6, 0.3)
    assert [open_valley.add(loss) for loss in (1.0, 0.5, 0.6, 0.7, 0.65)] == [[]] * 5
    assert open_valley.finish() == [1, 2, 3, 4] and not open_valley.dead
    closing = LossValley(3, 6, 0.3)
    for loss in (1.0, 0.5, 0.6, 0.7, 0.9, 1.0):  # threshold 1.3 * 0.6 = 0.78
        closing.add(loss)
    assert closing.finish() == [1, 2, 3] and closing.end == 4
    falling = LossValley(3, 6, 0.3)
    for loss in (1.0, 0.9, 0.8, 0.7):
        falling.add(loss)
    assert not falling.converged and falling.finish() == [] and list(falling.undecided) == [2, 3]


def test_loss_valley_state_round_trips():
    valley = LossValley(2, 3, 0.1)
    for loss in (1.0, 0.5, 0.6, 0.55):
        valley.add(loss)
    again = LossValley(2, 3, 0.1)
    again.load_state_dict(valley.state_dict())
    assert again.add(0.52) == valley.add(0.52) and again.state_dict() == valley.state_dict()


# ------------------------------------------------------------------ EMA and SMA on a toy model
def test_ema_weights_equal_the_closed_form_after_k_steps():
    model, d, k = Toy(), 0.8, 5
    mode = EMAMode({"model_ema": True, "model_ema_decay": d, "model_ema_warmup": False}, RunShape(1, 0))
    snapshots = [set_weights(model, 0)]
    mode.setup(model, torch.device("cpu"))
    assert mode.average.optimizer is None and not any(p.requires_grad for p in mode.average.parameters())
    for step in range(1, k + 1):
        snapshots.append(set_weights(model, step))
        mode.after_step(model, step)
    average = mode.average.state_dict()
    for name, value in average.items():
        if not value.is_floating_point():
            assert torch.equal(value, snapshots[-1][name])  # num_batches_tracked is copied
            continue
        closed = d**k * snapshots[0][name] + sum((1 - d) * d ** (k - i) * snapshots[i][name] for i in range(1, k + 1))
        torch.testing.assert_close(value, closed)
    assert mode.evaluation_model(model) is mode.average
    assert mode.record_fields(EpochPlan(1)) == {"evaluated_model": "ema"}


def test_ema_warmup_follows_timm():
    assert decay_at(1, 0.999, warmup=True) == 0.0  # the first step copies the weights
    assert decay_at(8, 0.999, warmup=True) == pytest.approx(1 - 8 ** (-2 / 3))  # 0.75
    assert decay_at(10**6, 0.999, warmup=True) == 0.999 and decay_at(1, 0.999, warmup=False) == 0.999


def test_sma_average_is_the_mean_of_the_snapshots_from_the_start_step():
    model = Toy()
    mode = SMAMode({"sma": True, "sma_start_step": 3}, RunShape(1, 0))
    mode.setup(model, torch.device("cpu"))
    snapshots = []
    for step in range(1, 7):
        snapshots.append(set_weights(model, step))
        mode.after_step(model, step)
        if step == 2:
            assert mode.evaluation_model(model) is model
            assert mode.record_fields(EpochPlan(1)) == {"evaluated_model": "online"}
    assert mode.count == 4 and mode.evaluation_model(model) is mode.average
    for name, value in mode.average.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, torch.stack([s[name] for s in snapshots[2:]]).mean(0))
    restored = SMAMode({"sma": True, "sma_start_step": 3}, RunShape(1, 0))
    restored.setup(Toy(), torch.device("cpu"))
    restored.load_state_dict(mode.state_dict())
    assert restored.count == 4 and all(torch.equal(a, b) for a, b in zip(
        restored.average.state_dict().values(), mode.average.state_dict().values()))


# ------------------------------------------------------------------ SWAD on a toy model
def fake_evaluation(loss: float) -> Evaluation:
    return Evaluation({}, {"env0_out_loss": 9.0, "env1_out_loss": loss, "env2_out_loss": loss}, (0,))


def test_swad_final_model_is_the_step_average_of_its_window_with_batchnorm_reestimated():
    model = Toy()
    options = {"swad": True, "swad_n_converge": 2, "swad_n_tolerance": 2, "swad_tolerance_ratio": 0.1,
               "swad_bn_steps": 3}
    mode = SWADMode(options, RunShape(6, 0))
    mode.setup(model, torch.device("cpu"))
    step, weights = 0, {}
    # (validation loss, optimizer steps) per epoch; the third is a GradSamp epoch: no step,
    # so it ends no segment and its loss is not fed to the valley (the step count still advances)
    for epoch, (loss, steps) in enumerate([(1.0, 2), (0.5, 2), (0.1, 0), (0.52, 2), (0.9, 2), (0.95, 2)], start=1):
        for _ in range(2):
            step += 1
            if steps:
                set_weights(model, step)
                weights[step] = [p.detach().clone() for p in model.parameters()]
                mode.after_step(model, step)
        mode.after_evaluation(EpochPlan(epoch, kind="backprop" if steps else "gradsamp"), fake_evaluation(loss))
        assert mode.evaluation_model(model) is model  # the online model is evaluated meanwhile
    assert mode.valley.losses == [1.0, 0.5, 0.52, 0.9, 0.95]
    # start: epoch 2 (0.5 <= 0.52); threshold 1.1 * 0.51 = 0.561: epoch 4 joins, epoch 5 closes it
    assert mode.valley.start == 1 and mode.valley.end == 3
    inputs = [torch.randn(8, 3, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    final = mode.final_model(model, iter(inputs))
    window = [torch.stack(values).mean(0) for values in zip(*(weights[s] for s in (3, 4, 7, 8)))]
    for parameter, expected in zip(final.parameters(), window):
        torch.testing.assert_close(parameter, expected)
    fields = mode.record_fields(EpochPlan(6))
    # updates 3..8 (counted from 1) are steps 2..7 in the results' numbering (DomainBed's, from 0)
    assert (fields["evaluated_model"], fields["swad_start_step"], fields["swad_end_step"]) == ("swad", 2, 7)
    linear, norm = final.net
    batch_means = torch.stack([linear(x).mean(0) for x in inputs]).mean(0)
    torch.testing.assert_close(norm.running_mean, batch_means.detach())
    assert mode.evaluation_model(model) is final
    restored = SWADMode(options, RunShape(6, 0))
    restored.setup(Toy(), torch.device("cpu"))
    restored.load_state_dict(mode.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(restored.final.state_dict().values(), final.state_dict().values()))


def test_recompute_batchnorm_without_batchnorm_draws_no_input():
    plain = nn.Linear(3, 2)
    plain.predict = plain.forward
    assert recompute_batchnorm(plain, iter([]), 5) == 0  # nothing drawn from the inputs


# ------------------------------------------------------------------ evaluation
def test_evaluation_reports_mean_cross_entropy_and_the_training_domain_validation_loss():
    model = Toy().eval()
    splits = {f"env{e}_{s}": DomainTensors(torch.randn(5, 3), torch.randint(0, 4, (5,)))
              for e in range(3) for s in ("in", "out")}
    result = evaluate(model, splits, lambda x: x, 2, torch.autocast("cpu", enabled=False), test_envs=(0,))
    for name, data in splits.items():
        logits = model.predict(data.x)
        assert result.accuracies[f"{name}_acc"] == (logits.argmax(1) == data.y).sum().item() / 5
        assert result.losses[f"{name}_loss"] == pytest.approx(F.cross_entropy(logits, data.y).item())
    assert result.validation_loss == pytest.approx((result.losses["env1_out_loss"] + result.losses["env2_out_loss"]) / 2)


# ------------------------------------------------------------------ flags, labels, selection
@pytest.mark.parametrize(("extra", "message"), [
    (["--swad", "--epochs", "2"], "--swad needs at least 3 epochs (--swad_n_converge) to find a loss valley; "
                                  "this run has 2: raise --epochs"),
    (["--model_ema", "--swad", "--epochs", "3"], "--model_ema and --swad each choose the model to evaluate; "
                                                 "use one of them"),
    (["--model_ema", "--model_ema_decay", "1.0"], "--model_ema_decay must be in (0, 1), got 1.0"),
    (["--sma_start_step", "5"], "--sma_start_step has no effect without --sma; drop it or add --sma"),
    (["--sma", "--sma_start_step", "0"], "--sma_start_step must be an integer >= 1, got 0"),
    (["--swad", "--epochs", "3", "--swad_tolerance_ratio", "-1"], "--swad_tolerance_ratio must be >= 0, got -1.0"),
])
def test_bad_averaging_flags_are_one_line_user_errors(extra, message):
    with pytest.raises(UserError) as error:
        parse_run_config(["--dataset", "PACSMini", *extra])
    assert str(error.value) == message


def test_leaderboard_labels_name_the_average():
    def label(*flags: str) -> str:
        config = parse_run_config(["--dataset", "PACSMini", "--epochs", "3", *flags])
        return variant_from_args(config.args).base_label()

    assert label("--swad") == "ERM + SWAD"
    assert label("--swad", "--swad_n_tolerance", "4") == "ERM + SWAD(n_tolerance=4)"
    assert label("--model_ema") == "ERM + EMA(0.999)"
    assert label("--model_ema", "--model_ema_decay", "0.99", "--model_ema_warmup") == "ERM + EMA(0.99, warm-up)"
    assert label("--sma") == "ERM + SMA(from 100)"
    assert label("--gradsamp", "periodic", "--sma") == "ERM + GradSamp(K=3, layer) + SMA(from 100)"


def test_selection_scores_an_averaging_run_by_its_averaged_records():
    def record(model: str, val: float, test: float) -> dict:
        return {"evaluated_model": model, "env0_in_acc": test, "env0_out_acc": 0.0,
                "env1_in_acc": 0.0, "env1_out_acc": val}

    swad_run = [record("online", 0.9, 0.1), record("online", 0.5, 0.2), record("swad", 0.7, 0.3)]
    assert best_training_domain_record(swad_run, [0])[0]["env0_in_acc"] == 0.3
    sma_run = [record("online", 0.9, 0.1), record("sma", 0.8, 0.4), record("sma", 0.6, 0.5)]
    assert best_training_domain_record(sma_run, [0])[0]["env0_in_acc"] == 0.4
    domainbed = [{k: v for k, v in r.items() if k != "evaluated_model"} for r in swad_run]
    assert best_training_domain_record(domainbed, [0])[0]["env0_in_acc"] == 0.1


# ------------------------------------------------------------------ through the trainer and the CLI
def model_file(run_dir) -> dict:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)


@pytest.mark.slow
def test_ema_with_gradsamp_and_coral_skips_the_sampled_epoch(tmp_path):
    run_dir = tmp_path / "coral-gs-ema"
    assert train_in_process(run_dir, "--algorithm", "CORAL", "--epochs", "3", "--gradsamp", "periodic",
                            "--gradsamp_period", "3", "--model_ema", "--model_ema_decay", "0.5") == 0
    records = read_results(run_dir)
    assert [r["epoch_kind"] for r in records] == ["backprop", "backprop", "gradsamp"]
    assert [r["evaluated_model"] for r in records] == ["ema", "ema", "ema"]
    accuracy_keys = [key for key in records[1] if key.endswith("_acc")]
    assert {key: records[2][key] for key in accuracy_keys} == {key: records[1][key] for key in accuracy_keys}
    saved = model_file(run_dir)
    assert saved["evaluated_model"] == "ema" and saved["evaluated_state_dict"].keys() == saved["state_dict"].keys()


@pytest.mark.slow
def test_swad_with_gradsamp_ssprop_and_coral_trains_and_reports_its_average(tmp_path):
    run_dir = tmp_path / "coral-gs-swad"
    assert train_in_process(run_dir, "--algorithm", "CORAL", "--epochs", "4", "--gradsamp", "periodic",
                            "--gradsamp_period", "3", "--ssprop", "constant", "--ssprop_keep", "0.5",
                            "--swad", "--swad_n_converge", "2", "--swad_n_tolerance", "2",
                            "--swad_bn_steps", "2") == 0
    records = read_results(run_dir)
    assert [r["epoch_kind"] for r in records] == ["backprop", "backprop", "gradsamp", "backprop"]
    assert [r["evaluated_model"] for r in records] == ["online", "online", "online", "swad"]
    assert records[2]["swad_val_loss"] is None and all(records[i]["swad_val_loss"] > 0 for i in (0, 1, 3))
    assert records[-1]["swad_start_step"] is not None and records[-1]["swad_end_step"] <= records[-1]["step"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["selected_ood_acc"] == records[-1]["ood_acc"]  # selection scores the averaged model
    assert model_file(run_dir)["evaluated_model"] == "swad"


RESUME_CASES = {
    "model_ema": ["--model_ema", "--model_ema_decay", "0.7", "--model_ema_warmup"],
    "sma": ["--sma", "--sma_start_step", "3"],
    "swad": ["--swad", "--swad_n_converge", "2", "--swad_n_tolerance", "2", "--swad_bn_steps", "2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(RESUME_CASES))
def test_averaging_mode_resumes_after_sigkill_with_identical_results(tmp_path, mode):
    whole, killed = run_whole_and_killed([*TINY_RUN, "--epochs", "3", *RESUME_CASES[mode]], tmp_path)
    records = read_results(whole)
    assert records[-1]["evaluated_model"] == {"model_ema": "ema", "sma": "sma", "swad": "swad"}[mode]
    assert [without_timing(r) for r in read_results(killed)] == [without_timing(r) for r in records]
    expected, got = model_file(whole)["evaluated_state_dict"], model_file(killed)["evaluated_state_dict"]
    assert all(torch.equal(expected[name], got[name]) for name in expected)
