"""DiWA's weight averaging across runs: the uniform average and the greedy selection.

Uniform (DiWA, Ramé et al. 2022): for K members with states w_1..w_K (same architecture,
same initialisation), every floating-point entry of the averaged state is

    w[name] = (1 / K) * sum_k w_k[name]            (any shape; computed in float64)

and every integer entry (BatchNorm's ``num_batches_tracked``, counters) is the first
member's. DiWA's code averages ``network.parameters()`` and keeps the first member's
buffers; dgsamp also averages floating-point buffers (BatchNorm running statistics),
which is the same when BatchNorm is frozen (DomainBed's ResNets) and the consistent
choice when it is not.

Greedy (DiWA's "restricted" selection): candidates in decreasing order of their own
training-domain validation accuracy; the first is kept; each next one is kept iff the
average of the kept ones plus it scores at least as well on validation as the best so
far (ties keep it), else it is dropped and the next is tried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch
from torch import Tensor

from dgsamp.errors import UserError

T = TypeVar("T")
State = Mapping[str, Tensor]


def check_same_structure(states: Sequence[State], names: Sequence[str]) -> None:
    """One-line UserError unless every state has the first one's entries, shapes and dtypes
    (``names[i]`` names state i in the message)."""
    reference = states[0]
    for name, state in zip(names[1:], states[1:], strict=True):
        if list(state) != list(reference):
            extra = sorted(set(state) ^ set(reference))
            key = extra[0] if extra else "the order of entries"
            raise UserError(f"DiWA averages weights entry by entry: {names[0]} and {name} have different "
                            f"architectures ({key}); average runs whose hparams build the same network")
        for key, value in state.items():
            if value.shape != reference[key].shape or value.dtype != reference[key].dtype:
                raise UserError(
                    f"DiWA averages weights entry by entry: {names[0]} and {name} have different architectures "
                    f"({key}: {tuple(reference[key].shape)} vs {tuple(value.shape)}); average runs whose hparams "
                    "build the same network")


@torch.no_grad()
def average_states(states: Sequence[State]) -> dict[str, Tensor]:
    """The uniform average of ``states`` (see the module docstring); same keys and dtypes."""
    if not states:
        raise ValueError("no states to average")
    averaged = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = torch.zeros(first.shape, dtype=torch.float64, device=first.device)
            for state in states:
                total += state[key].to(torch.float64)
            averaged[key] = (total / len(states)).to(first.dtype)
        else:
            averaged[key] = first.clone()
    return averaged


@dataclass
class GreedyStep(Generic[T]):
    """One candidate tried: the validation score of the average with it, and whether it stayed."""

    candidate: T
    score: float
    kept: bool


@dataclass
class GreedySelection(Generic[T]):
    selected: list[T]
    best_score: float
    steps: list[GreedyStep[T]] = field(default_factory=list)


def greedy_select(ordered: Sequence[T], score: Callable[[list[T]], float]) -> GreedySelection[T]:
    """DiWA's greedy selection over ``ordered`` (best candidate first): ``score(members)`` is
    the validation accuracy of the average of ``members``; a candidate stays iff the score
    with it is ``>=`` the best so far."""
    selection: GreedySelection[T] = GreedySelection([], float("-inf"))
    for candidate in ordered:
        value = score([*selection.selected, candidate])
        kept = value >= selection.best_score
        if kept:
            selection.selected.append(candidate)
            selection.best_score = value
        selection.steps.append(GreedyStep(candidate, value, kept))
    return selection
