"""The leaderboard's numbers against the same numbers worked out by hand in this file.

Small run directories (PACS, 4 domains; ERM and CORAL; hparams seeds 0-1; trial seeds
0-2; each test domain alone; 3 evaluations at steps 10, 20, 30) get accuracies drawn
here from a seeded RNG. The expected figures are computed below from those raw numbers
alone, following DomainBed's model selection (Gulrajani & Lopez-Paz, ICLR 2021, Sec. 3;
domainbed/model_selection.py) and its ``collect_results`` table cells (mean and error
``100 * std(a / sqrt(n))``, numpy's population std: domainbed/scripts/collect_results.py
@ 22002ea), then compared with ``dgsamp leaderboard --format json`` run as a subprocess,
and with the selected steps of the in-process leaderboard.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.leaderboard.fixtures import records_for, run_args, write_run

NUM_ENVS = 4
STEPS = (10, 20, 30)  # run_args: 10 steps per epoch, 3 epochs
HPARAMS_SEEDS = (0, 1)
TRIAL_SEEDS = (0, 1, 2)
ALGORITHMS = ("ERM", "CORAL")
RuleKey = tuple[str, int, int]  # algorithm, test domain, trial seed


def accuracies(rng: random.Random) -> dict[str, float]:
    """One evaluation: ``env{i}_in_acc`` and ``env{i}_out_acc`` for every domain, 4 decimals."""
    return {f"env{env}_{split}_acc": round(rng.uniform(0.3, 0.9), 4)
            for env in range(NUM_ENVS) for split in ("in", "out")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict]:
    """The run directories, and the raw numbers written: (algorithm, test domain, hparams
    seed, trial seed) -> [(step, accuracies, cumulative train energy J)] per evaluation."""
    root = tmp_path_factory.mktemp("runs")
    rng = random.Random(2024)
    written = {}
    for algorithm in ALGORITHMS:
        for test_env in range(NUM_ENVS):
            for hparams_seed in HPARAMS_SEEDS:
                for trial_seed in TRIAL_SEEDS:
                    args = run_args("PACS", (test_env,), hparams_seed, trial_seed, algorithm, epochs=len(STEPS))
                    records = records_for(args, 0.0, NUM_ENVS, measured=True)
                    evaluations = []
                    for record in records:
                        record.update(accuracies(rng))
                        record["ood_acc"] = record[f"env{test_env}_in_acc"]
                        evaluations.append((record["step"], dict(record), record["cum_train_energy_J"]))
                    assert [step for step, _, _ in evaluations] == list(STEPS)
                    written[algorithm, test_env, hparams_seed, trial_seed] = evaluations
                    write_run(root / f"{algorithm}_te{test_env}_h{hparams_seed}_t{trial_seed}", records)
    return root, written


def training_domain_pick(written: dict, key: RuleKey) -> tuple[float, int, int, float]:
    """(test acc, hparams seed, step, run energy J): per run the evaluation with the best mean
    out-split accuracy of the 3 training domains (earliest on a tie), then the hparams seed
    whose pick scores best (lowest seed on a tie)."""
    algorithm, test_env, trial_seed = key
    best = None
    for hparams_seed in HPARAMS_SEEDS:
        evaluations = written[algorithm, test_env, hparams_seed, trial_seed]
        run_best = None
        for step, acc, _ in evaluations:
            val = sum(acc[f"env{e}_out_acc"] for e in range(NUM_ENVS) if e != test_env) / (NUM_ENVS - 1)
            if run_best is None or val > run_best[0]:
                run_best = (val, acc[f"env{test_env}_in_acc"], step)
        if best is None or run_best[0] > best[0]:
            best = (*run_best, hparams_seed, evaluations[-1][2])
    val, test_acc, step, hparams_seed, energy = best
    return test_acc, hparams_seed, step, energy


def oracle_pick(written: dict, key: RuleKey) -> tuple[float, int, int, float]:
    """The last evaluation of each run, scored by the test domain's out-split accuracy; the
    hparams seed with the best score (lowest seed on a tie); its test domain's in-split."""
    algorithm, test_env, trial_seed = key
    best = None
    for hparams_seed in HPARAMS_SEEDS:
        step, acc, energy = written[algorithm, test_env, hparams_seed, trial_seed][-1]
        if best is None or acc[f"env{test_env}_out_acc"] > best[0]:
            best = (acc[f"env{test_env}_out_acc"], acc[f"env{test_env}_in_acc"], hparams_seed, step, energy)
    _, test_acc, hparams_seed, step, energy = best
    return test_acc, hparams_seed, step, energy


