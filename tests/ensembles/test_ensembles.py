"""``dgsamp ensemble`` on real tiny runs: EoA's logits are the mean of its members', a
one-member EoA reproduces its run's last line, DiWA's weights are the mean of its members',
greedy selection on scripted validation accuracies, one-line refusals, leaderboard rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from dgsamp.cli import main
from dgsamp.ensembles.evaluation_setup import EvaluationSetup
from dgsamp.ensembles.members import find_members
from dgsamp.ensembles.weight_average import average_states, greedy_select
from dgsamp.leaderboard.rules import get_rule
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.tables import build_leaderboard
from dgsamp.tracking import schema
from tests.helpers import read_results, train_in_process

SPLITS = [f"env{env}_{part}" for env in range(4) for part in ("in", "out")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Tiny finished runs: EMA runs of trial seeds 0 and 1 (EoA), plain runs sharing --seed 7
    with hparams seeds 0-2 (DiWA: one initialisation, different hparams)."""
    root = tmp_path_factory.mktemp("runs")
    for trial_seed in (0, 1):
        assert train_in_process(root / f"ema{trial_seed}", "--model_ema", "--trial_seed", str(trial_seed)) == 0
    for hparams_seed in (0, 1, 2):
        assert train_in_process(root / f"diwa{hparams_seed}", "--seed", "7", "--hparams_seed", str(hparams_seed)) == 0
    return root


def ensemble(*argv: str) -> int:
    return main(["ensemble", *argv])


def member_logits(run_dir: Path, setup: EvaluationSetup) -> dict[str, torch.Tensor]:
    """Logits of a run's evaluated model on every split, computed here (not by the ensemble code)."""
    member = find_members([run_dir])[0]
    model = setup.build_algorithm(member.args, member.hparams, member.load_state())
    with torch.no_grad():
        return {name: model.predict(setup.transform(split.x)) for name, split in setup.data.eval_splits.items()}


def test_eoa_accuracies_are_those_of_the_mean_of_the_members_logits(runs, tmp_path):
    out = tmp_path / "eoa"
    assert ensemble(str(runs / "ema0"), str(runs / "ema1"), "--method", "eoa", "--output_dir", str(out)) == 0
    (record,) = read_results(out)
    members = find_members([runs / "ema0"])
    setup = EvaluationSetup.from_args({**members[0].args, "trial_seed": 0}, members[0].hparams, "cpu")
    logits = [member_logits(runs / name, setup) for name in ("ema0", "ema1")]
    for name, split in setup.data.eval_splits.items():
        mean = (logits[0][name] + logits[1][name]) / 2
        assert record[f"{name}_acc"] == pytest.approx((mean.argmax(1) == split.y).double().mean().item())
    # the two members disagree somewhere, so the mean is not just one member's logits
    assert any(not torch.equal(logits[0][n].argmax(1), logits[1][n].argmax(1)) for n in logits[0])
    assert record[schema.EVALUATED_MODEL] == "eoa" and record[schema.EPOCH_KIND] == "ensemble"
    assert record["args"]["ensemble"]["members"] == [json.loads((runs / n / "summary.json").read_text())["job_id"]
                                                     for n in ("ema0", "ema1")]
    assert (out / "done").is_file() and json.loads((out / "summary.json").read_text())["final_ood_acc"] \
        == record[schema.OOD_ACC]


def test_a_one_member_eoa_reproduces_its_runs_last_line(runs, tmp_path):
    out = tmp_path / "one"
    assert ensemble(str(runs / "ema1"), "--method", "eoa", "--output_dir", str(out)) == 0
    (record,), last = read_results(out), read_results(runs / "ema1")[-1]
    assert {name: record[f"{name}_acc"] for name in SPLITS} == {name: last[f"{name}_acc"] for name in SPLITS}
    assert record[schema.CUM_TRAIN_FLOPS] == last[schema.CUM_TRAIN_FLOPS]


def test_diwa_uniform_weights_are_the_mean_of_the_members_weights(runs, tmp_path):
    out = tmp_path / "uniform"
    names = ("diwa0", "diwa1", "diwa2")
    assert ensemble(*(str(runs / n) for n in names), "--method", "diwa_uniform", "--output_dir", str(out)) == 0
    averaged = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    states = [torch.load(runs / n / "model.pt", weights_only=True)["state_dict"] for n in names]
    differing = 0
    for key, value in averaged.items():
        if value.is_floating_point():
            expected = torch.stack([state[key] for state in states]).mean(0)
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
            differing += not torch.equal(states[0][key], states[1][key])
        else:
            assert torch.equal(value, states[0][key])
    assert differing > 10  # different hparams trained different weights from the one initialisation
    (record,) = read_results(out)
    flops = [read_results(runs / n)[-1][schema.CUM_TRAIN_FLOPS] for n in names]
    assert record[schema.CUM_TRAIN_FLOPS] == sum(flops) and record["args"]["ensemble"]["method"] == "diwa_uniform"


def test_diwa_greedy_keeps_the_averages_that_do_not_lower_validation(runs, tmp_path):
    out = tmp_path / "greedy"
    assert ensemble(str(runs), "--where", "seed=7", "--method", "diwa_greedy", "--output_dir", str(out)) == 0
    (record,) = read_results(out)
    spec = record["args"]["ensemble"]
    tried = spec["selection"]
    assert len(tried) == 3 and tried[0]["kept"]
    assert [t["member_val_acc"] for t in tried] == sorted((t["member_val_acc"] for t in tried), reverse=True)
    assert spec["members"] == [t["job_id"] for t in tried if t["kept"]]
    best = max(t["average_val_acc"] for t in tried if t["kept"])
    assert schema.training_domain_accuracy(record, [0]) == pytest.approx(best)


