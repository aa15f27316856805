"""Accuracy and mean cross-entropy of every domain split, with one host synchronisation.

Each chunk moves to the model's device before its transform, so normalisation runs there.
For datasets scored by mean per-class accuracy (``ACCURACY == "mean_per_class"``: VisDA-2017)
each split also gets ``{split}_mpca`` = (1/|C|) sum_{c in C} hits_c / n_c over the classes C
present in the split (``dgsamp.scores.accuracy.mean_per_class_accuracy``), counted on the
device with one ``torch.bincount`` per chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dgsamp.data.training_data import DomainTensors


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of one model.

    ``accuracies``: ``{"env0_in_acc": 0.81, ...}``, fraction of items whose argmax logit is
    the label (the results line's keys), and ``{"env0_in_mpca": 0.77, ...}`` when asked for
    mean per-class accuracy; ``losses``: ``{"env0_in_loss": 0.52, ...}``, mean
    cross-entropy per split (0.0 for an empty split, like its accuracy); ``scores``: a
    domain-adaptation run's label-free validation scores (``dgsamp.training.adaptation_scores``),
    empty in domain generalization.
    """

    accuracies: dict[str, float]
    losses: dict[str, float]
    test_envs: tuple[int, ...]
    scores: dict[str, float | None] = field(default_factory=dict)

    @property
    def validation_loss(self) -> float:
        """Mean over the training domains of their out-split cross-entropy (the training-domain
        validation loss; SWAD's ``tr_outloss``)."""
        values = [value for name, value in self.losses.items()
                  if name.endswith("_out_loss") and int(name[3:].split("_")[0]) not in self.test_envs]
        return sum(values) / len(values)


@torch.no_grad()
def evaluate(
    algorithm,
    splits: dict[str, DomainTensors],
    transform,
    batch_size: int,
    autocast: AbstractContextManager,
    test_envs: Sequence[int] = (),
    split_transforms: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    per_class_of: int | None = None,
) -> Evaluation:
    """Accuracy and mean cross-entropy of ``algorithm.predict`` on every split.

    ``split_transforms[name]`` replaces ``transform`` for split ``name`` (DomainBed evaluates
    the training domains' splits through their training augmentation). ``per_class_of``: the
    number of classes K; given, every split also reports its mean per-class accuracy.
    """
    device = next(algorithm.parameters()).device
    classes = per_class_of or 0
    was_training = algorithm.training
    algorithm.eval()
    sums = []  # per split: [hits, summed cross-entropy, misses per class (K), hits per class (K)]
    for name, data in splits.items():
        split_transform = (split_transforms or {}).get(name, transform)
        total = torch.zeros(2 + 2 * classes, dtype=torch.float64, device=device)
        for start in range(0, len(data), batch_size):
            x = split_transform(data.x[start : start + batch_size].to(device, non_blocking=True))
            y = data.y[start : start + batch_size].to(device, non_blocking=True)
            with autocast:
                logits = algorithm.predict(x)
            correct = logits.argmax(dim=1) == y
            loss = F.cross_entropy(logits.float(), y, reduction="sum")
            total[:2] += torch.stack([correct.sum().double(), loss.double()])
            if classes:  # bin y + K * correct: [0, K) misses of class y, [K, 2K) its hits
                total[2:] += torch.bincount(y + classes * correct, minlength=2 * classes).double()
        sums.append(total)
    algorithm.train(was_training)
    values = torch.stack(sums).tolist() if sums else []
    accuracies, losses = {}, {}
    for (name, data), (hits, loss, *per_class) in zip(splits.items(), values, strict=True):
        accuracies[f"{name}_acc"] = hits / len(data) if len(data) else 0.0
        if classes:
            accuracies[f"{name}_mpca"] = _mean_per_class(per_class[:classes], per_class[classes:])
        losses[f"{name}_loss"] = loss / len(data) if len(data) else 0.0
    return Evaluation(accuracies, losses, tuple(test_envs))


def _mean_per_class(misses: list[float], hits: list[float]) -> float:
    """Mean over the classes with examples of hits / examples (0.0 for an empty split)."""
    rates = [hit / (hit + miss) for miss, hit in zip(misses, hits, strict=True) if hit + miss]
    return sum(rates) / len(rates) if rates else 0.0
