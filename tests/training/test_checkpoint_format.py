"""Checkpoints written before the trainer's state map (format 1: flat keys, GradSamp under
"gradsamp") still resume exactly; an unusable one is refused with one line."""

from __future__ import annotations

import torch

from dgsamp.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from dgsamp.training.trainer import Trainer
from tests.helpers import read_results, train_in_process, without_timing

GRADSAMP = ["--epochs", "4", "--gradsamp", "periodic", "--gradsamp_period", "3", "--algorithm", "DANN"]


def as_format_1(checkpoint: dict) -> dict:
    """The layout the trainer wrote before the state map (the inverse of state.upgrade)."""
    parts = checkpoint["parts"]
    gradsamp = parts.get("mode:gradsamp")
    generators = dict(parts["generators"])
    generators["gradsamp"] = gradsamp["generator"] if gradsamp else torch.Generator().get_state()
    return {
        "job_id": checkpoint["job_id"], "device_type": checkpoint["device_type"], "epoch": checkpoint["epoch"],
        **parts["loop"], "algorithm": parts["algorithm"], "optimizers": parts["optimizers"], "rng": parts["rng"],
        "generators": generators, "train_batches": parts["train_batches"],
        "unlabeled_batches": parts["unlabeled_batches"], "gradsamp": gradsamp["sampler"] if gradsamp else None,
    }


def test_a_format_1_checkpoint_resumes_exactly(tmp_path, monkeypatch):
    whole, old = tmp_path / "whole", tmp_path / "old"
    assert train_in_process(whole, *GRADSAMP) == 0
    # Stop a run after epoch 2 (as Ctrl-C would), then rewrite its checkpoint as format 1.

    run_epoch = Trainer.run_epoch

    def stop_at_epoch_3(self, plan, progress):
        if plan.epoch == 3:
            raise KeyboardInterrupt
        return run_epoch(self, plan, progress)

    monkeypatch.setattr(Trainer, "run_epoch", stop_at_epoch_3)
    assert train_in_process(old, *GRADSAMP) == 130
    monkeypatch.undo()
    checkpoint = load_checkpoint(old)
    torch.save(as_format_1(checkpoint), old / CHECKPOINT_NAME)
    assert "parts" not in load_checkpoint(old)
    assert train_in_process(old, *GRADSAMP) == 0
    assert [without_timing(r) for r in read_results(old)] == [without_timing(r) for r in read_results(whole)]


def test_a_checkpoint_missing_a_part_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    run_epoch = Trainer.run_epoch

    def stop_at_epoch_2(self, plan, progress):
        if plan.epoch == 2:
            raise KeyboardInterrupt
        return run_epoch(self, plan, progress)

    monkeypatch.setattr(Trainer, "run_epoch", stop_at_epoch_2)
    assert train_in_process(tmp_path, "--epochs", "3") == 130
    monkeypatch.undo()
    checkpoint = load_checkpoint(tmp_path)
    del checkpoint["parts"]["train_batches"]
    torch.save(checkpoint, tmp_path / CHECKPOINT_NAME)
    capsys.readouterr()
    assert train_in_process(tmp_path, "--epochs", "3") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "the checkpoint lacks train_batches; pass --no_resume" in lines[0], lines
