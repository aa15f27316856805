"""End-of-epoch checkpoints: everything needed to continue a run as if it never stopped.

A checkpoint is one ``torch.save`` dict written atomically (``dgsamp.utils.atomic``): model and
optimizer states (with their param groups, so the LR schedule's ``initial_lr`` and current
``lr``), every RNG state, the batch samplers' positions, GradSamp snapshots, the epoch and
step counters, and the result records so far (which carry the energy and FLOP totals).
``results.jsonl`` is rewritten from those records on resume, so a kill between the two
writes never duplicates or loses a line.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
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


def global_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