def test_greedy_selection_on_scripted_validation_accuracies():
    scripted = {("a",): 0.60, ("a", "b"): 0.58, ("a", "c"): 0.60, ("a", "c", "d"): 0.65}
    selection = greedy_select(["a", "b", "c", "d"], lambda members: scripted[tuple(members)])
    assert selection.selected == ["a", "c", "d"] and selection.best_score == 0.65
    assert [(s.candidate, s.kept) for s in selection.steps] == [("a", True), ("b", False), ("c", True), ("d", True)]


def test_average_states_is_the_entrywise_mean_and_copies_integers():
    states = [{"w": torch.full((2, 3), float(i)), "n": torch.tensor(i)} for i in (1, 2, 6)]
    averaged = average_states(states)
    assert torch.equal(averaged["w"], torch.full((2, 3), 3.0)) and averaged["n"].item() == 1


def _copy_with_args(source: Path, target: Path, **changes) -> Path:
    shutil.copytree(source, target)
    lines = read_results(target)
    for line in lines:
        line["args"].update(changes)
    (target / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = json.loads((target / "summary.json").read_text())
    (target / "summary.json").write_text(json.dumps({**summary, "job_id": f"edited-{target.name}"}))
    return target


@pytest.mark.parametrize(("method", "base", "changes", "message"), [
    ("eoa", "ema", {"test_envs": [1]}, "they differ in test_envs ([0] vs [1])"),
    ("eoa", "ema", {"dataset": "PACS"}, "they differ in dataset"),
    ("eoa", "ema", {"backbone": "resnet18"}, "they differ in backbone"),
    ("eoa", "ema", {"algorithm": "CORAL"}, "they differ in algorithm"),
    ("eoa", "ema", {"model_ema": False}, "they differ in training modes (ERM + EMA(0.999) vs ERM)"),
    ("diwa_uniform", "ema", {}, "differ in initialisations (seed)"),
    ("diwa_uniform", "diwa", {"pretrained": "auto"}, "differ in initialisations (pretrained)"),
    ("diwa_greedy", "diwa", {"trial_seed": 1}, "needs one trial seed"),
])
def test_mixed_runs_are_refused_in_one_line(runs, tmp_path, capsys, method, base, changes, message):
    other = _copy_with_args(runs / f"{base}1", tmp_path / "other", **changes)
    code = ensemble(str(runs / f"{base}0"), str(other), "--method", method, "--output_dir", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("dgsamp: error: ") and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_diwa_refuses_different_architectures(runs, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(runs / "diwa1", other)
    saved = torch.load(other / "model.pt", weights_only=True)
    saved["state_dict"] = {key: (value[:1] if key.startswith("classifier") else value)
                           for key, value in saved["state_dict"].items()}
    torch.save(saved, other / "model.pt")
    summary = json.loads((other / "summary.json").read_text())
    (other / "summary.json").write_text(json.dumps({**summary, "job_id": "edited"}))
    code = ensemble(str(runs / "diwa0"), str(other), "--method", "diwa_uniform", "--output_dir", str(tmp_path / "o"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "different architectures (classifier" in err[0], err


def test_unfinished_runs_ensembles_and_occupied_outputs_are_refused(runs, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs / "ema1", unfinished)
    (unfinished / "done").unlink()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    built = tmp_path / "built"
    assert ensemble(str(runs / "ema0"), "--method", "eoa", "--output_dir", str(built)) == 0
    capsys.readouterr()
    cases = [
        ([str(runs / "ema0"), str(unfinished)], "is not a finished run (no done)"),
        ([str(runs / "ema0"), str(built)], "is an ensemble; pass the runs it was built from"),
        ([str(runs / "ema0"), "--output_dir", str(occupied)], "holds other files (notes.txt)"),
        ([str(runs), "--where", "algorithm=DANN"], "matches --where algorithm=\"DANN\""),
        ([str(runs / "ema0"), "--where", "trial_seed"], "--where takes KEY=VALUE"),
    ]
    for argv, message in cases:
        if "--output_dir" not in argv:
            argv = [*argv, "--output_dir", str(tmp_path / "out")]
        code = ensemble(*argv, "--method", "eoa")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and message in err[0], (argv, err)
    assert not (tmp_path / "out").exists() and (occupied / "notes.txt").read_text() == "mine"
    assert ensemble(str(runs / "ema0"), "--method", "eoa", "--output_dir", str(built)) == 0  # already done
    assert "already done" in capsys.readouterr().err


def test_the_leaderboard_labels_ensemble_rows_and_sums_their_members_cost(runs, tmp_path):
    ensembles = tmp_path / "ensembles"
    assert ensemble(str(runs / "ema0"), str(runs / "ema1"), "--method", "eoa", "--output_dir",
                    str(ensembles / "eoa")) == 0
    assert ensemble(str(runs), "--where", "seed=7", "--method", "diwa_uniform", "--output_dir",
                    str(ensembles / "diwa")) == 0
    board = build_leaderboard(load_runs([runs, ensembles]), get_rule("training_domain"))
    (table,) = board.tables
    rows = {row.label: row for row in table.rows}
    assert list(rows) == ["ERM", "ERM + DiWA-uniform(3)", "ERM + EMA(0.999)", "ERM + EMA(0.999) + EoA(2)"]
    flops = {name: read_results(runs / name)[-1][schema.CUM_TRAIN_FLOPS] for name in ("ema0", "ema1")}
    assert rows["ERM + EMA(0.999) + EoA(2)"].flops == sum(flops.values())
    assert rows["ERM + EMA(0.999) + EoA(2)"].flops_saved_pct < 0  # dearer than one plain run
    assert not table.controls
