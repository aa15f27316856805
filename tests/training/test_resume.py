"""Crash-safe resume: a run stopped anywhere and restarted ends with the records of an unbroken run.

Compared records go through ``without_timing``: wall-clock seconds and measured energy
(null here, "unavailable" on CPU, but measured on a GPU) legitimately differ between two
runs; everything else (accuracies, losses, steps, epoch kinds, FLOPs, counts) must be equal
bit for bit on CPU with the same seeds.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dgsamp.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from dgsamp.training.crashpoints import ENV_VAR
from dgsamp.training.trainer import Trainer
from tests.helpers import TINY_RUN, read_results, run_cli, train_in_process, without_timing

# DANN (two optimizers, an alternating step counter, unlabeled batches unused in DG) with
# GradSamp epoch 3 sampled from the snapshots of epochs 1 and 2, and a cosine LR schedule
# whose initial_lr lives in the optimizers' param groups.
DANN_GRADSAMP = [*TINY_RUN, "--epochs", "4", "--algorithm", "DANN", "--gradsamp", "periodic",
                 "--gradsamp_period", "3", "--lr_schedule", "cosine"]
# Mixup draws its mixing weights from NumPy's global RNG; ssProp keeps half the channels.
MIXUP_SSPROP = [*TINY_RUN, "--epochs", "3", "--algorithm", "Mixup", "--ssprop", "constant",
                "--ssprop_keep", "0.5"]
WAIT_LIMIT_S = 600  # a guard against a hung child, not a timing assertion


def comparable(run_dir: Path) -> list[dict]:
    return [without_timing(record) for record in read_results(run_dir)]


def comparable_summary(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v for k, v in summary.items() if "seconds" not in k and "energy_J" not in k}


# ------------------------------------------------------------------ in-process interruption
def test_resume_after_epoch_2_continues_exactly(tmp_path, monkeypatch):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert train_in_process(whole, *DANN_GRADSAMP) == 0

    run_epoch = Trainer.run_epoch

    def stop_at_epoch_3(self, plan, progress):
        if plan.epoch == 3:
            raise KeyboardInterrupt  # what Ctrl-C does at the start of epoch 3
        return run_epoch(self, plan, progress)

    monkeypatch.setattr(Trainer, "run_epoch", stop_at_epoch_3)
    assert train_in_process(resumed, *DANN_GRADSAMP) == 130
    monkeypatch.undo()

    checkpoint = load_checkpoint(resumed)
    assert checkpoint["epoch"] == 2 and set(checkpoint["parts"]) == {
        "loop", "algorithm", "optimizers", "rng", "generators", "train_batches", "unlabeled_batches",
        "mode:gradsamp"}
    state = checkpoint["parts"]
    assert state["loop"]["step"] == 4 and len(state["loop"]["records"]) == 2
    assert not (resumed / "done").exists()
    assert set(state["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert set(state["generators"]) == {"batches", "augment"}
    sampler = state["mode:gradsamp"]["sampler"]
    assert sampler["previous"] is not None and sampler["older"] is not None
    assert int(state["algorithm"]["steps.count"]) == 4  # DANN's alternating counter
    assert len(state["optimizers"]) == 2
    for optimizer in state["optimizers"]:
        for group in optimizer["param_groups"]:
            assert 0 < group["lr"] < group["initial_lr"]  # cosine: decayed from the stored start
    assert state["loop"]["records"][-1]["cum_train_flops"] > 0

    assert train_in_process(resumed, *DANN_GRADSAMP) == 0
    assert [r["epoch_kind"] for r in read_results(resumed)] == ["backprop", "backprop", "gradsamp", "backprop"]
    assert comparable(resumed) == comparable(whole)
    assert comparable_summary(resumed) == comparable_summary(whole)
    final_whole = torch.load(whole / "model.pt", weights_only=False)["state_dict"]
    final_resumed = torch.load(resumed / "model.pt", weights_only=False)["state_dict"]
    assert final_whole.keys() == final_resumed.keys()
    assert all(torch.equal(final_whole[k], final_resumed[k]) for k in final_whole)


def test_no_resume_moves_old_directories_aside_never_deletes(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "precious.txt").write_text("keep me")
    assert train_in_process(run_dir, "--epochs", "1", "--no_resume") == 0
    assert train_in_process(run_dir, "--epochs", "1", "--no_resume") == 0
    asides = sorted(tmp_path.glob("run.old-*"))
    assert len(asides) == 2, asides
    by_content = {a: sorted(p.name for p in a.iterdir()) for a in asides}
    first = next(a for a in asides if (a / "precious.txt").exists())
    assert (first / "precious.txt").read_text() == "keep me"
    second = next(a for a in asides if a != first)
    assert {"done", "results.jsonl", CHECKPOINT_NAME} <= set(by_content[second])
    assert (run_dir / "done").exists() and not (run_dir / "precious.txt").exists()
    assert comparable(second) == comparable(run_dir)


def test_checkpoint_of_a_different_run_is_a_user_error(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train_in_process(run_dir, "--epochs", "1") == 0
    capsys.readouterr()
    assert train_in_process(run_dir, "--epochs", "1", "--seed", "1") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "holds a checkpoint of a different run" in lines[0], lines
    assert "--no_resume" in lines[0]
    assert len(read_results(run_dir)) == 1  # untouched


def test_unreadable_checkpoint_is_a_user_error(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 not a whole zip archive")
    assert train_in_process(run_dir) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is unreadable" in lines[0] and "--no_resume" in lines[0], lines


# ------------------------------------------------------------------ SIGKILL in subprocesses
def child_env(pause: str | None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    env.pop(ENV_VAR, None)
    if pause is not None:
        env[ENV_VAR] = pause
    return env


def start_train(argv: list[str], run_dir: Path, log: Path, pause: str | None = None) -> subprocess.Popen:
    with log.open("ab") as handle:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "dgsamp", "train", *argv, "--output_dir", str(run_dir)],
            stdout=handle, stderr=subprocess.STDOUT, env=child_env(pause),
        )


def wait_until(condition, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended (code {process.returncode}) before the kill point:\n{log.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no kill point after {WAIT_LIMIT_S} s:\n{log.read_text()}")
        time.sleep(0.02)


def sigkill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


def kill_at(argv: list[str], run_dir: Path, log: Path, point: str, epoch: int) -> None:
    """Run until the crash point ``point:epoch`` is reached, then SIGKILL."""
    process = start_train(argv, run_dir, log, pause=f"{point}:{epoch}")
    marker = run_dir / f".paused-{point}-{epoch}"
    wait_until(marker.exists, process, log)
    sigkill(process)
    marker.unlink()


def kill_at_random(argv: list[str], run_dir: Path, log: Path, rng: random.Random) -> None:
    """Let the resumed run start, then SIGKILL it at a random moment (maybe after it ended)."""
    process = start_train(argv, run_dir, log)
    resumes = log.read_text().count("resuming")
    wait_until(lambda: log.read_text().count("resuming") > resumes, process, log)
    time.sleep(rng.uniform(0.0, 3.0))
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        assert process.wait() in (-signal.SIGKILL, 0)  # 0: it finished between poll() and the signal


def assert_consistent(run_dir: Path) -> None:
    """After any kill: every line parses, epochs are 1..n once each, the checkpoint is a prefix."""
    results = run_dir / "results.jsonl"
    records = read_results(run_dir) if results.exists() else []  # json.loads raises on a torn line
    assert [r["epoch"] for r in records] == list(range(1, len(records) + 1))
    state = load_checkpoint(run_dir)
    if state is not None:
        assert records[: state["epoch"]] == json.loads(json.dumps(state["parts"]["loop"]["records"]))
        assert len(records) in (state["epoch"], state["epoch"] + 1)


def finish(argv: list[str], run_dir: Path, log: Path) -> None:
    process = start_train(argv, run_dir, log)
    assert process.wait(WAIT_LIMIT_S) == 0, log.read_text()
    assert (run_dir / "done").exists()
    assert not list(run_dir.glob(".*.tmp")), "stale temp files were not cleaned up"


@pytest.mark.parametrize(
    ("argv", "kills"),
    [
        (DANN_GRADSAMP, [("eval", 2), ("checkpoint", 3), "random"]),
        (MIXUP_SSPROP, [("train", 2), "random"]),
    ],
    ids=["dann-gradsamp", "mixup-ssprop"],
)
def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_results(tmp_path, argv, kills):
    reference_dir, run_dir, log = tmp_path / "reference", tmp_path / "killed", tmp_path / "log.txt"
    reference = start_train(argv, reference_dir, tmp_path / "reference.txt")  # runs alongside
    seed = random.randrange(2**16)
    rng = random.Random(seed)
    for kill in kills:
        if kill == "random":
            kill_at_random(argv, run_dir, log, rng)
        else:
            point, epoch = kill
            kill_at(argv, run_dir, log, point, epoch)
            if point == "checkpoint":  # killed between writing the temp file and renaming it
                assert list(run_dir.glob(f".{CHECKPOINT_NAME}.*.tmp"))
                assert load_checkpoint(run_dir)["epoch"] == epoch - 1
                assert len(read_results(run_dir)) == epoch  # results.jsonl is one epoch ahead
        assert_consistent(run_dir)
    if not (run_dir / "done").exists():
        finish(argv, run_dir, log)
    assert reference.wait(WAIT_LIMIT_S) == 0, (tmp_path / "reference.txt").read_text()
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(read_results(reference_dir)), f"random kill seed {seed}"
    assert comparable(run_dir) == comparable(reference_dir), f"random kill seed {seed}"
    assert comparable_summary(run_dir) == comparable_summary(reference_dir)


# ------------------------------------------------------------------ non-finite loss
FAILING_ALGORITHMS = '''
import torch
from dgsamp.algorithms.erm import ERM
from dgsamp.registry import register_algorithm


@register_algorithm("NaNInputsFromEpoch2")
class NaNInputsFromEpoch2(ERM):
    """ERM fed NaN images from its 3rd update on (epoch 2 at 2 steps per epoch): NaN loss."""

    updates = 0

    def update(self, minibatches, unlabeled=None):
        self.updates += 1
        if self.updates >= 3:
            minibatches = [(x * float("nan"), y) for x, y in minibatches]
        return super().update(minibatches, unlabeled)


@register_algorithm("NaNWeightsEndOfEpoch2")
class NaNWeightsEndOfEpoch2(ERM):
    """ERM whose classifier turns NaN after the last update of epoch 2; every loss is finite."""

    updates = 0

    def update(self, minibatches, unlabeled=None):
        losses = super().update(minibatches, unlabeled)
        self.updates += 1
        if self.updates == 4:
            with torch.no_grad():
                next(self.classifier.parameters()).fill_(float("nan"))
        return losses
'''


@pytest.mark.parametrize(
    ("algorithm", "reason"),
    [
        ("NaNInputsFromEpoch2", "non-finite training loss 'loss' in epoch 2"),
        ("NaNWeightsEndOfEpoch2", "non-finite parameters after epoch 2"),
    ],
)
def test_non_finite_training_stops_keeps_last_good_checkpoint_and_says_why(tmp_path, algorithm, reason):
    plugin = tmp_path / "failing.py"
    plugin.write_text(FAILING_ALGORITHMS)
    run_dir = tmp_path / "run"
    completed = run_cli("train", *TINY_RUN, "--epochs", "3", "--plugin", str(plugin),
                        "--algorithm", algorithm, "--output_dir", str(run_dir))
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert reason in lines[0] and "last good checkpoint (epoch 1)" in lines[0], lines[0]
    failed = json.loads((run_dir / "failed.json").read_text())
    assert failed == {"reason": reason, "epoch": 2}
    records = read_results(run_dir)
    assert [r["epoch"] for r in records] == [1] and all(
        v == v for r in records for v in r.values() if isinstance(v, float)  # no NaN recorded
    )
    state = load_checkpoint(run_dir)
    assert state["epoch"] == 1 and state["parts"]["loop"]["records"] == records
    assert all(torch.isfinite(t).all() for t in state["parts"]["algorithm"].values() if t.is_floating_point())
    assert not (run_dir / "done").exists() and not (run_dir / "model.pt").exists()
