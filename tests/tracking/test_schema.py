"""The results schema: key helpers, the documented keys, and the writers that use it."""

from __future__ import annotations

import re

from dgsamp.leaderboard.runs import run_from_records
from dgsamp.leaderboard.selection import RULES
from dgsamp.tracking import schema
from dgsamp.tracking.records import make_record, selected_ood_acc, summarize
from dgsamp.tracking.wandb_sink import history_row
from tests.helpers import REPO


def test_key_helpers():
    assert (schema.env_in_acc(2), schema.env_out_acc(0)) == ("env2_in_acc", "env0_out_acc")
    assert schema.epochs_of_kind("gradsamp") == "gradsamp_epochs" == schema.epochs_of_kind(
        schema.kind_of_counter("gradsamp_epochs"))
    assert schema.is_env_acc("env10_out_acc") and not schema.is_env_acc("envy_in_acc")
    assert not schema.is_env_acc("env0_in_loss")
    record = {"env0_out_acc": 0.5, "env1_out_acc": 0.5, "env3_out_acc": 0.5}
    assert schema.count_envs(record) == 2  # consecutive from 0
    counters = schema.epoch_counters({"epochs": 9, "backprop_epochs": 2, "ema_epochs": 1})
    assert counters == {"backprop_epochs": 2, "ema_epochs": 1}


def test_docs_name_every_key():
    docs = (REPO / "docs" / "results-format.md").read_text()
    documented = set(re.findall(r"`([A-Za-z_{}<>]+)`", docs))
    missing = [key for key in (*schema.RECORD_KEYS, *schema.SUMMARY_KEYS) if key not in documented]
    assert not missing, f"docs/results-format.md lacks {missing}"
    assert {"env{i}_in_acc", "env{i}_out_acc", "<kind>_epochs"} <= documented


def epoch(previous, number: int, kind: str, accs: dict[str, float]) -> dict:
    return make_record(
        base={schema.ARGS: {"dataset": "Toy", "algorithm": "ERM", "test_envs": [0],
                            "hparams_seed": 0, "trial_seed": 0}, schema.HPARAMS: {}},
        previous=previous, epoch=number, step=10 * number, test_envs=[0], kind=kind,
        epoch_kinds=("gradsamp", "ema"), mode_fields={"ssprop_keep": 1.0},
        losses={} if kind != "backprop" else {"loss": 1.0}, flops=0 if kind != "backprop" else 5,
        accuracies=accs, train_joules=None if number == 2 else 10.0, eval_joules=1.0,
        energy_source="nvml", train_seconds=1.0, eval_seconds=0.5, epoch_seconds=1.5)


def three_epochs() -> list[dict]:
    accs = [{"env0_in_acc": 0.3, "env0_out_acc": 0.9, "env1_in_acc": 0.5, "env1_out_acc": 0.6,
             "env2_in_acc": 0.5, "env2_out_acc": 0.6},
            {"env0_in_acc": 0.4, "env0_out_acc": 0.1, "env1_in_acc": 0.5, "env1_out_acc": 0.8,
             "env2_in_acc": 0.5, "env2_out_acc": 0.8},
            {"env0_in_acc": 0.5, "env0_out_acc": 0.9, "env1_in_acc": 0.5, "env1_out_acc": 0.8,
             "env2_in_acc": 0.5, "env2_out_acc": 0.8}]
    records: list[dict] = []
    for number, (kind, acc) in enumerate(zip(["backprop", "gradsamp", "backprop"], accs), 1):
        records.append(epoch(records[-1] if records else None, number, kind, acc))
    return records


def test_records_and_summary_carry_the_schema_keys():
    records = three_epochs()
    assert set(schema.RECORD_KEYS) <= set(records[0])
    last = records[-1]
    assert schema.epoch_counters(last) == {"backprop_epochs": 2, "gradsamp_epochs": 1,
                                           "ema_epochs": 0}
    assert last[schema.CUM_TRAIN_ENERGY_J] is None  # epoch 2 was unmeasured
    assert last[schema.CUM_TRAIN_FLOPS] == 10 and last[schema.OOD_ACC] == 0.5
    summary = summarize(records, "job", [0])
    assert set(schema.SUMMARY_KEYS) <= set(summary)
    assert summary[schema.EPOCHS] == 3 and summary["gradsamp_epochs"] == 1


def test_selected_ood_acc_is_the_leaderboards_training_domain_rule():
    records = three_epochs()
    # epochs 2 and 3 tie on training-domain validation (0.8): the earliest wins
    assert selected_ood_acc(records, [0]) == records[1][schema.OOD_ACC] == 0.4
    run = run_from_records("toy", records, True, [])
    choice = RULES["training_domain"].select(0, [run])
    assert choice.step == records[1][schema.STEP]
    assert choice.test_acc == selected_ood_acc(records, [0])


def test_history_row_flags_every_counted_epoch_kind():
    records = three_epochs()
    rows = [history_row(record) for record in records]
    assert [row["is_gradsamp_epoch"] for row in rows] == [0, 1, 0]
    assert [row["is_ema_epoch"] for row in rows] == [0, 0, 0]
    assert "is_backprop_epoch" not in rows[0]
