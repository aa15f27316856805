"""``--keep_checkpoints selected``: keep the weights of the model that model selection picks.

DomainBed's training-domain validation picks, within one run, the evaluation with the best
mean out-split accuracy of the training domains
(:func:`dgsamp.tracking.schema.best_training_domain_record`; the earliest wins a tie).
After every evaluation the trainer calls :func:`keep_if_selected`: when the record just
written is now the selected one, the evaluated model's weights (the averaged model for
EMA/SMA/SWAD, else the online one) replace ``selected_model.pt`` atomically, with the
epoch and step they belong to. ``dgsamp adapt`` reads this file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from dgsamp.tracking import schema
from dgsamp.utils.atomic import atomic_write

SELECTED_MODEL_FILE = "selected_model.pt"
KEEP_CHOICES = ("none", "selected")


def keep_if_selected(run_dir: Path, records: Sequence[Mapping[str, Any]], model: torch.nn.Module,
                     job_id: str, test_envs: Sequence[int]) -> bool:
    """Save ``model`` (which ``records[-1]`` evaluated) when ``records[-1]`` is the selected
    record of ``records``; True when it was saved."""
    best, validation_accuracy = schema.best_training_domain_record(records, test_envs)
    if best is not records[-1]:
        return False
    saved = {"state_dict": model.state_dict(), "job_id": job_id, schema.EPOCH: int(best[schema.EPOCH]),
             schema.STEP: int(best[schema.STEP]), "validation_accuracy": validation_accuracy,
             schema.EVALUATED_MODEL: best.get(schema.EVALUATED_MODEL, schema.ONLINE)}
    atomic_write(run_dir / SELECTED_MODEL_FILE, lambda handle: torch.save(saved, handle))
    return True
