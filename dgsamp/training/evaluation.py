"""Accuracy of every domain split, with one host synchronisation per split.

Each chunk moves to the model's device before its transform, so normalisation runs there.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from dgsamp.data.domain_tensors import DomainTensors


@torch.no_grad()
def evaluate(
    algorithm,
    splits: dict[str, DomainTensors],
    transform,
    batch_size: int,
    autocast: AbstractContextManager,
) -> dict[str, float]:
    """``{"env0_in_acc": 0.81, ...}``: fraction of items whose argmax logit is the label."""
    device = next(algorithm.parameters()).device
    was_training = algorithm.training
    algorithm.eval()
    correct = {}
    for name, data in splits.items():
        hits = torch.zeros((), dtype=torch.int64, device=device)
        for start in range(0, len(data), batch_size):
            x = transform(data.x[start : start + batch_size].to(device, non_blocking=True))
            y = data.y[start : start + batch_size].to(device, non_blocking=True)
            with autocast:
                logits = algorithm.predict(x)
            hits += (logits.argmax(dim=1) == y).sum()
        correct[name] = (hits, len(data))
    algorithm.train(was_training)
    return {f"{name}_acc": (hits.item() / total if total else 0.0) for name, (hits, total) in correct.items()}
