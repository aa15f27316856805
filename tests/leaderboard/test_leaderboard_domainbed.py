"""The leaderboard on a real DomainBed sweep reproduces DomainBed's own tables.

``../shared/data/domainbed_test_sweep`` holds the 40 run directories (ERM on VLCS, 200
records) that DomainBed keeps as the fixture of its ``collect_results`` script. Each rule
is recomputed here a second time with deliberately plain loops over the jsonl files, and
the DomainBed-format text is compared with the output DomainBed itself recorded for these
runs (facebookresearch/DomainBed, ``domainbed/misc/test_sweep_results.txt``).
"""

from __future__ import annotations

import json
import math

import pytest

from dgsamp.leaderboard.render import render
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard
from tests.helpers import REPO

# DomainBed's recorded collect_results output for this sweep, one block per rule.
DOMAINBED_OUTPUT = {
    "training_domain": ("training-domain validation set",
                        ["98.0 +/- 0.2", "64.2 +/- 0.8", "74.1 +/- 0.4", "77.1 +/- 0.2"],
                        "78.3", "78.3 +/- 0.0"),
    "leave_one_out": ("leave-one-domain-out cross-validation",
                      ["96.9 +/- 1.0", "64.4 +/- 0.9", "70.5 +/- 0.5", "76.7 +/- 0.1"],
                      "77.1", "77.1 +/- 0.1"),
    "oracle": ("test-domain validation set (oracle)",
               ["96.9 +/- 1.0", "65.9 +/- 0.5", "71.6 +/- 1.3", "76.9 +/- 0.3"],
               "77.8", "77.8 +/- 0.3"),
}


def domainbed_text(rule_key: str) -> str:
    name, cells, avg, average = DOMAINBED_OUTPUT[rule_key]

    def row(label, values, width):
        return "  ".join(str(v).ljust(width) for v in [label, *values]) + " "

    return "\n".join([
        "Total records: 200", "",
        f"-------- Dataset: VLCS, model selection method: {name}",
        row("Algorithm", ["C", "L", "S", "V", "Avg"], 20), row("ERM", [*cells, avg], 20), "",
        f"-------- Averages, model selection method: {name}",
        row("Algorithm", ["VLCS", "Avg"], 25), row("ERM", [average, avg], 25),
    ]) + "\n"


@pytest.fixture(scope="module")
def sweep(shared_data):
    return shared_data / "domainbed_test_sweep"


@pytest.fixture(scope="module")
def plain_runs(sweep):
    """(test_envs, hparams_seed, trial_seed) -> records, read with nothing but json."""
    runs = {}
    for run_dir in sorted(sweep.iterdir()):
        lines = (run_dir / "results.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        args = records[0]["args"]
        runs[(tuple(args["test_envs"]), args["hparams_seed"], args["trial_seed"])] = records
    return runs


def plain_pick(rule_key, runs, test_env, hparams_seed, trial_seed):
    """(val, test) of one hyperparameter setting, or None; the rule written out by hand."""
    single = runs.get(((test_env,), hparams_seed, trial_seed))
    if single is None:
        return None
    if rule_key == "oracle":
        last = single[-1]
        return last[f"env{test_env}_out_acc"], last[f"env{test_env}_in_acc"]
    best = None
    for index, record in enumerate(single):
        if rule_key == "training_domain":
            others = [record[f"env{i}_out_acc"] for i in range(4) if i != test_env]
            val = sum(others) / 3
        else:
            held_out = []
            for j in range(4):
                if j == test_env:
                    continue
                pair = runs.get((tuple(sorted((test_env, j))), hparams_seed, trial_seed))
                assert pair is not None and pair[index]["step"] == record["step"]
                held_out.append(pair[index][f"env{j}_in_acc"])
            val = sum(held_out) / 3
        if best is None or val > best[0]:
            best = (val, record[f"env{test_env}_in_acc"])
    return best


def plain_mean_err(values):
    n = len(values)
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / n
    return 100 * mean, 100 * math.sqrt(variance) / math.sqrt(n)


@pytest.mark.parametrize("rule_key", list(RULES))
def test_tables_match_a_plain_recomputation(sweep, plain_runs, rule_key):
    lb = build_leaderboard(load_runs([sweep]), RULES[rule_key])
    assert lb.num_runs == 40 and lb.num_records == 200
    (table,) = lb.tables
    (row,) = table.rows
    assert (table.dataset, row.label, table.env_names) == ("VLCS", "ERM", ["C", "L", "S", "V"])
    column_means, per_seed = [], {0: [], 1: []}
    for test_env in range(4):
        accs = []
        for trial_seed in (0, 1):
            picks = [plain_pick(rule_key, plain_runs, test_env, h, trial_seed) for h in (0, 1)]
            _val, test = max((p for p in picks if p is not None), key=lambda p: p[0])
            accs.append(test)
            per_seed[trial_seed].append(test)
        mean, err = plain_mean_err(accs)
        cell = row.cells[test_env]
        assert cell.n == 2
        assert cell.mean == pytest.approx(mean, abs=1e-9)
        assert cell.err == pytest.approx(err, abs=1e-9)
        column_means.append(mean)
    assert row.avg == pytest.approx(sum(column_means) / 4, abs=1e-9)
    (averages,) = lb.averages
    _label, (average_cell,), _avg = averages.rows[0]
    mean, err = plain_mean_err([sum(v) / 4 for v in per_seed.values()])
    assert (average_cell.mean, average_cell.err) == (pytest.approx(mean), pytest.approx(err))
    assert row.energy_kJ is None and row.flops is None and table.controls == []


@pytest.mark.parametrize("rule_key", list(RULES))
def test_domainbed_format_equals_domainbeds_own_output(sweep, rule_key):
    lb = build_leaderboard(load_runs([sweep]), RULES[rule_key])
    assert render(lb, "domainbed") == domainbed_text(rule_key)


def test_docs_show_the_three_tables(sweep):
    docs = (REPO / "docs" / "leaderboard.md").read_text()
    for rule_key in RULES:
        lb = build_leaderboard(load_runs([sweep]), RULES[rule_key])
        table = render(lb, "markdown").split("## VLCS", 1)[1].split("\n\n", 2)[1]
        assert table in docs, f"docs/leaderboard.md lacks the current {rule_key} table"
