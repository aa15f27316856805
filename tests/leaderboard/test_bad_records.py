"""Results lines that break the results schema: skipped with a warning naming file and line,
the run's other lines still count, and neither the leaderboard nor `dgsamp ensemble` crashes.
Also: the leaderboard follows a symlinked run directory (once, even through a link cycle)."""

from __future__ import annotations

import json
import math
import os

import pytest

from dgsamp.cli import main
from dgsamp.leaderboard.runs import load_runs
from tests.leaderboard.fixtures import records_for, run_args, write_run

GOOD = run_args("PACS", (0,), hparams_seed=0, trial_seed=0, algorithm="ERM", epochs=3)


def with_args(**changes) -> dict:
    return {"args": {**GOOD, **changes}}


@pytest.mark.parametrize(("change", "says"), [
    (with_args(test_envs=0), "args.test_envs is 0"),
    (with_args(test_envs=None), "args.test_envs is None"),
    (with_args(test_envs="0"), "args.test_envs is '0'"),
    (with_args(test_envs=[7]), "names domain 7"),  # PACS has 4 domains: 0..3
    (with_args(trial_seed="first"), "args.trial_seed is 'first'"),
    ({"env1_in_acc": "0.9"}, "'env1_in_acc' is '0.9'"),
    ({"env2_out_acc": math.nan}, "'env2_out_acc' is nan"),
    ({"step": "ten"}, "'step' is 'ten'"),
])
def test_a_bad_line_is_skipped_and_named_the_rest_of_the_run_counts(tmp_path, change, says):
    records = records_for(GOOD, quality=0.0, num_envs=4, measured=False)
    records[1] = {**records[1], **change}
    write_run(tmp_path / "run", records)
    run_set = load_runs([tmp_path])
    assert [record["epoch"] for record in run_set.runs[0].records] == [1, 3]
    bad = [w for w in run_set.warnings if w.startswith(f"{tmp_path / 'run' / 'results.jsonl'}:2: ")]
    assert len(bad) == 1 and says in bad[0] and bad[0].endswith("line skipped"), run_set.warnings


def test_the_leaderboard_cli_warns_and_tabulates_the_good_lines(tmp_path, capsys):
    records = records_for(GOOD, quality=0.0, num_envs=4, measured=False)
    records[0] = {**records[0], **with_args(test_envs="0")}  # the first line, where args are read
    write_run(tmp_path / "run", records)
    assert main(["leaderboard", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "results.jsonl:1: args.test_envs is '0'" in captured.err and "Traceback" not in captured.err
    assert "ERM" in captured.out


def test_a_symlinked_run_directory_is_followed_once(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "run"
    write_run(elsewhere, records_for(GOOD, quality=0.0, num_envs=4, measured=False))
    root = tmp_path / "runs"
    root.mkdir()
    os.symlink(elsewhere, root / "linked")
    os.symlink(root, root / "loop")  # a cycle: runs/loop -> runs
    run_set = load_runs([root])
    assert [run.path for run in run_set.runs] == [str(root / "linked")]


def test_an_ensemble_member_with_a_bad_line_still_counts(tmp_path, capsys):
    from tests.helpers import train_in_process

    run_dir = tmp_path / "run"
    assert train_in_process(run_dir, "--epochs", "1", "--steps_per_epoch", "1") == 0
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["args"]["trial_seed"] = "zero"
    (run_dir / "results.jsonl").write_text("\n".join([json.dumps(bad), *lines]) + "\n")
    capsys.readouterr()
    assert main(["ensemble", str(run_dir), "--method", "eoa", "--output_dir", str(tmp_path / "eoa")]) == 0
    err = capsys.readouterr().err
    assert "results.jsonl:1: args.trial_seed is 'zero'" in err and "Traceback" not in err


def test_a_failed_ensemble_leaves_no_output_directory(tmp_path, capsys):
    from tests.helpers import train_in_process

    run_dir = tmp_path / "run"
    assert train_in_process(run_dir, "--epochs", "1", "--steps_per_epoch", "1") == 0
    capsys.readouterr()
    out = tmp_path / "new" / "eoa"
    # no machine has a 100th GPU: the evaluation refuses the device after the directory was made
    code = main(["ensemble", str(run_dir), "--method", "eoa", "--device", "cuda:99", "--output_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("dgsamp: error: --device cuda:99"), err
    assert not (tmp_path / "new").exists()
