"""WandbSink on real offline W&B runs, read back from the .wandb file; failures never stop a run.

No W&B server exists here: online mode is only exercised up to W&B's own refusal
(no API key), which is the failure a user without ``wandb login`` meets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dgsamp import __version__
from dgsamp.leaderboard.wandb_offline_reader import read_offline_run
from dgsamp.tracking.wandb_sink import RUN_ID_FILE, WandbSink, history_row, run_metadata
from tests.helpers import REPO


def results_record(epoch: int, kind: str) -> dict:
    """A results.jsonl line as the trainer writes it (docs/results-format.md)."""
    gradsamp = kind == "gradsamp"
    return {
        "args": {"dataset": "PACSMini", "test_envs": [0], "gradsamp": "periodic"},
        "hparams": {"lr": 5e-5, "batch_size": 32},
        "epoch": epoch, "step": 5 * epoch,
        "env0_in_acc": 0.25 + 0.01 * epoch, "env0_out_acc": 0.2, "env1_in_acc": 0.5,
        "env1_out_acc": 0.625, "env2_in_acc": 0.75, "env2_out_acc": 0.7, "env3_in_acc": 0.1,
        "env3_out_acc": 0.3, "ood_acc": 0.25 + 0.01 * epoch,
        "loss": None if gradsamp else 1.0 / epoch, "epoch_kind": kind, "ssprop_keep": 1.0,
        "train_energy_J": None, "eval_energy_J": None, "energy_source": "unavailable",
        "train_flops": 0 if gradsamp else 123_456_789_000 * epoch,
        "train_seconds": 1.5, "eval_seconds": 0.25, "epoch_seconds": 1.75,
        "cum_train_energy_J": None, "cum_train_flops": 999 * epoch,
        "backprop_epochs": epoch - int(gradsamp), "gradsamp_epochs": int(gradsamp),
    }


RECORDS = [results_record(1, "backprop"), results_record(2, "backprop"), results_record(3, "gradsamp")]
SUMMARY = {"final_ood_acc": 0.28, "selected_ood_acc": 0.27, "total_train_energy_J": None,
           "cum_train_flops": 2997, "backprop_epochs": 2, "gradsamp_epochs": 1,
           "train_seconds": 4.5}  # also a history key: the summary's total must win over the last row


def new_sink(run_dir: Path, mode: str = "offline") -> WandbSink:
    config = {"args": RECORDS[0]["args"], "hparams": RECORDS[0]["hparams"]}
    return WandbSink(mode, "dgsamp-tests", None, "sweep-a", ["erm", "pacs"], config, run_dir, "job123")


def test_history_row_keeps_every_numeric_metric_and_the_epoch_kind():
    row = history_row(RECORDS[2])
    assert row["epoch_kind"] == "gradsamp" and row["is_gradsamp_epoch"] == 1
    assert row["energy_source"] == "unavailable"
    assert "loss" not in row and "train_energy_J" not in row  # nulls are left out
    assert "args" not in row and "hparams" not in row
    numeric = {k for k, v in RECORDS[2].items() if isinstance(v, int | float)}
    assert numeric <= set(row) and {f"env{i}_{s}_acc" for i in range(4) for s in ("in", "out")} <= set(row)
    assert history_row(RECORDS[0])["is_gradsamp_epoch"] == 0


def test_offline_run_reads_back_exact_history_summary_and_config(tmp_path, capsys):
    sink = new_sink(tmp_path)
    for record in RECORDS:
        sink.log_epoch(record)
    sink.finish(SUMMARY)
    assert "warning" not in capsys.readouterr().err

    run = read_offline_run(tmp_path)
    assert run.run_id == (tmp_path / "wandb" / RUN_ID_FILE).read_text().strip()
    assert run.history == [{**history_row(record), "_step": record["epoch"]} for record in RECORDS]
    assert {key: run.summary[key] for key in SUMMARY} == SUMMARY
    assert run.config["args"] == RECORDS[0]["args"] and run.config["hparams"] == RECORDS[0]["hparams"]
    assert run.config["dgsamp_version"] == __version__ and run.config["job_id"] == "job123"
    assert "git_commit" in run.config


def test_a_restarted_run_continues_the_same_wandb_run(tmp_path):
    first = new_sink(tmp_path)
    for record in RECORDS[:2]:
        first.log_epoch(record)
    first.finish({})
    run_id = (tmp_path / "wandb" / RUN_ID_FILE).read_text().strip()

    second = new_sink(tmp_path)  # the trainer restarted in the same directory
    second.log_epoch(RECORDS[2])
    second.finish(SUMMARY)

    assert (tmp_path / "wandb" / RUN_ID_FILE).read_text().strip() == run_id
    starts = sorted((tmp_path / "wandb").glob(f"offline-run-*-{run_id}*"))
    assert len(starts) == 2 and all(len(list(d.glob("run-*.wandb"))) == 1 for d in starts)
    run = read_offline_run(tmp_path)
    assert [row["epoch"] for row in run.history] == [1, 2, 3]
    assert [row["_step"] for row in run.history] == [1, 2, 3]
    assert {key: run.summary[key] for key in SUMMARY} == SUMMARY

    # W&B names a restart within the same second <time>-<id>-1: still read in order
    first_time = starts[0].name.split("-")[2]
    starts[1].rename(starts[1].with_name(f"offline-run-{first_time}-{run_id}-1"))
    assert [row["epoch"] for row in read_offline_run(tmp_path).history] == [1, 2, 3]


def run_python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120, stdin=subprocess.DEVNULL)


def test_disabled_never_imports_wandb_nor_writes_files(tmp_path):
    result = run_python(f"""
        import sys
        from pathlib import Path
        from dgsamp.tracking.wandb_sink import WandbSink
        sink = WandbSink("disabled", None, None, None, [], {{}}, Path({str(tmp_path)!r}), "j")
        sink.log_epoch({{"epoch": 1, "ood_acc": 0.5}})
        sink.finish({{"final_ood_acc": 0.5}})
        print("wandb imported:", "wandb" in sys.modules)
    """, dict(os.environ), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wandb imported: False"
    assert result.stderr == ""
    assert not (tmp_path / "wandb").exists()


def test_online_without_an_api_key_warns_once_and_the_run_goes_on(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(home), WANDB_CONFIG_DIR=str(home / ".config" / "wandb"))
    result = run_python(f"""
        from pathlib import Path
        from dgsamp.tracking.wandb_sink import WandbSink
        sink = WandbSink("online", "p", None, None, [], {{}}, Path({str(tmp_path / "run")!r}), "j")
        for epoch in (1, 2, 3):
            sink.log_epoch({{"epoch": epoch, "ood_acc": 0.5}})
        sink.finish({{"final_ood_acc": 0.5}})
        print("trained on")
    """, env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "trained on"
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("dgsamp: warning: W&B logging turned off (could not start the W&B run")
    assert "API key" in warnings[0] and "results.jsonl" in warnings[0]


def test_an_init_failure_turns_the_sink_off_with_one_line(tmp_path, capsys):
    (tmp_path / "wandb").write_text("a file where W&B wants its folder\n")
    sink = new_sink(tmp_path)
    sink.log_epoch(RECORDS[0])
    sink.finish(SUMMARY)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("dgsamp: warning: W&B logging turned off")
    assert not sink.active


def test_a_failure_while_logging_turns_the_sink_off(tmp_path, capsys):
    sink = new_sink(tmp_path)
    sink.log_epoch(RECORDS[0])
    sink.run.finish()  # W&B's run ends behind the sink's back (like a crashed W&B service)
    capsys.readouterr()
    sink.log_epoch(RECORDS[1])
    sink.log_epoch(RECORDS[2])
    sink.finish(SUMMARY)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "could not log an epoch to W&B" in err[0]
    assert [row["epoch"] for row in read_offline_run(tmp_path).history] == [1]


def test_unknown_mode_is_a_bug_not_a_warning(tmp_path):
    with pytest.raises(ValueError, match="W&B mode"):
        WandbSink("sometimes", None, None, None, [], {}, tmp_path, "j")


def test_run_metadata_names_the_version_and_the_checkout_commit():
    metadata = run_metadata()
    assert metadata["dgsamp_version"] == __version__
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout (CI and development); an sdist install has none
        assert metadata["git_commit"] == head.stdout.strip()
        assert isinstance(metadata["git_dirty"], bool)
    else:
        assert metadata["git_commit"] is None
