"""``dgsamp train --wandb offline``: the W&B history is results.jsonl, row for row."""

from __future__ import annotations

import json

import pytest

from dgsamp.leaderboard.wandb_offline_reader import read_offline_run
from dgsamp.tracking.wandb_sink import history_row
from tests.helpers import TINY_RUN, run_cli

pytestmark = pytest.mark.slow


def test_training_run_logged_offline_matches_results_jsonl(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", *TINY_RUN, "--epochs", "3", "--gradsamp", "periodic", "--gradsamp_period", "3",
                     "--output_dir", str(run_dir), "--wandb", "offline", "--wandb_group", "g1")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["epoch_kind"] for r in records] == ["backprop", "backprop", "gradsamp"]

    run = read_offline_run(run_dir)
    assert run.history == [{**history_row(r), "_step": r["epoch"]} for r in records]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {key: run.summary[key] for key in summary if summary[key] is not None} == {
        key: value for key, value in summary.items() if value is not None}
    assert run.config["args"]["gradsamp"] == "periodic"
    assert run.config["hparams"] == records[0]["hparams"]
    assert run.config["dgsamp_version"]
