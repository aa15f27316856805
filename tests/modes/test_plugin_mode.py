"""A third-party training mode in one file (the README's EMA example ``ema_example``, as printed) gets CLI
flags, validation, checkpointing, results and W&B fields and leaderboard rows."""

from __future__ import annotations

import re

import pytest
import torch

from dgsamp.leaderboard.wandb_offline_reader import read_offline_run
from dgsamp.training.checkpoint import load_checkpoint
from tests.helpers import (
    REPO,
    TINY_RUN,
    read_results,
    run_cli,
    run_whole_and_killed,
    without_timing,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ema_plugin(tmp_path_factory):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    example = next(block for block in blocks if block.startswith("# my_ema.py"))
    assert 25 <= len(example.strip().splitlines()) <= 45  # "a complete ~30-line example mode"
    path = tmp_path_factory.mktemp("plugin") / "my_ema.py"
    path.write_text(example)
    return path


def test_example_mode_trains_checkpoints_and_logs_its_fields(tmp_path, ema_plugin):
    run_dir = tmp_path / "ema"
    done = run_cli("train", *TINY_RUN, "--plugin", str(ema_plugin), "--ema_example", "--ema_example_decay", "0.5",
                   "--wandb", "offline", "--output_dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    records = read_results(run_dir)
    assert [r["evaluated_model"] for r in records] == ["ema_example", "ema_example"]
    assert records[0]["args"]["ema_example"] is True and records[0]["args"]["ema_example_decay"] == 0.5
    history = read_offline_run(run_dir).history
    assert [row["evaluated_model"] for row in history] == ["ema_example", "ema_example"]
    parts = load_checkpoint(run_dir)["parts"]
    average, current = parts["mode:ema_example"], parts["algorithm"]
    assert average.keys() == current.keys()
    assert any(not torch.equal(average[k], current[k]) for k in average if average[k].is_floating_point())


def test_example_mode_flags_are_validated(tmp_path, ema_plugin):
    without_switch = run_cli("train", *TINY_RUN, "--plugin", str(ema_plugin), "--ema_example_decay", "0.5",
                             "--output_dir", str(tmp_path / "a"))
    assert without_switch.returncode == 2
    assert without_switch.stderr.strip() == (
        "dgsamp: error: --ema_example_decay has no effect without --ema_example; drop it or add --ema_example")
    out_of_range = run_cli("train", *TINY_RUN, "--plugin", str(ema_plugin), "--ema_example",
                           "--ema_example_decay", "1.5",
                           "--output_dir", str(tmp_path / "b"))
    assert out_of_range.returncode == 2
    assert out_of_range.stderr.strip() == "dgsamp: error: --ema_example_decay must be in (0, 1), got 1.5"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    listed = run_cli("list", "modes", "--plugin", str(ema_plugin))
    assert listed.stdout.splitlines()[-1].startswith("ema_example: Evaluate w_ema")
    assert "--ema_example_decay" in listed.stdout
    both = run_cli("train", *TINY_RUN, "--plugin", str(ema_plugin), "--ema_example", "--sma",
                   "--output_dir", str(tmp_path / "c"))
    assert both.stderr.strip() == (
        "dgsamp: error: --sma and --ema_example each choose the model to evaluate; use one of them")


def test_example_mode_resumes_after_sigkill_with_identical_results(tmp_path, ema_plugin):
    whole, killed = run_whole_and_killed(
        [*TINY_RUN, "--epochs", "3", "--plugin", str(ema_plugin), "--ema_example", "--ema_example_decay", "0.7"],
        tmp_path)
    assert [without_timing(r) for r in read_results(killed)] == [without_timing(r) for r in read_results(whole)]


def test_example_mode_runs_get_their_own_leaderboard_rows(tmp_path, ema_plugin):
    for name, extra in (("plain", []), ("ema", ["--ema_example", "--ema_example_decay", "0.5"])):
        done = run_cli("train", *TINY_RUN, "--plugin", str(ema_plugin), *extra,
                       "--output_dir", str(tmp_path / "runs" / name))
        assert done.returncode == 0, done.stderr
    table = run_cli("leaderboard", str(tmp_path / "runs"), "--plugin", str(ema_plugin))
    assert table.returncode == 0, table.stderr
    labels = {line.split(" | ")[0] for line in table.stdout.splitlines() if line.startswith("| ERM")}
    assert labels == {"| ERM", "| ERM + ema_example(ema_example_decay=0.5)"}, table.stdout
