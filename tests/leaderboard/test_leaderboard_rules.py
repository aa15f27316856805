"""Selection rules, cost columns, control pairing and bad input, on small hand-made runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dgsamp.errors import UserError
from dgsamp.leaderboard.controls import FEWER_EPOCHS, SKIP, is_skip_control
from dgsamp.leaderboard.runs import Variant, load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard
from tests.leaderboard.fixtures import write_fixture_runs


def write_domainbed_run(root: Path, name: str, test_envs, hparams_seed: int, accs: list[dict],
                        trial_seed: int = 0, done: bool = True) -> None:
    """A DomainBed-style run on 3 domains; ``accs[k]`` maps 'e{i}in'/'e{i}out' -> acc."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    lines = []
    for k, acc in enumerate(accs):
        record = {"args": {"dataset": "Toy", "algorithm": "ERM", "test_envs": list(test_envs),
                           "hparams_seed": hparams_seed, "trial_seed": trial_seed},
                  "hparams": {}, "step": 100 * k}
        for env in range(3):
            record[f"env{env}_in_acc"] = acc.get(f"e{env}in", 0.5)
            record[f"env{env}_out_acc"] = acc.get(f"e{env}out", 0.5)
        lines.append(json.dumps(record))
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n")
    if done:
        (run_dir / "done").write_text("")


@pytest.fixture
def toy(tmp_path):
    """Test domain 0. hparams 0: step 100 has the best training-domain val (0.9) and test
    0.60; its last step has test-domain out 0.70, test 0.65. hparams 1: best val 0.8 (test
    0.55), last step out 0.75, test 0.50. Leave-one-out: held-out accuracies favour
    hparams 1 at step 0 (test 0.52)."""
    write_domainbed_run(tmp_path, "h0", [0], 0, [
        {"e0in": 0.40, "e1out": 0.7, "e2out": 0.7},
        {"e0in": 0.60, "e1out": 0.9, "e2out": 0.9},
        {"e0in": 0.65, "e0out": 0.70, "e1out": 0.8, "e2out": 0.8},
    ])
    write_domainbed_run(tmp_path, "h1", [0], 1, [
        {"e0in": 0.52, "e1out": 0.6, "e2out": 0.6},
        {"e0in": 0.55, "e1out": 0.8, "e2out": 0.8},
        {"e0in": 0.50, "e0out": 0.75, "e1out": 0.7, "e2out": 0.7},
    ])
    for hparams_seed, held_out in [(0, [0.3, 0.3, 0.3]), (1, [0.95, 0.2, 0.2])]:
        for other in (1, 2):
            write_domainbed_run(tmp_path, f"h{hparams_seed}_pair{other}", [0, other],
                                hparams_seed, [{f"e{other}in": v} for v in held_out])
    return load_runs([tmp_path])


@pytest.mark.parametrize("rule_key, expected_test, expected_step, hparams_seed", [
    ("training_domain", 0.60, 100, 0),
    ("oracle", 0.50, 200, 1),
    ("leave_one_out", 0.52, 0, 1),
])
def test_rules_pick_the_checkpoint_their_definition_names(toy, rule_key, expected_test,
                                                          expected_step, hparams_seed):
    rule = RULES[rule_key]
    choice = rule.select(0, [run for run in toy.runs if 0 in run.test_envs])
    assert choice.test_acc == expected_test
    assert choice.step == expected_step
    assert choice.run.hparams_seed == hparams_seed and choice.run.test_envs == (0,)


def test_leave_one_out_needs_every_held_out_domain(tmp_path, toy):
    runs = [run for run in toy.runs if not run.path.endswith("h1_pair2")]
    choice = RULES["leave_one_out"].select(0, [r for r in runs if 0 in r.test_envs])
    assert choice.run.hparams_seed == 0  # hparams 1 lost its {0, 2} run: not a candidate
    single_only = [r for r in toy.runs if len(r.test_envs) == 1]
    assert RULES["leave_one_out"].select(0, single_only) is None


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    return load_runs([write_fixture_runs(tmp_path_factory.mktemp("runs"))])


def test_torn_last_line_is_skipped_and_the_complete_lines_count(fixture_runs):
    (killed,) = [run for run in fixture_runs.runs if run.path.endswith("erm_te1_h1_t0")]
    assert not killed.done and [r["epoch"] for r in killed.records] == [1, 2, 3, 4, 5, 6]
    assert any("erm_te1_h1_t0" in w and "incomplete JSON" in w for w in fixture_runs.warnings)


def test_costs_and_energy_saved(fixture_runs):
    lb = build_leaderboard(fixture_runs, RULES["training_domain"])
    pacs, vlcs = lb.tables
    rows = {row.label: row for row in pacs.rows}
    plain, gradsamp = rows["ERM (10 epochs)"], rows["ERM + GradSamp(K=3, layer)"]
    energies = [c.run.records[-1]["cum_train_energy_J"] for c in gradsamp.choices]
    assert len(gradsamp.choices) == 4 * 3
    assert gradsamp.energy_kJ == pytest.approx(sum(energies) / len(energies) / 1000)
    assert gradsamp.energy_saved_pct == pytest.approx(
        100 * (1 - gradsamp.energy_kJ / plain.energy_kJ))
    assert gradsamp.flops_saved_pct == pytest.approx(30.0)  # 7 of 10 epochs backprop
    assert gradsamp.acc_per_kWh == pytest.approx(gradsamp.avg / (gradsamp.energy_kJ / 3600))
    assert plain.energy_saved_pct is None
    (erm,) = vlcs.rows
    assert erm.energy_kJ is None and erm.acc_per_kWh is None and erm.flops == 8e12
    coral = rows["CORAL"]
    assert coral.cells[3].n == 2 and coral.cells[0].n == 3  # the missing trial seed


