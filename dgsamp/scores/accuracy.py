"""Accuracy of a classifier's logits: overall, or the mean of per-class accuracies.

Both need labels, so on a target domain they are the oracle, not a selection score.
Higher is better.
"""

from __future__ import annotations

import torch


def _check(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"need logits [N, K] and labels [N]; got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("accuracy of zero examples is undefined")


def overall_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """(1/N) sum_i [argmax_k z_ik = y_i]  for logits ``z[N, K]`` and labels ``y[N]``."""
    _check(logits, labels)
    correct = (logits.argmax(dim=1) == labels).sum().item()
    return correct / labels.numel()


def mean_per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """(1/|C|) sum_{c in C} acc_c, acc_c the accuracy on the examples labelled c.

    ``C`` is the set of classes present in ``labels`` (a class with no example has no
    accuracy and is left out), so every class weighs the same however many examples it has.
    This is tllib's VisDA-2017 "mean correct" (``ConfusionMatrix.compute`` in
    thuml/Transfer-Learning-Library ``tllib/utils/metric/__init__.py`` @ c63c28f: diagonal
    over row sums, averaged), which would count an absent class as 0 instead; the two agree
    whenever every class occurs, as in VisDA-2017's validation domain.
    """
    _check(logits, labels)
    labels = labels.long()
    if labels.min().item() < 0 or labels.max().item() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    predictions = logits.argmax(dim=1)
    support = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.bincount(labels[predictions == labels], minlength=num_classes).double()
    present = support > 0
    return (hits[present] / support[present]).mean().item()
