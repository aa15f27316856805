"""An average that can never start is refused before training; one that never started is
not claimed by the leaderboard row (the last line says which model was evaluated)."""

from __future__ import annotations

from dgsamp.leaderboard.runs import load_runs
from tests.helpers import TINY_RUN, run_cli
from tests.leaderboard.fixtures import records_for, run_args, write_run


def test_sma_start_beyond_the_run_is_refused_before_training(tmp_path):
    run_dir = tmp_path / "run"
    # TINY_RUN: 2 epochs of 2 steps = 4 updates, so step 5 is never reached
    completed = run_cli("train", *TINY_RUN, "--sma", "--sma_start_step", "5", "--output_dir", str(run_dir))
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert lines == ["dgsamp: error: --sma_start_step 5 is beyond this run's 4 updates, so nothing would be "
                     "averaged; lower --sma_start_step or train longer"], completed.stderr
    assert not run_dir.exists()


def test_a_row_does_not_claim_an_average_that_was_never_evaluated(tmp_path):
    args = {**run_args("PACS", (0,), 0, 0, "ERM", epochs=3), "sma": True, "sma_start_step": 25}
    averaged = records_for(args, quality=0.0, num_envs=4, measured=False)
    never = [dict(record) for record in averaged]
    for record in averaged:
        record["evaluated_model"] = "sma" if record["step"] >= 25 else "online"  # steps 10, 20, 30
    for record in never:
        record["evaluated_model"] = "online"
    write_run(tmp_path / "averaged", averaged)
    write_run(tmp_path / "never", never)
    run_set = load_runs([tmp_path])
    labels = {run.path.rsplit("/", 1)[-1]: run.variant.base_label() for run in run_set.runs}
    assert labels == {"averaged": "ERM + SMA(from 25)", "never": "ERM"}
    assert any(w.startswith(f"{tmp_path / 'never'}: --sma never evaluated its average") for w in run_set.warnings)