def test_controls_pair_gradsamp_with_skip_and_fewer_epochs(fixture_runs):
    lb = build_leaderboard(fixture_runs, RULES["oracle"])
    pacs = lb.tables[0]
    rows = {row.variant: row for row in pacs.rows}
    gradsamp_variant = next(v for v in rows if v.mode("gradsamp") and v.algorithm == "ERM"
                            and not is_skip_control(v))
    controls = [c for c in pacs.controls if c.gradsamp_label == rows[gradsamp_variant].label]
    assert [c.kind for c in controls] == [SKIP, FEWER_EPOCHS]
    skip, fewer = controls
    assert skip.control_label == "ERM + GradSamp(K=3, skip)"
    assert fewer.control_label == "ERM (7 epochs)"
    ours, theirs = rows[gradsamp_variant], rows[Variant("ERM", epochs=7)]
    for env in range(4):  # paired over trial seeds, sample standard error
        diffs = [100 * (ours.trial_accs[env][s] - theirs.trial_accs[env][s]) for s in range(3)]
        mean = sum(diffs) / 3
        se = (sum((d - mean) ** 2 for d in diffs) / 2) ** 0.5 / 3 ** 0.5
        assert fewer.diffs[env].mean == pytest.approx(mean)
        assert fewer.diffs[env].err == pytest.approx(se)
        assert fewer.diffs[env].n == 3
    assert skip.diffs[0].n == 2 and skip.avg.n == 2  # the skip control lacks trial seed 1
    coral = [c for c in pacs.controls if c.gradsamp_label.startswith("CORAL")]
    assert [c.control_label for c in coral] == [None, None]
    assert "CORAL with 7 epochs" in coral[1].wanted


def test_no_runs_and_missing_dirs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_runs([tmp_path / "absent"])
    with pytest.raises(UserError, match="no runs found"):
        load_runs([tmp_path])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.jsonl").write_text('{"args": {"dataset": "PACS"}, "step": 0}\n')
    with pytest.raises(UserError, match="no runs found"):
        load_runs([tmp_path])
    file_path = tmp_path / "file.txt"
    file_path.write_text("")
    with pytest.raises(UserError, match="not a directory"):
        load_runs([file_path])


def test_a_run_without_usable_args_is_skipped_with_a_warning(tmp_path):
    write_domainbed_run(tmp_path, "good", [0], 0, [{"e0in": 0.5}])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.jsonl").write_text('{"args": {"dataset": "Toy"}, "step": 0}\n')
    run_set = load_runs([tmp_path])
    assert [Path(run.path).name for run in run_set.runs] == ["good"]
    assert any("lack" in warning and "bad" in warning for warning in run_set.warnings)


class FakeWandbRun:
    """Stands in for a wandb.apis.public.Run: no W&B server is reachable here (mocked)."""

    def __init__(self, run_id: str, config: dict, rows: list[dict]) -> None:
        self.id, self.config, self._rows, self.state = run_id, config, rows, "finished"

    def scan_history(self):
        return iter(self._rows)


class FakeWandbApi:
    """Stands in for wandb.Api(): only ``runs(project)`` is used by the leaderboard."""

    def __init__(self, runs: list[FakeWandbRun]) -> None:
        self._runs = runs

    def runs(self, project: str):
        assert project == "me/dg"
        return self._runs


def test_wandb_runs_become_the_same_records():
    from dgsamp.leaderboard.runs import load_wandb_runs

    runs = []
    for test_env in range(2):
        config = {"dataset": "Toy", "algorithm": "ERM", "test_envs": [test_env],
                  "hparams_seed": 0, "trial_seed": 0, "hparams": {"lr": 1e-3}}
        rows = [{"_step": 0, "loss": 1.0},  # a row without accuracies is not a record
                *({"step": 10 * k, "epoch": k, "env0_in_acc": 0.5 + 0.1 * k,
                   "env0_out_acc": 0.5, "env1_in_acc": 0.6, "env1_out_acc": 0.4 + 0.1 * k}
                  for k in (1, 2))]
        runs.append(FakeWandbRun(f"run{test_env}", config, rows))
    run_set = load_wandb_runs("me/dg", api=FakeWandbApi(runs))
    assert [run.path for run in run_set.runs] == ["wandb:me/dg/run0", "wandb:me/dg/run1"]
    assert run_set.runs[0].hparams == {"lr": 1e-3} and run_set.runs[0].done
    lb = build_leaderboard(run_set, RULES["oracle"])
    (row,) = lb.tables[0].rows
    assert [cell.mean for cell in row.cells] == [pytest.approx(70.0), pytest.approx(60.0)]
