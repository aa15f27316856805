"""Validation scores of a domain-adaptation model that need no target label, at one evaluation.

At every evaluation point a domain-adaptation run records, besides the accuracies:

- ``source_val_acc``: mean ``env{s}_out_acc`` over the sources (read from the accuracies);
- ``target_entropy``, ``target_im``, ``target_snd``: from the logits on the target's
  unlabeled data (``dgsamp.scores``);
- ``target_dev``: DEV from ``algorithm.featurizer(x)`` on the source in-splits (source
  train), the source out-splits with their per-example cross-entropy (source val) and the
  target's unlabeled data.

Each of the three sets (source train, source val, target) is its domains pooled and, when
it holds more than :data:`MAX_EXAMPLES_PER_SET` examples, a uniform subset of that many,
drawn without replacement from a generator seeded by the run seed and the epoch (so a
resumed run draws the same). One extra forward pass over those examples, no augmentation;
the featurizer's output is captured during ``predict`` by a forward hook where ``predict``
calls the featurizer once, so a set that needs both costs one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import Tensor

from dgsamp.data.training_data import DomainTensors
from dgsamp.scores import (
    deep_embedded_validation,
    information_maximization,
    mean_entropy,
    soft_neighborhood_density,
)
from dgsamp.tracking import schema

MAX_EXAMPLES_PER_SET = 2000
"""Cap on each of source train, source val and target (pooled over their domains). SND is
O(N^2) and DEV fits a logistic regression on source train + target, so the cap keeps an
evaluation cheap on a CPU; PACS, Office-31 and Office-Home domains are (nearly) whole."""


def subsample(domains: Sequence[DomainTensors], cap: int, generator: torch.Generator) -> list[Tensor]:
    """Per domain, the indices (ascending, int64, CPU) of a uniform subset of at most ``cap``
    examples of the pooled domains; every index when they hold ``cap`` or fewer."""
    sizes = [len(domain) for domain in domains]
    total = sum(sizes)
    chosen = torch.arange(total) if total <= cap else torch.randperm(total, generator=generator)[:cap].sort().values
    picks, offset = [], 0
    for size in sizes:
        inside = chosen[(chosen >= offset) & (chosen < offset + size)]
        picks.append(inside - offset)
        offset += size
    return picks


def _features_and_logits(model: torch.nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(featurizer(x) [B, D], predict(x) [B, K])``, with one featurizer pass when possible."""
    captured: list[Tensor] = []
    hook = model.featurizer.register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        logits = model.predict(x)
    finally:
        hook.remove()
    features = captured[0] if len(captured) == 1 else model.featurizer(x)
    return features.float(), logits.float()


def _pass(model, domains: Sequence[DomainTensors], picks: Sequence[Tensor], transform: Callable,
          batch_size: int, autocast: AbstractContextManager, device: torch.device,
          want_logits: bool) -> tuple[Tensor, Tensor | None, Tensor]:
    """Features ``[N, D]``, logits ``[N, K]`` (or None) and labels ``[N]`` of the picked examples."""
    features, logits, labels = [], [], []
    for domain, indices in zip(domains, picks, strict=True):
        for start in range(0, len(indices), batch_size):
            x, y = domain.batch(indices[start : start + batch_size].to(domain.x.device))
            x = transform(x.to(device, non_blocking=True))
            with autocast:
                if want_logits:
                    z, out = _features_and_logits(model, x)
                    logits.append(out)
                else:
                    z = model.featurizer(x).float()
            features.append(z)
            labels.append(y.to(device, non_blocking=True))
    return torch.cat(features), torch.cat(logits) if want_logits else None, torch.cat(labels)


@torch.no_grad()
def adaptation_scores(
    model: torch.nn.Module,
    accuracies: dict[str, float],
    source_train: Sequence[DomainTensors],
    source_val: Sequence[DomainTensors],
    target: Sequence[DomainTensors],
    sources: Sequence[int],
    transform: Callable,
    batch_size: int,
    autocast: AbstractContextManager,
    seed: int,
    cap: int = MAX_EXAMPLES_PER_SET,
) -> dict[str, float | None]:
    """The ``ADAPTATION_SCORE_KEYS`` of ``model`` (``featurizer`` and ``predict``) at one
    evaluation; ``accuracies`` are that evaluation's (``env{s}_out_acc`` of the ``sources``).

    ``seed`` fixes the subsets (derive it from the run seed and the epoch). A score that is
    undefined on too few examples (SND: < 2 targets; DEV: < 2 source val examples) or not
    finite is None.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    try:
        train_z, _, _ = _pass(model, source_train, subsample(source_train, cap, generator), transform,
                              batch_size, autocast, device, want_logits=False)
        val_z, val_logits, val_y = _pass(model, source_val, subsample(source_val, cap, generator), transform,
                                         batch_size, autocast, device, want_logits=True)
        target_z, target_logits, _ = _pass(model, target, subsample(target, cap, generator), transform,
                                           batch_size, autocast, device, want_logits=True)
    finally:
        model.train(was_training)
    val_losses = F.cross_entropy(val_logits, val_y, reduction="none")
    enough_val, enough_target = len(val_losses) >= 2, len(target_logits) >= 2
    scores = {
        schema.SOURCE_VAL_ACC: schema.source_validation_accuracy(accuracies, sources),
        schema.TARGET_ENTROPY: mean_entropy(target_logits),
        schema.TARGET_IM: information_maximization(target_logits),
        schema.TARGET_SND: soft_neighborhood_density(target_logits) if enough_target else None,
        schema.TARGET_DEV: deep_embedded_validation(train_z, val_z, val_losses, target_z) if enough_val else None,
    }
    # a score the data cannot define (DEV's variance of constant weights, ...) is None, never NaN
    return {name: None if value is None or not math.isfinite(value) else value for name, value in scores.items()}
