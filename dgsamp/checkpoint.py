"""End-of-epoch checkpoints: everything needed to continue a run as if it never stopped.

A checkpoint is one ``torch.save`` dict written atomically (``dgsamp.atomic``): model and
optimizer states, every RNG state, the batch samplers' positions, GradSamp snapshots,
energy and FLOP totals, and the result records so far. ``results.jsonl`` is rewritten
from those records on resume, so a kill between the two writes never duplicates a line.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dgsamp.atomic import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    atomic_write(run_dir / CHECKPOINT_NAME, lambda handle: torch.save(state, handle))


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


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
