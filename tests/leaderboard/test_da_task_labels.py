"""The column name of a DA task: the run's own ``args.task_label``, else the label ``dgsamp
train`` writes (tllib's names: Office-Home's ``Ar→Cl``, not the DG columns' ``A→C``)."""

from __future__ import annotations

import json
from pathlib import Path

from dgsamp.leaderboard.adaptation_selection import ADAPTATION_RULES
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.tables import build_leaderboard


def write_da_run(root: Path, name: str, dataset: str, source: int, target: int, **extra_args) -> None:
    """A finished two-domain DA run with one evaluation point (target accuracy 0.6)."""
    args = {"dataset": dataset, "algorithm": "DANN", "backbone": "resnet50", "protocol": "tllib",
            "task": "domain_adaptation", "test_envs": [target], "source": [source], "target": [target],
            "hparams_seed": 0, "trial_seed": 0, "epochs": 1, **extra_args}
    record = {"args": args, "hparams": {}, "epoch": 1, "step": 9, "epoch_kind": "backprop",
              f"env{source}_in_acc": 0.9, f"env{source}_out_acc": 0.8,
              f"env{target}_in_acc": 0.6, f"env{target}_out_acc": 0.5, "source_val_acc": 0.8}
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "results.jsonl").write_text(json.dumps(record) + "\n")
    (run_dir / "done").write_text("")


def columns(root: Path) -> dict[str, list[str]]:
    leaderboard = build_leaderboard(load_runs([root]), ADAPTATION_RULES["target_oracle"])
    return {table.dataset: table.env_names for table in leaderboard.tables}


def test_task_columns_use_the_recorded_label_else_the_training_label(tmp_path: Path):
    write_da_run(tmp_path, "office_home", "OfficeHome", source=0, target=1)  # no task_label recorded
    write_da_run(tmp_path, "office31", "Office31", source=0, target=2, task_label="amazon→webcam")
    write_da_run(tmp_path, "lab", "LabDatasetNotRegistered", source=3, target=1)
    assert columns(tmp_path) == {
        "OfficeHome": ["Ar→Cl"],  # TASK_SHORT_NAMES, as tllib's tables and `dgsamp train` write it
        "Office31": ["amazon→webcam"],  # what the run recorded wins
        "LabDatasetNotRegistered": ["env3→env1"],
    }
