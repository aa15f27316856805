"""Domain-adaptation model selection and tllib-shaped tables, on results lines written here.

Every expected selection, mean and error below is worked out by hand from the values in
``DANN_RUNS`` (comments give the arithmetic); the error is DomainBed's
``100 * std(a / sqrt(n))`` with numpy's population std, so for two seeds a, b it is
``100 * |a - b| / 2 / sqrt(2)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dgsamp.errors import UserError
from dgsamp.leaderboard.render import render
from dgsamp.leaderboard.rules import get_rule
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.tables import build_leaderboard
from tests.helpers import run_cli

# One evaluation point: (target acc, source_val_acc, target_entropy, target_im, target_snd, target_dev)
# Office31's domains: A = 0, D = 1, W = 2. Steps are 10, 20, 30, ... in order.
DANN_RUNS = {
    # (source, target, hparams_seed, trial_seed): points
    ((0,), (2,), 0, 0): [(0.60, 0.80, 0.9, 0.30, 1.0, 0.5), (0.70, 0.85, 0.5, 0.20, 3.0, 0.4),
                         (0.65, 0.90, 0.7, 0.40, 2.0, 0.6)],
    ((0,), (2,), 1, 0): [(0.50, 0.95, 0.8, 0.10, 0.5, 0.3), (0.55, 0.70, 0.6, 0.50, 1.5, 0.9)],
    ((0,), (2,), 0, 1): [(0.62, 0.82, 0.4, 0.35, 2.5, 0.45), (0.68, 0.81, 0.6, 0.25, 1.0, 0.35)],
    ((1,), (2,), 0, 0): [(0.80, 0.60, 0.3, 0.60, 4.0, 0.2), (0.90, 0.70, 0.2, 0.50, 3.0, 0.25)],
    ((1,), (2,), 0, 1): [(0.84, 0.75, 0.25, 0.55, 3.5, 0.3), (0.86, 0.65, 0.35, 0.65, 3.8, 0.1)],
}
SE2 = 100 / 2 / math.sqrt(2)  # the error of two seeds per unit of |a - b|

# rule: (A→W selected accs per trial seed, D→W selected accs per trial seed)
EXPECTED = {
    # A→W t0: h0's best source val 0.90 (acc .65) loses to h1's 0.95 (acc .50); t1: 0.82 -> .62.
    # D→W t0: 0.70 -> .90; t1: 0.75 -> .84.
    "source_val": ((0.50, 0.62), (0.90, 0.84)),
    # lowest entropy. A→W t0: h0 0.5 (.70) beats h1 0.6; t1: 0.4 (.62). D→W: 0.2 (.90); 0.25 (.84).
    "entropy": ((0.70, 0.62), (0.90, 0.84)),
    # highest IM. A→W t0: h1's 0.5 (.55) beats h0's 0.4; t1: 0.35 (.62). D→W: 0.6 (.80); 0.65 (.86).
    "im": ((0.55, 0.62), (0.80, 0.86)),
    # highest SND. A→W t0: h0 3.0 (.70) beats h1 1.5; t1: 2.5 (.62). D→W: 4.0 (.80); 3.8 (.86).
    "snd": ((0.70, 0.62), (0.80, 0.86)),
    # lowest DEV. A→W t0: h1 0.3 (.50) beats h0 0.4; t1: 0.35 (.68). D→W: 0.2 (.80); 0.1 (.86).
    "dev": ((0.50, 0.68), (0.80, 0.86)),
    # best target accuracy. A→W t0: .70; t1: .68. D→W: .90; .86.
    "target_oracle": ((0.70, 0.68), (0.90, 0.86)),
}
SELECTED_STEPS = {  # A→W, trial seed 0, the step of the pick (h0's 2nd point is step 20)
    "source_val": 10, "entropy": 20, "im": 20, "snd": 20, "dev": 10, "target_oracle": 20,
}


def da_args(source, target, hparams_seed: int, trial_seed: int, algorithm: str = "DANN",
            dataset: str = "Office31", with_domains: bool = True) -> dict:
    args = {"dataset": dataset, "algorithm": algorithm, "backbone": "resnet50", "protocol": "tllib",
            "task": "domain_adaptation", "test_envs": list(target), "hparams_seed": hparams_seed,
            "trial_seed": trial_seed, "epochs": 3}
    if with_domains:
        args |= {"source": list(source), "target": list(target)}
    return args


def write_run(root: Path, name: str, args: dict, records: list[dict]) -> None:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    total = 0.0
    for number, record in enumerate(records, start=1):
        total += 1000.0
        record.update({"args": args, "hparams": {}, "epoch": number, "step": 10 * number,
                       "epoch_kind": "backprop", "cum_train_energy_J": total,
                       "cum_train_flops": 10**12 * number})
    (run_dir / "results.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    (run_dir / "done").write_text("")


def scored_record(source, target, point) -> dict:
    acc, source_val, entropy, im, snd, dev = point
    record = {}
    for env in source:  # only the sources and the target are evaluated (no env for D in A→W)
        record |= {f"env{env}_in_acc": 0.99, f"env{env}_out_acc": source_val}
    for env in target:
        record |= {f"env{env}_in_acc": acc, f"env{env}_out_acc": acc - 0.01}
    return record | {"source_val_acc": source_val, "target_entropy": entropy, "target_im": im,
                     "target_snd": snd, "target_dev": dev}


def write_dann_runs(root: Path) -> Path:
    for (source, target, hparams_seed, trial_seed), points in DANN_RUNS.items():
        name = f"dann_{source[0]}to{target[0]}_h{hparams_seed}_t{trial_seed}"
        write_run(root, name, da_args(source, target, hparams_seed, trial_seed),
                  [scored_record(source, target, point) for point in points])
    # CDAN has only A→W, trial seed 0: its D→W cell and Avg are missing
    write_run(root, "cdan_0to2_h0_t0", da_args((0,), (2,), 0, 0, "CDAN"),
              [scored_record((0,), (2,), (0.40, 0.5, 0.5, 0.5, 0.5, 0.5))])
    return root


def table_of(root: Path, selection: str):
    leaderboard = build_leaderboard(load_runs([root]), get_rule(selection))
    (table,) = leaderboard.tables
    return leaderboard, table


@pytest.mark.parametrize("selection", sorted(EXPECTED))
def test_each_da_rule_picks_the_hand_computed_points(tmp_path: Path, selection: str):
    _, table = table_of(write_dann_runs(tmp_path), selection)
    assert table.task == "domain_adaptation"
    assert table.env_names == ["A→W", "D→W"]  # sorted by source, then target
    assert [row.label for row in table.rows] == ["CDAN", "DANN"]
    cdan, dann = table.rows
    for cell, accs in zip(dann.cells, EXPECTED[selection], strict=True):
        assert cell.n == 2
        assert cell.mean == pytest.approx(100 * sum(accs) / 2)
        assert cell.err == pytest.approx(SE2 * abs(accs[0] - accs[1]))
    means = [100 * sum(accs) / 2 for accs in EXPECTED[selection]]
    assert dann.avg == pytest.approx(sum(means) / 2)
    assert dann.trial_accs[0][0] == pytest.approx(EXPECTED[selection][0][0])
    picked = next(c for c in dann.choices if c.run.trial_seed == 0 and c.run.args["source"] == [0])
    assert picked.step == SELECTED_STEPS[selection]
    assert cdan.cells[0].mean == pytest.approx(40.0) and cdan.cells[1].n == 0 and cdan.avg is None


def test_energy_is_the_mean_over_the_selected_runs(tmp_path: Path):
    # entropy picks, per (task, seed): A→W t0 h0 (3 kJ), A→W t1 (2 kJ), D→W t0 (2 kJ), D→W t1 (2 kJ)
    _, table = table_of(write_dann_runs(tmp_path), "entropy")
    assert table.rows[1].energy_kJ == pytest.approx((3 + 2 + 2 + 2) / 4)
    # IM picks A→W t0 from h1 (2 points, 2 kJ) instead
    _, table = table_of(tmp_path, "im")
    assert table.rows[1].energy_kJ == pytest.approx(2.0)


def test_mean_per_class_accuracy_is_preferred(tmp_path: Path):
    args = da_args((0,), (1,), 0, 0, dataset="VisDA2017")
    records = [{"env0_in_acc": 0.9, "env0_out_acc": 0.9, "env1_in_acc": 0.70, "env1_out_acc": 0.7,
                "env1_in_mpca": 0.50, "source_val_acc": 0.9},
               {"env0_in_acc": 0.9, "env0_out_acc": 0.8, "env1_in_acc": 0.65, "env1_out_acc": 0.6,
                "env1_in_mpca": 0.60, "source_val_acc": 0.8}]
    write_run(tmp_path, "visda", args, records)
    _, table = table_of(tmp_path, "target_oracle")
    assert table.env_names == ["Synthetic→Real"]
    assert table.rows[0].cells[0].mean == pytest.approx(60.0)  # mpca .60 beats .50; acc would pick .70
    _, table = table_of(tmp_path, "source_val")
    assert table.rows[0].cells[0].mean == pytest.approx(50.0)  # source val .9 -> first point's mpca


def legacy_run(root: Path) -> None:
    """A DA run from before --source/--target and the score keys: test_envs [2], all domains evaluated."""
    args = da_args((0, 1), (2,), 0, 0, with_domains=False)
    records = [{"env0_in_acc": 0.9, "env0_out_acc": 0.80, "env1_in_acc": 0.9, "env1_out_acc": 0.70,
                "env2_in_acc": 0.55, "env2_out_acc": 0.50},
               {"env0_in_acc": 0.9, "env0_out_acc": 0.70, "env1_in_acc": 0.9, "env1_out_acc": 0.60,
                "env2_in_acc": 0.65, "env2_out_acc": 0.40}]
    write_run(root, "legacy", args, records)


def test_domainbed_rules_read_on_da_runs(tmp_path: Path):
    legacy_run(tmp_path)
    # training-domain: sources A and D (every domain but the test one); (0.80 + 0.70) / 2 = 0.75 > 0.65
    lb, table = table_of(tmp_path, "training_domain")
    assert table.env_names == ["A+D→W"] and table.rows[0].cells[0].mean == pytest.approx(55.0)
    assert table.selection_name == "training-domain validation set (source out splits)"
    # oracle: the last point only (DomainBed), whatever its target out accuracy
    _, table = table_of(tmp_path, "oracle")
    assert table.rows[0].cells[0].mean == pytest.approx(65.0)
    # leave-one-domain-out has no DA reading: no table, a warning
    lb = build_leaderboard(load_runs([tmp_path]), get_rule("leave_one_out"))
    assert lb.tables == [] and "domain adaptation runs left out" in lb.warnings[-1]
    with pytest.raises(UserError, match=r"--selection dev needs target_dev, which runs in .*legacy did not record"):
        build_leaderboard(load_runs([tmp_path]), get_rule("dev"))


def test_cli_missing_score_exits_2_and_oracle_is_labelled(tmp_path: Path):
    write_dann_runs(tmp_path / "da")
    legacy_run(tmp_path / "old")
    result = run_cli("leaderboard", str(tmp_path), "--selection", "snd")
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs target_snd, which runs in" in lines[0] and "old/legacy did not" in lines[0]

    result = run_cli("leaderboard", str(tmp_path / "da"), "--selection", "target_oracle")
    assert result.returncode == 0, result.stderr
    assert "target oracle (uses target labels)" in result.stdout.splitlines()[0]
    header = next(line for line in result.stdout.splitlines() if line.startswith("| Algorithm"))
    assert "| A→W | D→W | Avg | Energy (kJ) |" in header
    dann = next(line for line in result.stdout.splitlines() if line.startswith("| DANN "))
    assert "| 69.0 ± 0.7 | 88.0 ± 1.4 | 78.5 |" in dann  # (.70 + .68) / 2, (.90 + .86) / 2


def test_dg_and_da_runs_print_both_sections_and_a_da_rule_refuses_dg_runs(tmp_path: Path):
    write_dann_runs(tmp_path / "da")
    dg_args = {"dataset": "Office31", "algorithm": "ERM", "backbone": "resnet50", "protocol": "tllib",
               "task": "domain_generalization", "test_envs": [2], "hparams_seed": 0, "trial_seed": 0,
               "epochs": 1}
    write_run(tmp_path / "dg", "erm", dg_args, [{"env0_in_acc": 0.9, "env0_out_acc": 0.8, "env1_in_acc": 0.9,
                                                   "env1_out_acc": 0.8, "env2_in_acc": 0.45,
                                                   "env2_out_acc": 0.4}])
    leaderboard = build_leaderboard(load_runs([tmp_path]), get_rule("training_domain"))
    tables = json.loads(render(leaderboard, "json"))["tables"]
    assert [(t["task"], t["environments"]) for t in tables] == [
        ("domain_adaptation", ["A→W", "D→W"]), ("domain_generalization", ["A", "D", "W"])]
    assert tables[1]["rows"][0]["cells"][2]["mean"] == pytest.approx(45.0)
    # the DA table under training_domain: the source out accuracy, i.e. source_val's picks
    dann = tables[0]["rows"][1]
    assert [cell["mean"] for cell in dann["cells"]] == pytest.approx([56.0, 87.0])  # (.50+.62)/2, (.90+.84)/2
    markdown = render(leaderboard, "markdown")
    assert "model selection: training-domain validation set (source out splits)" in markdown

    with pytest.raises(UserError, match=r"target_oracle selects domain adaptation runs, but runs in .*dg/erm are"):
        build_leaderboard(load_runs([tmp_path]), get_rule("target_oracle"))
