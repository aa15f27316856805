"""End-of-epoch checkpoints: everything needed to continue a run as if it never stopped.

A checkpoint is one ``torch.save`` dict written atomically (``dgsamp.utils.atomic``):
``{"format", "job_id", "device_type", "epoch", "parts"}`` where ``parts`` is the trainer's
state map (``dgsamp.training.state``): model and optimizer states (with their param groups,
so the LR schedule's ``initial_lr`` and current ``lr``), every RNG state, the batch
samplers' positions, each training mode's state, the epoch and step counters, and the
result records so far (which carry the energy and FLOP totals).
``results.jsonl`` is rewritten from those records on resume, so a kill between the two
writes never duplicates or loses a line.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from dgsamp.errors import UserError
from dgsamp.training.crashpoints import pause_here
from dgsamp.utils.atomic import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Replace ``RUN_DIR/checkpoint.pt`` by ``state`` (needs ``state["epoch"]``), atomically."""

    def write(handle) -> None:
        torch.save(state, handle)
        handle.flush()
        pause_here("checkpoint", state["epoch"], run_dir)

    atomic_write(run_dir / CHECKPOINT_NAME, write)


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The state saved by ``save_checkpoint``, or None if the run has none yet."""
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:200]
        raise UserError(
            f"{path} is unreadable ({type(error).__name__}: {reason}); pass --no_resume to move "
            "this run aside and start over"
        ) from None
