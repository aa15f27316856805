"""The trainer's state as one map ``{name: part}``; checkpoints are derived from it.

Every part has ``state_dict()`` / ``load_state_dict(state)`` (an ``nn.Module``, an
optimizer, a training mode, the batch samplers, ...). Saving walks the map; resuming
walks it again, so a new stateful part is saved and restored by adding it to the map once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from dgsamp.errors import UserError

FORMAT = 2  # checkpoints without "format" were written before the state map (format 1)


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


class Each:
    """A list of stateful parts saved as a list of their states (same length on resume)."""

    def __init__(self, name: str, parts: Sequence[Stateful]) -> None:
        self.name, self.parts = name, list(parts)

    def state_dict(self) -> list[Any]:
        return [part.state_dict() for part in self.parts]

    def load_state_dict(self, states: list[Any]) -> None:
        if len(states) != len(self.parts):
            raise UserError(f"the checkpoint has {len(states)} {self.name}, this run {len(self.parts)}; "
                            "pass --no_resume to start over")
        for part, state in zip(self.parts, states):
            part.load_state_dict(state)


class Generators:
    """Named ``torch.Generator`` s (batches, augmentation)."""

    def __init__(self, generators: Mapping[str, torch.Generator]) -> None:
        self.generators = dict(generators)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: generator.get_state() for name, generator in self.generators.items()}

    def load_state_dict(self, states: Mapping[str, torch.Tensor]) -> None:
        for name, generator in self.generators.items():
            generator.set_state(states[name])


class GlobalRNG:
    """Python, NumPy, torch CPU and CUDA generator states."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


def save_parts(parts: Mapping[str, Stateful]) -> dict[str, Any]:
    return {name: part.state_dict() for name, part in parts.items()}


def load_parts(parts: Mapping[str, Stateful], states: Mapping[str, Any], where: str) -> None:
    """Restore every part; a part missing from the checkpoint (or an extra one) is refused."""
    missing = sorted(set(parts) - set(states))
    extra = sorted(set(states) - set(parts))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"holds {extra[0]}, which this run does not have"
        raise UserError(f"{where}: the checkpoint {what}; pass --no_resume to start over")
    for name, part in parts.items():
        part.load_state_dict(states[name])


def upgrade(checkpoint: dict[str, Any], active_modes: Sequence[str]) -> dict[str, Any]:
    """A format-1 checkpoint (flat keys, GradSamp under "gradsamp") in today's layout; the
    other modes of that time (ssProp) kept no state."""
    if checkpoint.get("format") == FORMAT:
        return checkpoint
    generators = dict(checkpoint["generators"])
    gradsamp_generator = generators.pop("gradsamp", None)
    parts = {
        "loop": {"epoch": checkpoint["epoch"], "step": checkpoint["step"], "records": checkpoint["records"]},
        "algorithm": checkpoint["algorithm"],
        "optimizers": checkpoint["optimizers"],
        "rng": checkpoint["rng"],
        "generators": generators,
        "train_batches": checkpoint["train_batches"],
        "unlabeled_batches": checkpoint["unlabeled_batches"],
    }
    if checkpoint.get("gradsamp") is not None:
        parts["mode:gradsamp"] = {"sampler": checkpoint["gradsamp"], "generator": gradsamp_generator}
    parts.update({f"mode:{name}": {} for name in active_modes if name != "gradsamp"})
    return {"format": FORMAT, "job_id": checkpoint["job_id"], "device_type": checkpoint.get("device_type"),
            "epoch": checkpoint["epoch"], "parts": parts}