PICKS = {"training_domain": training_domain_pick, "oracle": oracle_pick}


def mean_and_error(fractions: list[float]) -> tuple[float, float]:
    """DomainBed's cell in %: the mean, and the population std divided by sqrt(n)."""
    n = len(fractions)
    mean = sum(fractions) / n
    std = math.sqrt(sum((a - mean) ** 2 for a in fractions) / n)
    return 100 * mean, 100 * std / math.sqrt(n)


def leaderboard_json(root: Path, rule: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "dgsamp", "leaderboard", str(root), "--selection", rule,
                             "--format", "json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("rule", sorted(PICKS))
def test_cells_averages_and_energy_equal_the_hand_computed_ones(runs, rule):
    root, written = runs
    board = leaderboard_json(root, rule)
    assert board["selection"]["key"] == rule and board["num_runs"] == len(written)
    (table,) = board["tables"]
    assert table["dataset"] == "PACS" and table["environments"] == ["A", "C", "P", "S"]
    rows = {row["label"]: row for row in table["rows"]}
    assert list(rows) == ["ERM", "CORAL"]  # ERM first, then the others alphabetically
    averages = {row["label"]: row for row in board["averages"][0]["rows"]}
    for algorithm in ALGORITHMS:
        picks = {(env, seed): PICKS[rule](written, (algorithm, env, seed))
                 for env in range(NUM_ENVS) for seed in TRIAL_SEEDS}
        cell_means = []
        for env, cell in enumerate(rows[algorithm]["cells"]):
            mean, error = mean_and_error([picks[env, seed][0] for seed in TRIAL_SEEDS])
            assert (cell["mean"], cell["err"], cell["n"]) == (
                pytest.approx(mean, abs=1e-5), pytest.approx(error, abs=1e-5), len(TRIAL_SEEDS)), (algorithm, env)
            cell_means.append(mean)
        assert rows[algorithm]["avg"] == pytest.approx(sum(cell_means) / NUM_ENVS, abs=1e-5)
        energy_J = sum(pick[3] for pick in picks.values()) / len(picks)  # each selected run's whole training
        assert rows[algorithm]["energy_kJ"] == pytest.approx(energy_J / 1000, abs=1e-5)
        per_seed = [sum(picks[env, seed][0] for env in range(NUM_ENVS)) / NUM_ENVS for seed in TRIAL_SEEDS]
        mean, error = mean_and_error(per_seed)
        (cell,) = averages[algorithm]["cells"]
        assert (cell["mean"], cell["err"]) == (pytest.approx(mean, abs=1e-5), pytest.approx(error, abs=1e-5))
        expected_dirs = sorted(str(root / f"{algorithm}_te{env}_h{picks[env, seed][1]}_t{seed}")
                               for env in range(NUM_ENVS) for seed in TRIAL_SEEDS)
        assert sorted(rows[algorithm]["selected_runs"]) == expected_dirs


@pytest.mark.parametrize("rule", sorted(PICKS))
def test_selected_hparams_and_steps_equal_the_hand_computed_ones(runs, rule):
    from dgsamp.leaderboard.runs import load_runs
    from dgsamp.leaderboard.selection import RULES
    from dgsamp.leaderboard.tables import build_leaderboard

    root, written = runs
    (table,) = build_leaderboard(load_runs([root]), RULES[rule]).tables
    steps_seen = set()
    for row in table.rows:
        got = {(row.variant.algorithm, choice.run.test_envs[0], choice.run.trial_seed):
               (choice.run.hparams_seed, choice.step, choice.test_acc) for choice in row.choices}
        assert len(got) == NUM_ENVS * len(TRIAL_SEEDS)
        for key, (hparams_seed, step, test_acc) in got.items():
            expected_acc, expected_hparams, expected_step, _ = PICKS[rule](written, key)
            assert (hparams_seed, step, test_acc) == (expected_hparams, expected_step, expected_acc), key
            steps_seen.add(step)
    if rule == "training_domain":  # early stopping really happens in these numbers
        assert len(steps_seen) > 1
    else:
        assert steps_seen == {STEPS[-1]}
